"""A run of the flood: start a signed cluster, measure its first node, flood it, measure
again, judge what came back."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import anyio
import httpx

from node.tools.local_cluster import LocalCluster
from node.tools.propagation import percentile
from scripts.flood.attacks import kinds, schedule
from scripts.flood.forger import PROBE_KEY, Forger
from scripts.flood.probe import Prober
from scripts.flood.results import FloodResult, KindResult, tally
from scripts.flood.sending import HOST, send_plan


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        lines = status.read().splitlines()
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _only_loopback(url: str) -> None:
    if urlsplit(url).hostname != HOST:
        raise ValueError(f"the flood only targets {HOST}, not {url}")


def _poll(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def run_flood(requests: int = 10_000, nodes: int = 2, concurrency: int = 8, seed: int = 5,
              timeout: float = 600.0, baseline_reads: int = 1000) -> FloodResult:
    """Start a cluster, flood its first node, measure, stop the cluster."""
    if not 1 <= nodes <= 3:
        raise ValueError("1 to 3 nodes")
    rng = random.Random(seed)
    token = secrets.token_urlsafe(24)
    cluster = LocalCluster(nodes=nodes, interval=0.2, env={"GOSSIP_API_TOKEN": token})
    for url in cluster.urls:
        _only_loopback(url)
    auth = {"authorization": f"Bearer {token}"}
    started = time.monotonic()
    with cluster, httpx.Client(timeout=10.0, headers=auth) as http:
        target, pid = cluster.urls[0], cluster.procs["n1"].pid
        assert cluster.key is not None
        forger = Forger(target, cluster.cluster_id, bytes.fromhex(cluster.key), "n1", rng)
        http.post(target + "/set", json={"key": PROBE_KEY, "value": {"legit": True}}).raise_for_status()
        for url in cluster.urls:  # every node holds the probe key: the digests agree before we start
            _poll(lambda u=url: http.get(u + "/get", params={"key": PROBE_KEY}).status_code == 200,  # type: ignore[misc]
                  20.0, f"{url} to hold the probe key")

        baseline = Prober(target, token, max_samples=baseline_reads)
        before_reads, before_failures = baseline.result(stop=False)

        digest_before = http.get(target + "/digest").json()
        stats_before = http.get(target + "/stats").json()
        rss_before = rss_kib(pid)

        plan = schedule(kinds(token), requests, rng)
        results = {k.name: KindResult() for k in kinds(token)}
        prober = Prober(target, token)
        flood_started = time.monotonic()
        try:
            originals, transport_errors = anyio.run(
                send_plan, forger, plan, concurrency, started + timeout, results
            )
        finally:
            during_reads, during_failures = prober.result()
        flood_seconds = time.monotonic() - flood_started

        rss_after = rss_kib(pid)
        digest_after = http.get(target + "/digest").json()
        stats_after = http.get(target + "/stats").json()
        serving = http.get(target + "/health").status_code == 200
        legit = forger.gossip(forger.exchange())
        legit_status = http.post(target + "/gossip", content=legit.body, headers=legit.headers).status_code
        peer_digest = http.get(cluster.urls[1] + "/digest").json() if nodes > 1 else None
        propagated = True
        if nodes > 1:  # gossip between the nodes still works: a write on n2 reaches n1
            http.post(cluster.urls[1] + "/set", json={"key": "after-flood", "value": 1}).raise_for_status()
            try:
                _poll(lambda: http.get(target + "/get", params={"key": "after-flood"}).status_code == 200,
                      20.0, "a write on n2 to reach n1")
            except TimeoutError:
                propagated = False

    expected = {k.name: k.expected for k in kinds(token)}
    gossip_kinds = {k.name for k in kinds(token) if k.gossip}
    found = tally(results, expected, gossip_kinds)
    return FloodResult(
        requests=requests, nodes=nodes, by_kind=results, expected=expected, accepted=found.accepted,
        server_errors=found.server_errors, transport_errors=transport_errors, unexpected=found.unexpected,
        refused_gossip=found.refused_gossip, rejected_before=stats_before["rejected"],
        rejected_after=stats_after["rejected"],
        rejected_by_reason=stats_after["rejected_by_reason"], replay_originals=originals,
        digest_before=digest_before, digest_after=digest_after, peer_digest_after=peer_digest,
        serving_after=serving, legit_exchange_after=legit_status, propagated_after=propagated,
        p99_before_ms=percentile(before_reads, 99) * 1000, p99_during_ms=percentile(during_reads, 99) * 1000,
        p50_before_ms=percentile(before_reads, 50) * 1000, p50_during_ms=percentile(during_reads, 50) * 1000,
        probe_samples=(len(before_reads), len(during_reads)),
        probe_failures=(before_failures, during_failures),
        rss_before_kib=rss_before, rss_after_kib=rss_after, seconds=flood_seconds,
    )
