"""Hosts as Linux network namespaces for real-process tests: the machinery lives in
chaos/hosts.py (the fault-injection suite uses it too)."""

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
    "start_node", "stop_node",
]
