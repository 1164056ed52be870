"""Checks on keys and values, shared by the client API and the gossip decoder."""

from __future__ import annotations

import math

from gossip.config import Config
from gossip.errors import InvalidKey, InvalidValue
from gossip.jsontext import HIGHEST_INT, LOWEST_INT, dumps
from gossip.store import JSON


def check_key(key: object, config: Config) -> str:
    if not isinstance(key, str):
        raise InvalidKey(f"key must be a string, got {type(key).__name__}")
    if not key:
        raise InvalidKey("key must not be empty")
    if not is_text(key):
        raise InvalidKey("key is not valid Unicode text (it holds a lone surrogate)")
    size = len(key.encode("utf-8"))
    if size > config.max_key_bytes:
        raise InvalidKey(f"key is {size} bytes, the limit is {config.max_key_bytes}")
    return key


def expiry(ttl: float | None, now_ms: int) -> int | None:
    """When a value written now with `ttl` seconds to live expires (ms), if it does. Finite,
    and an expiry the codec can carry (ints below 2**53): round(inf) raised OverflowError (a
    500), and a larger expiry made every message with it refused."""
    if ttl is None:
        return None
    if not 0 < ttl * 1000 < 2**53 - 1 - now_ms:
        raise InvalidValue(f"ttl must be a positive number of seconds below {(2**53 - now_ms) // 1000}")
    return now_ms + max(1, round(ttl * 1000))


def is_text(s: str) -> bool:
    """True unless `s` holds a lone surrogate, which no UTF-8 message can carry."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_value(value: JSON, config: Config) -> JSON:
    if type(value) not in _PLAIN_SCALARS:  # the common case skips the walk (hot on decode)
        _check_shape(value, config.max_value_depth)
    elif type(value) is int and not LOWEST_INT <= value <= HIGHEST_INT:
        raise InvalidValue(_INT_RANGE)
    try:
        size = len(dumps(value))
    except TypeError:  # a lone surrogate in a string: it could never be sent
        raise InvalidValue("value is not valid Unicode text (it holds a lone surrogate)") from None
    if size > config.max_value_bytes:
        raise InvalidValue(f"value is {size} bytes as JSON, the limit is {config.max_value_bytes}")
    return value


# Exact types that are JSON values as they stand (floats need a finiteness check, and
# subclasses go through the full walk).
_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})
_INT_RANGE = f"integers in a value must lie in [{LOWEST_INT}, {HIGHEST_INT}] (64 bits)"


def _check_shape(value: JSON, max_depth: int) -> None:
    """Only JSON types, finite numbers, integers within 64 bits, nesting at most
    max_depth (iteratively, so a hostile value cannot exhaust the stack)."""
    stack: list[tuple[JSON, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise InvalidValue(f"value nests deeper than {max_depth} levels")
            if isinstance(item, dict):
                if not all(isinstance(k, str) for k in item):
                    raise InvalidValue("object keys in a value must be strings")
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidValue("numbers in a value must be finite")
        elif isinstance(item, int):
            if not LOWEST_INT <= item <= HIGHEST_INT:
                raise InvalidValue(_INT_RANGE)  # (booleans, 0 and 1, pass)
        elif item is not None and not isinstance(item, str):
            raise InvalidValue(f"{type(item).__name__} is not a JSON value")
