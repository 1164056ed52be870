"""A cluster through crashes, restarts, leaves and long absences (real processes)."""

from __future__ import annotations

import signal
import time

import httpx

from node.tools.local_cluster import LocalCluster
from tests.polling import wait_until


def statuses(client: httpx.Client, url: str) -> dict[str, str]:
    return {m["id"]: m["status"] for m in client.get(url + "/members").json()["members"]}


def stats(client: httpx.Client, url: str) -> dict[str, object]:
    return client.get(url + "/stats").json()  # type: ignore[no-any-return]


def digests(client: httpx.Client, urls: list[str]) -> set[str]:
    return {client.get(u + "/digest").json()["digest"] for u in urls}


def test_crash_is_detected_leave_is_not_a_crash() -> None:
    with LocalCluster(6, interval=0.2) as cluster, httpx.Client(timeout=5) as client:
        others = lambda gone: [u for n, u in zip(cluster.ids, cluster.urls, strict=True) if n not in gone]  # noqa: E731
        # no faults for a few seconds: nobody is suspected
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            for url in cluster.urls:
                assert set(statuses(client, url).values()) == {"alive"}, statuses(client, url)
            time.sleep(0.2)

        cluster.kill("n3")  # kill -9: no goodbye
        took = wait_until(lambda: all(statuses(client, u)["n3"] == "dead" for u in others({"n3"})),
                          what="every node to mark n3 dead")
        print(f"\ncrash of n3 detected everywhere after {took:.2f} s")

        cluster.leave("n4")  # SIGTERM: it says goodbye
        wait_until(lambda: all(statuses(client, u)["n4"] == "left" for u in others({"n3", "n4"})),
                   what="every node to mark n4 left")
        n4 = cluster.url("n4")
        before = {u: (stats(client, u)["rounds"], stats(client, u)["failures_by_peer"].get(n4, 0))
                  for u in others({"n3", "n4"})}
        wait_until(lambda: all(stats(client, u)["rounds"] >= r + 10 for u, (r, _) in before.items()),
                   what="ten more rounds everywhere")
        for url, (_, failures) in before.items():
            assert stats(client, url)["failures_by_peer"].get(n4, 0) == failures, "n4 was gossiped to"
            assert statuses(client, url)["n4"] == "left"


def test_restart_empty_catches_up_and_restart_with_data_serves_at_once() -> None:
    """A node restarted empty is a new life, a new writer (R16): its writes win over its earlier
    life's; one restarted with its data serves it at once."""
    with LocalCluster(4, interval=0.2, data=True) as cluster, httpx.Client(timeout=5) as client:
        for i in range(30):
            client.post(cluster.urls[i % 4] + "/set", json={"key": f"k{i}", "value": i}).raise_for_status()
        wait_until(lambda: len(digests(client, cluster.urls)) == 1, what="convergence")
        old = client.get(cluster.url("n2") + "/digest").json()

        # with its data directory, but unreachable and with no seeds: it has talked to nobody
        cluster.leave("n2")
        cluster.restart("n2", extra_args=["--seeds", "", "--allow", "127.0.0.2/32"])
        n2 = cluster.url("n2")
        assert client.get(n2 + "/digest").json() == old
        assert client.get(n2 + "/get", params={"key": "k7"}).json()["value"] == 7
        assert stats(client, n2)["entries_applied"] == 0

        # empty (its data gone), while the others take more writes: it catches up
        cluster.kill("n2")
        for path in (cluster.log_dir / "n2-data").iterdir():
            path.unlink()
        for i in range(30, 40):
            url = cluster.urls[2 * (i % 2)]  # n1 or n3: n2 is down
            client.post(url + "/set", json={"key": f"k{i}", "value": i}).raise_for_status()
        started = time.monotonic()
        cluster.restart("n2")
        wait_until(lambda: len(digests(client, cluster.urls)) == 1, what="n2 to catch up")
        print(f"\nn2 restarted empty caught up in {time.monotonic() - started:.2f} s")
        assert client.get(n2 + "/digest").json()["keys"] == 40
        wait_until(lambda: all(statuses(client, u)["n2"] == "alive" for u in cluster.urls),
                   what="n2 alive everywhere")
        # its new writes win over what it wrote in its earlier life
        client.post(n2 + "/set", json={"key": "k1", "value": "new life"}).raise_for_status()
        wait_until(lambda: all(client.get(u + "/get", params={"key": "k1"}).json()["value"] == "new life"
                               for u in cluster.urls), what="the new write everywhere")


def live_keys(client: httpx.Client, url: str) -> list[str]:
    return sorted(client.get(url + "/get").json()["values"])


def test_a_node_away_longer_than_the_grace_period_catches_up_and_nothing_is_lost() -> None:
    """Collection waits for every member (docs/PROTOCOL.md, R7a): a node stopped for
    longer than tombstone_grace, but not forgotten, holds the others' collection back,
    and back from its data directory it catches up, with no reset."""
    args = ["--tombstone-grace", "1", "--reap-after", "600"]
    with LocalCluster(3, interval=0.2, data=True, extra_args=args) as cluster, \
            httpx.Client(timeout=5) as client:
        n1, n2 = cluster.url("n1"), cluster.url("n2")
        for i in range(10):
            client.post(n1 + "/set", json={"key": f"k{i}", "value": i}).raise_for_status()
        wait_until(lambda: len(digests(client, cluster.urls)) == 1, what="convergence")
        cluster.leave("n3")
        for i in range(5):
            client.post(n2 + "/delete", json={"key": f"k{i}"}).raise_for_status()
        for i in range(10, 15):
            client.post(n1 + "/set", json={"key": f"k{i}", "value": i}).raise_for_status()
        rounds = stats(client, n1)["rounds"]
        wait_until(lambda: stats(client, n1)["rounds"] >= rounds + 25, what="five grace periods")
        assert [stats(client, u)["collected"] for u in (n1, n2)] == [0, 0], "collected before n3 had them"

        cluster.restart("n3")
        n3 = cluster.url("n3")
        wait_until(lambda: len(digests(client, cluster.urls)) == 1, what="n3 to catch up")
        expected = sorted(f"k{i}" for i in range(5, 15))
        assert [live_keys(client, u) for u in cluster.urls] == [expected] * 3
        assert [stats(client, u)["resets"] for u in cluster.urls] == [0, 0, 0]
        # every member has the deletes now: they are collected
        wait_until(lambda: all(stats(client, u)["collected"] >= 5 for u in cluster.urls),
                   what="the deletes to be collected everywhere")
        assert live_keys(client, n3) == expected


def test_a_forgotten_node_is_reset_on_return_and_no_deleted_key_comes_back() -> None:
    """Paused for longer than reap_after, a node is forgotten by the others (a majority),
    which then collect deletes it never saw; back, it is reset (R7c), says so in its log,
    and catches up: no deleted key comes back, and it is not reset again."""
    args = ["--tombstone-grace", "1", "--reap-after", "2"]
    with LocalCluster(4, interval=0.2, extra_args=args) as cluster, httpx.Client(timeout=5) as client:
        for i in range(10):
            client.post(cluster.urls[0] + "/set", json={"key": f"k{i}", "value": i}).raise_for_status()
        wait_until(lambda: len(digests(client, cluster.urls)) == 1, what="convergence")
        present = cluster.urls[:3]
        cluster.kill("n4", signal.SIGSTOP)
        for i in range(5):
            client.post(cluster.urls[1] + "/delete", json={"key": f"k{i}"}).raise_for_status()
        wait_until(lambda: all("n4" not in statuses(client, u) for u in present), timeout=30,
                   what="n4 to be forgotten")
        wait_until(lambda: all(stats(client, u)["collected"] >= 5 for u in present), timeout=30,
                   what="the deletes to be collected")
        cluster.kill("n4", signal.SIGCONT)
        n4 = cluster.url("n4")
        wait_until(lambda: stats(client, n4)["resets"] == 1, what="n4 to be reset")
        wait_until(lambda: len(digests(client, cluster.urls)) == 1, what="convergence after the reset",
                   detail=lambda: [(stats(client, u), live_keys(client, u)) for u in cluster.urls])
        rounds = stats(client, n4)["rounds"]
        wait_until(lambda: stats(client, n4)["rounds"] >= rounds + 10, what="ten more rounds")
        assert [stats(client, u)["resets"] for u in cluster.urls] == [0, 0, 0, 1]
        for url in cluster.urls:
            assert live_keys(client, url) == [f"k{i}" for i in range(5, 10)], url
        log = (cluster.log_dir / "n4.log").read_text()
        assert "reset: our state predates collections" in log


def test_replicated_write_survives_the_node_that_took_it() -> None:
    with LocalCluster(4, interval=0.2) as cluster, httpx.Client(timeout=5) as client:
        r = client.post(cluster.url("n2") + "/set", json={"key": "precious", "value": 1, "replicas": 2})
        assert r.status_code == 200, r.text
        cluster.kill("n2")  # right after its answer
        holders = [u for u in cluster.urls if u != cluster.url("n2")
                   and client.get(u + "/get", params={"key": "precious"}).status_code == 200]
        assert len(holders) >= 2, holders
        too_many = client.post(cluster.url("n1") + "/set", json={"key": "k", "value": 1, "replicas": 5})
        assert too_many.status_code == 409 and "live peers" in too_many.text  # nothing written
        cluster.kill("n3", signal.SIGSTOP)  # still counted live for a while, but silent
        try:
            slow = client.post(cluster.url("n1") + "/set", json={"key": "k", "value": 2, "replicas": 2})
            assert slow.status_code == 504 and "only 1 of 2 replicas" in slow.text, slow.text
        finally:
            cluster.kill("n3", signal.SIGCONT)
