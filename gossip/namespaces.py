"""Keys the project writes for its own data (counter slots, service instances, jobs) live
under one reserved prefix, apart from the users' keys."""

from __future__ import annotations

RESERVED = "_gossip/"


def is_reserved(key: str) -> bool:
    return key.startswith(RESERVED)
