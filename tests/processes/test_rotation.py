"""Key rotation on a live 5-node cluster with writes flowing: no gossip refused during
it, convergence unaffected, and the retired key refused afterwards."""

from __future__ import annotations

import secrets
import threading
import time

import httpx

from gossip.auth import KeyRing, key_id, sign
from node.tools.local_cluster import LocalCluster
from tests.polling import wait_until

TOKEN = "rotation-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def test_rotation_with_writes_flowing() -> None:
    old, new = secrets.token_hex(32), secrets.token_hex(32)
    old_id, new_id = key_id(bytes.fromhex(old)), key_id(bytes.fromhex(new))
    with LocalCluster(5, interval=0.1, key=old, env={"GOSSIP_API_TOKEN": TOKEN}) as cluster, httpx.Client(
        timeout=5, headers=AUTH
    ) as client:
        stop = threading.Event()
        written: list[str] = []
        failed: list[BaseException] = []  # what stopped the writer, if anything did

        def writer() -> None:
            n = 0
            try:
                while not stop.is_set() and n < 2_000:
                    url = cluster.urls[n % len(cluster.urls)]
                    with httpx.Client(timeout=5, headers=AUTH) as c:
                        c.post(url + "/set", json={"key": f"w{n % 50}", "value": n}).raise_for_status()
                    written.append(f"w{n % 50}")
                    n += 1
            except BaseException as exc:
                failed.append(exc)
                raise

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            for url in cluster.urls:  # 1: install the new key everywhere
                client.post(url + "/admin/keys", json={"key": new}).raise_for_status()
            for url in cluster.urls:  # 2: sign with it everywhere
                client.post(url + f"/admin/keys/{new_id}/primary").raise_for_status()
            rounds = [client.get(u + "/stats").json()["rounds"] for u in cluster.urls]
            wait_until(  # every message signed with the old key has been answered
                lambda: all(client.get(u + "/stats").json()["rounds"] >= r + 2
                            for u, r in zip(cluster.urls, rounds, strict=True)),
                what="two more rounds on every node", timeout=20,
            )
            for url in cluster.urls:  # 3: stop accepting the old key
                ring = client.delete(url + f"/admin/keys/{old_id}").json()
                assert ring == {"primary": new_id, "keys": [new_id]}
            wait_until(lambda: len(written) > 100 or bool(failed), timeout=60,
                       what="writes after the rotation", detail=lambda: f"({len(written)} written)")
            assert not failed, f"the writer stopped: {failed[0]!r}"
        finally:
            stop.set()
            thread.join()

        stats = [client.get(u + "/stats").json() for u in cluster.urls]
        assert [s["rejected"] for s in stats] == [0] * 5, [s["rejected_by_reason"] for s in stats]
        wait_until(
            lambda: len({client.get(u + "/digest").json()["digest"] for u in cluster.urls}) == 1,
            timeout=20, what="convergence",
        )
        keys = {client.get(u + "/digest").json()["keys"] for u in cluster.urls}
        assert keys == {len(set(written))}

        body = b'{"v": 1}'
        retired = sign(KeyRing.of(bytes.fromhex(old)), cluster.cluster_id, body, time.time_ns() // 10**6, "x")
        r = client.post(cluster.urls[0] + "/gossip", content=body, headers=retired)
        assert r.status_code == 401 and "does not accept" in r.text
