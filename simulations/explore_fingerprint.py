"""The fingerprint of an explored world (simulations/explore_model.py): THE ONE PLACE
THAT READS THE CORE'S INTERNALS. Adapt it here when the core's fields change.

Two worlds with the same fingerprint behave the same from here on, up to their RNGs,
which are left out (the search follows one random draw per state; it never enumerates
draws). Every attribute of each protocol object is walked, so fields added to the core
count by themselves; left out are the RNGs and the config (the same everywhere),
statistics, logs of events for operators, caches derived from other fields, and the
store's indexes (derived from its entries) with their insertion counters, which would
tell apart worlds that differ only in the order things happened.
"""

from __future__ import annotations

import hashlib
import json
import random
import types
from collections import deque
from typing import Any

from gossip.clock import Timestamp
from gossip.membership import MemberInfo
from gossip.store import Entry
from simulations.explore_model import IDS, World

SKIPPED = frozenset({
    "rng", "config", "stats", "events", "news", "last_reset", "listeners", "version", "cleared",
    "_pushed", "_logs", "_stale", "_mortal", "_ripe", "_live", "_ids", "_addresses", "_tree",
    "_final_expiry", "_store", "_clock", "_membership", "_lives", "_peers", "_outbox", "_intake",
    "_retirement", "_stability", "_standing",
})
_UNORDERED = frozenset({"entries", "members", "delta", "groups"})  # lists in messages and snapshots


_ATOMS = (str, int, float, bool, bytes, type(None), Timestamp, Entry, MemberInfo)  # their repr is canonical
_SKIPPED_TYPES = (random.Random, types.FunctionType, types.MethodType)
_names: dict[type, tuple[str, ...]] = {}


def _fields(obj: Any) -> tuple[str, ...]:
    if hasattr(obj, "__dict__"):
        return tuple(n for n in obj.__dict__ if n not in SKIPPED)
    kind = type(obj)
    names = _names.get(kind)
    if names is None:
        slots = (s for c in kind.__mro__ for s in getattr(c, "__slots__", ()))
        names = _names[kind] = tuple(n for n in slots if n not in SKIPPED)
    return names


def _canon(obj: Any) -> Any:
    if isinstance(obj, _ATOMS):
        return obj
    if isinstance(obj, dict):
        try:
            keys = sorted(obj)
        except TypeError:
            keys = sorted(obj, key=repr)
        return tuple((k, _canon(obj[k])) for k in keys)
    if isinstance(obj, (list, tuple, deque)):
        return tuple(map(_canon, obj))
    if isinstance(obj, (set, frozenset)):
        return tuple(sorted(map(_canon, obj), key=repr))
    if isinstance(obj, _SKIPPED_TYPES):
        return None
    return (type(obj).__name__, tuple(_canon(getattr(obj, n, None)) for n in _fields(obj)))


_json_memo: dict[bytes, bytes] = {}


def _canon_json(data: bytes) -> bytes:
    """A digest of a message or snapshot as JSON with its keys sorted, and its unordered
    lists too (remembered: the same bytes come back in many worlds)."""
    memo = _json_memo.get(data)
    if memo is not None:
        return memo

    def walk(value: Any, name: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            items = [walk(v) for v in value]
            return sorted(items, key=repr) if name in _UNORDERED else items
        return value

    text = json.dumps(walk(json.loads(data)), sort_keys=True)
    if len(_json_memo) > 200_000:
        _json_memo.clear()
    memo = _json_memo[data] = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return memo


def fingerprint(world: World) -> bytes:
    """A digest of everything that decides what can happen next and what is judged."""
    sim, ledger, player = world.sim, world.ledger, world.player
    nodes = []
    for node_id in IDS:
        node = sim.nodes[node_id]
        p = node.protocol
        counters = (p.stats.resets, p.stats.dropped_unvouched)
        saves = tuple(_canon_json(data) for _, data in player.saves.get(node_id, []))
        nodes.append((node.up, player.stopped.get(node_id), world.lives[node_id], counters, saves, _canon(p)))
    flights = sorted((world._ident(f), _canon_json(f.data)) for f in world.flights)
    book = (
        sorted((repr(op), i in ledger.losable) for i, op in enumerate(ledger.ops)),
        _canon(ledger._seen), sorted(ledger.reaped), sorted(ledger.restored), _canon(ledger.sources),
        _canon(ledger.renamed), ledger.reset_lives, _canon(ledger._life), _canon(ledger._resets),
    )
    counts = (world.ticks, world.ops, world.cuts, world.cut, sorted(world.rounded))
    state = (sim.now_us, counts, nodes, flights, book)
    return hashlib.blake2b(repr(state).encode(), digest_size=16).digest()

