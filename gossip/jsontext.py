"""Compact JSON in and out, with orjson (several times faster than the standard library
on the hot paths: every message and every value size check). Values are limited to what
orjson reads back exactly (integers within 64 bits, finite numbers), so a value means the
same on every node (gossip.limits checks it)."""

from __future__ import annotations

from typing import Any

import orjson

LOWEST_INT, HIGHEST_INT = -(2**63), 2**64 - 1  # the integers orjson reads back as integers

JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: object) -> bytes:
    """Compact UTF-8 JSON (no spaces, no ASCII escaping). Raises TypeError for what JSON
    cannot hold here: non-finite numbers are written as null by orjson, so callers that
    accept user values check those first (gossip.limits)."""
    return orjson.dumps(obj)


def canonical(obj: object) -> bytes:
    """Compact JSON with object keys sorted: equal values give equal bytes."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises JSONDecodeError (a ValueError) on anything malformed, including
    NaN and infinite literals and nesting deeper than orjson allows."""
    return orjson.loads(data)
