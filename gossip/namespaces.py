"""Keys the project writes for its own data (counter slots, service instances, jobs) live
under one reserved prefix, apart from the users' keys."""

from __future__ import annotations

RESERVED = "_gossip/"


def is_reserved(key: str) -> bool:
    return key.startswith(RESERVED)


COUNTER = RESERVED + "counter/"  # + <name>/<writer>: the value is [added, removed]
WINDOW = RESERVED + "window/"  # + <length ms>/<window index>/<name>/<writer>: the value is a count


def is_window_key(key: str) -> bool:
    """A windowed counter's slot: every version of it expires with its window, so the
    store collects it without the tombstone grace."""
    return key.startswith(WINDOW)
