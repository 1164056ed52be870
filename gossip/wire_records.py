"""The records messages carry, decoded from untrusted JSON and checked: entries, rumor
items, members and their tags.

Entries and rumor items, the bulk of every message, first take a fast path: the common,
well-formed case, checked in one go. Whatever it does not accept goes through the
field-by-field checks, which name what is wrong.
"""

from __future__ import annotations

import sys

from gossip.clock import Timestamp
from gossip.config import Config
from gossip.errors import CallerError, MalformedMessage
from gossip.jsontext import dumps
from gossip.limits import check_key, check_value
from gossip.membership import MemberInfo, Tags, tags_problem
from gossip.messages import RumorItem
from gossip.store import Entry
from gossip.wire_checks import (
    MAX_INT,
    as_array,
    as_flag,
    as_int,
    as_items,
    as_object,
    as_text,
    as_timestamp,
    as_writer,
)

_PARSED_SCALARS = frozenset({int, float, bool, type(None)})  # valid as parsed (see fast_entry)


def entry(origin: str, raw: object, path: str, config: Config) -> Entry:
    """[key, value, wall, counter, deleted (0/1), expires_at or null], of writer `origin`."""
    key, value, wall, counter, deleted, expires = as_items(raw, path, 6)
    try:
        key = check_key(key, config)
        value = check_value(value, config)
    except CallerError as exc:
        raise MalformedMessage(f"{path}: {exc}") from exc
    deleted = as_flag(deleted, f"{path} deleted")
    if deleted and value is not None:
        raise MalformedMessage(f"{path}: a tombstone carries no value")
    if expires is not None:
        expires = as_int(expires, f"{path} expires_at")
    ts = Timestamp(as_int(wall, f"{path} wall"), as_int(counter, f"{path} counter"))
    return Entry(key, value, ts, origin, bool(deleted), expires)


def fast_entry(origin: str, raw: object, config: Config) -> Entry | None:
    """An entry from parsed JSON (orjson: strings are valid text, numbers finite and
    integers within 64 bits), or None to take the slow path."""
    if type(raw) is not list or len(raw) != 6:
        return None
    key, value, wall, counter, deleted, expires = raw
    if not (type(key) is str and key and type(wall) is int and type(counter) is int
            and 0 <= wall < MAX_INT and 0 <= counter < MAX_INT and type(deleted) is int
            and (deleted == 0 or (deleted == 1 and value is None))
            and (expires is None or (type(expires) is int and 0 <= expires < MAX_INT))):
        return None
    if 4 * len(key) > config.max_key_bytes and len(key.encode()) > config.max_key_bytes:
        return None
    kind = type(value)
    if kind is str:
        if 6 * len(value) + 2 > config.max_value_bytes and len(dumps(value)) > config.max_value_bytes:
            return None
    elif kind not in _PARSED_SCALARS:
        try:
            check_value(value, config)
        except CallerError:
            return None
    return Entry(key, value, (wall, counter), origin, deleted == 1, expires)


def rumor_item(raw: object, path: str, config: Config) -> RumorItem:
    """[origin, prev wall, prev counter, *entry]: prev below the entry's timestamp."""
    fields = as_array(raw, path)
    if len(fields) != 9:
        raise MalformedMessage(f"{path}: expected 9 fields, got {len(fields)}")
    origin = as_writer(fields[0], f"{path} origin")
    prev = as_timestamp(fields[1:3], f"{path} prev")
    item = entry(origin, fields[3:], path, config)
    if not prev < item.ts:
        raise MalformedMessage(f"{path}: prev must be below the entry's timestamp")
    return RumorItem(item, prev)


def fast_rumor_item(raw: object, config: Config) -> RumorItem | None:
    if type(raw) is not list or len(raw) != 9:
        return None
    origin, prev_wall, prev_counter = raw[0], raw[1], raw[2]
    if not (type(origin) is str and 0 < len(origin) <= 256 and type(prev_wall) is int
            and type(prev_counter) is int and 0 <= prev_wall < MAX_INT and 0 <= prev_counter < MAX_INT):
        return None
    item = fast_entry(sys.intern(origin), raw[3:], config)  # (interned: see as_writer)
    prev = Timestamp(prev_wall, prev_counter)
    return RumorItem(item, prev) if item is not None and prev < item.stamp else None


def member(raw: object, path: str) -> MemberInfo:
    """[id, address, generation, heartbeat, left (0/1)], and the tags if it has any."""
    fields = as_array(raw, path)
    if len(fields) not in (5, 6):
        raise MalformedMessage(f"{path} must have 5 items, or 6 with tags, got {len(fields)}")
    id_, address, generation, heartbeat, left = fields[:5]
    return MemberInfo(
        as_text(id_, f"{path} id"),
        as_text(address, f"{path} address"),
        as_int(generation, f"{path} generation"),
        as_int(heartbeat, f"{path} heartbeat"),
        as_flag(left, f"{path} left"),
        tags(fields[5], f"{path} tags") if len(fields) == 6 else (),
    )


def tags(raw: object, path: str) -> Tags:
    found = as_object(raw, path)
    problem = tags_problem(found) if found else "an empty tag object (no tags are sent as none)"
    if problem is not None:
        raise MalformedMessage(f"{path}: {problem}")
    return tuple(sorted(found.items()))
