"""Checks of single values parsed from untrusted JSON: each returns the value, typed, or
raises MalformedMessage naming where in the message it was (`path`)."""

from __future__ import annotations

import sys
from typing import Any

from gossip.clock import Timestamp
from gossip.errors import MalformedMessage
from gossip.limits import is_text

MAX_INT = 2**53  # integers stay exact in every JSON implementation


def field(obj: dict[str, Any], name: str) -> object:
    if name not in obj:
        raise MalformedMessage(f"missing field {name!r}")
    return obj[name]


def as_object(raw: object, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MalformedMessage(f"{path} must be an object")
    return raw


def as_array(raw: object, path: str) -> list[Any]:
    if not isinstance(raw, list):
        raise MalformedMessage(f"{path} must be an array")
    return raw


def as_items(raw: object, path: str, size: int) -> list[Any]:
    """An array of exactly `size` items."""
    items = as_array(raw, path)
    if len(items) != size:
        raise MalformedMessage(f"{path} must have {size} items, got {len(items)}")
    return items


def as_int(raw: object, path: str) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw < MAX_INT:
        raise MalformedMessage(f"{path} must be an integer in [0, 2**53), got {raw!r}")
    return raw


def as_flag(raw: object, path: str) -> bool:
    if type(raw) is not int or raw not in (0, 1):
        raise MalformedMessage(f"{path} must be 0 or 1, got {raw!r}")
    return bool(raw)


def as_text(raw: object, path: str) -> str:
    """An id, an address or a key of a writer map: 1 to 256 characters of valid text."""
    if not isinstance(raw, str) or not 0 < len(raw) <= 256:
        raise MalformedMessage(f"{path} must be a string of 1 to 256 characters")
    if not is_text(raw):
        raise MalformedMessage(f"{path} is not valid Unicode text (a lone surrogate)")
    return raw


def as_writer(raw: object, path: str) -> str:
    """A writer id, as as_text, interned: the entries of a writer share one string instead
    of holding a copy each (some 70 bytes per key held)."""
    return sys.intern(as_text(raw, path))


def as_hex(raw: object, path: str, digits: int) -> int:
    if not isinstance(raw, str) or len(raw) != digits or any(c not in "0123456789abcdef" for c in raw):
        raise MalformedMessage(f"{path} must be {digits} lowercase hex digits")
    return int(raw, 16)


def as_timestamp(raw: object, path: str) -> Timestamp:
    wall, counter = as_items(raw, path, 2)
    return Timestamp(as_int(wall, f"{path} wall"), as_int(counter, f"{path} counter"))
