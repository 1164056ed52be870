"""Hosts as Linux network namespaces for real-process tests: the machinery lives in
chaos/hosts.py (the fault-injection suite uses it too)."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from chaos.hosts import (
    CLUSTER_NET,
    FAKETIME_LIB,
    LOCK,
    Hosts,
    available,
    ip,
    remove_leftovers,
    skewed_clock,
    start_node,
    stop_node,
)

__all__ = [
    "CLUSTER_NET", "FAKETIME_LIB", "LOCK", "Hosts", "available", "ip", "remove_leftovers", "skewed_clock",
    "skewable_hosts", "start_node", "stop_node",
]


@contextmanager
def skewable_hosts(count: int) -> Iterator[Hosts]:
    """`count` namespace hosts whose nodes can run under a skewed clock (faketime); the
    test is skipped, saying why, where they cannot be made."""
    if (reason := available()) is not None:
        pytest.skip(reason)
    if not FAKETIME_LIB.exists():
        pytest.skip(f"no {FAKETIME_LIB} (scripts/install-test-deps.sh installs faketime)")
    with Hosts(count=count) as hosts:
        yield hosts
