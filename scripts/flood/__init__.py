"""Flood a live node with adversarial requests and show that none gets through.

Starts a small signed cluster (LocalCluster: real `gossip-node` processes on 127.0.0.1,
a cluster key and an api token), then sends `--requests` hostile requests to node n1:
unsigned, badly signed, wrong-cluster, retired-key, replayed and out-of-window gossip,
malformed JSON, wrong types, deep nesting, oversized bodies (with and without a
Content-Length), huge counts and far-future timestamps in validly signed gossip, and
unauthenticated writes. Every kind is adversarial, so the number accepted must be 0.

Reports the status codes per kind, 5xx count, the state digest before and after, whether
the node still serves and gossips, the p99 latency of a legitimate GET /get measured by a
separate process before and during the flood, and the node's RSS growth.

    python -m scripts.flood --requests 10000

tests/processes/test_flood.py runs `run_flood` with fewer requests.
"""

from scripts.flood.attacks import kinds
from scripts.flood.results import FloodResult, KindResult
from scripts.flood.run import run_flood

__all__ = ["FloodResult", "KindResult", "kinds", "run_flood"]
