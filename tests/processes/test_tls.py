"""Nodes that speak HTTPS and only to peers whose certificate their CA signed."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from node.tools.local_cluster import LocalCluster
from tests.tlsutil import make_ca


def test_tls_cluster_converges_and_refuses_another_ca(tmp_path: Path) -> None:
    ours, theirs = make_ca(tmp_path / "ours", "ours"), make_ca(tmp_path / "theirs", "theirs")
    with LocalCluster(3, interval=0.1, tls=ours) as cluster, httpx.Client(
        verify=cluster.http_verify(), timeout=5
    ) as client:
        assert all(url.startswith("https://") for url in cluster.urls)
        client.post(cluster.urls[0] + "/set", json={"key": "secret", "value": 42}).raise_for_status()
        deadline = time.monotonic() + 20
        while any(client.get(u + "/get", params={"key": "secret"}).status_code != 200 for u in cluster.urls):
            assert time.monotonic() < deadline, "the TLS cluster did not converge"
            time.sleep(0.05)
        with pytest.raises(httpx.HTTPError):  # plain HTTP gets nowhere
            httpx.get(cluster.urls[0].replace("https", "http") + "/health", timeout=2)

        seed = {"GOSSIP_SEEDS": cluster.urls[0]}  # same cluster id and key; only the CA differs
        rogue = LocalCluster(1, interval=0.1, tls=theirs, key=cluster.key, cluster_id=cluster.cluster_id,
                             env=seed)
        with rogue, httpx.Client(verify=rogue.http_verify(), timeout=5) as rogue_client:
            deadline = time.monotonic() + 20
            while rogue_client.get(rogue.urls[0] + "/stats").json()["failures"] < 5:
                assert time.monotonic() < deadline, "the rogue node never tried to join"
                time.sleep(0.05)
            members = rogue_client.get(rogue.urls[0] + "/members").json()["members"]
            assert [m["id"] for m in members] == ["n1"]  # it met nobody
            for url in cluster.urls:
                ids = {m["address"] for m in client.get(url + "/members").json()["members"]}
                assert rogue.urls[0] not in ids
