"""Every kind of hostile request the flood sends, how each is built, and the answers a
correct node gives it; the schedule that mixes them."""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gossip.auth import key_id
from gossip.codec import PROTOCOL_VERSION, Codec
from gossip.config import Config
from gossip.messages import Exchange
from scripts.flood.forger import PROBE_KEY, Attack, Forger, JSONDict, now_ms


@dataclass(frozen=True)
class Kind:
    name: str
    expected: frozenset[int]  # the status codes a correct node answers
    weight: int  # share of the flood (expensive kinds get less)
    build: Callable[[Forger], Attack]
    gossip: bool = True  # sent to /gossip (so a refusal is counted in /stats)
    raw: bool = False  # sent by send_oversized rather than httpx


def _unsigned(f: Forger) -> Attack:
    body = f.exchange(entries=1)
    return Attack("POST", "/gossip", {"content-type": "application/json"}, body)


def _bad_signature(f: Forger) -> Attack:
    body = f.exchange(entries=1)
    attack = f.gossip(body)
    sig = attack.headers["x-gossip-signature"]
    choice = f.rng.randrange(4)
    if choice == 0:  # one hex digit changed
        i = f.rng.randrange(len(sig))
        sig = sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1 :]
    elif choice == 1:  # truncated
        sig = sig[: f.rng.randrange(len(sig))]
    elif choice == 2:  # the signature of another body
        sig = f.headers(body + b" ")["x-gossip-signature"]
    else:  # a valid signature, then the body altered
        body = body.replace(b'"k0"', b'"k1"')
    return Attack("POST", "/gossip", {**attack.headers, "x-gossip-signature": sig}, body)


def _signed_for_other_cluster(f: Forger) -> Attack:
    """Validly signed with the right key, but for (and in) another cluster: an attacker who
    holds a key of another cluster, or replays another cluster's traffic."""
    other = f.cluster_id + "-other"
    body = Codec(Config.local(cluster_id=other)).encode(Exchange(f.sender, {}, (), ()))
    return f.gossip(body, cluster=other)


def _wrong_cluster_in_body(f: Forger) -> Attack:
    msg = f.exchange_dict()
    msg["cluster"] = f.rng.choice([f.cluster_id + "x", "", 7, None, "default"])
    return f.gossip(f.dumps(msg))


def _wrong_version(f: Forger) -> Attack:
    msg = f.exchange_dict()
    v = PROTOCOL_VERSION
    msg["v"] = f.rng.choice([0, v + 1, 99, str(v), float(v), None, True])
    return f.gossip(f.dumps(msg))


def _retired_key(f: Forger) -> Attack:
    return f.gossip(f.exchange(entries=1), ring=f.retired)


def _stale_time(f: Forger) -> Attack:
    window = int(f.config.replay_window * 1000)
    return f.gossip(f.exchange(entries=1), at_ms=now_ms() - 2 * window - f.rng.randrange(10**6))


def _future_time(f: Forger) -> Attack:
    window = int(f.config.replay_window * 1000)
    return f.gossip(f.exchange(entries=1), at_ms=now_ms() + 2 * window + f.rng.randrange(10**6))


def _malformed_signature_headers(f: Forger) -> Attack:
    """The right key id, so the headers get past the key look-up; then nonsense."""
    body = f.exchange(entries=1)
    headers = f.headers(body)
    name, value = f.rng.choice([
        ("x-gossip-time", "\u00b2"),  # a digit to str.isdigit, not to int()
        ("x-gossip-time", "9" * 5000),  # longer than int() converts
        ("x-gossip-time", "-5"),
        ("x-gossip-time", ""),
        ("x-gossip-nonce", "n" * 65),
        ("x-gossip-signature", "\u00e9" * 64),
        ("x-gossip-key", "\u00ff" * 12),
    ])
    headers[name] = value  # sent as latin-1 bytes, as HTTP allows
    return Attack("POST", "/gossip", headers, body)


_GARBAGE = [b"", b"{", b"}", b"not json", b"\xff\xfe\xfd", b'{"v":1,', b'{"v":1}trailing', b"\x00" * 64,
            b"[1,2", b'{"v":1,"v":1,', b"nul", b"'single'", b'{"a":1}{"b":2}']


def _malformed_json(f: Forger) -> Attack:
    body = f.rng.choice(_GARBAGE)
    if f.rng.random() < 0.3:
        body = bytes(f.rng.randrange(256) for _ in range(f.rng.randrange(1, 300)))
        if body[:1] in (b"{", b"[") or body.strip()[:1].isdigit():
            body = b"\xff" + body
    return f.gossip(body)


def _wrong_type_mutations(f: Forger, wall: int) -> list[Callable[[JSONDict], object]]:
    """JSON-level edits of a valid Exchange, each of which makes it invalid."""

    def entry(msg: JSONDict) -> list[Any]:
        return msg["delta"][0][3][0]  # type: ignore[no-any-return]

    Edit = Callable[[JSONDict], object]

    def setter(path: Callable[[JSONDict], list[Any]], index: int, value: object) -> Edit:
        def edit(msg: JSONDict) -> object:
            path(msg)[index] = value
            return msg

        return edit

    def put(name: str, value: object) -> Edit:
        def edit(msg: JSONDict) -> object:
            msg[name] = value
            return msg

        return edit

    def drop(name: str) -> Edit:
        def edit(msg: JSONDict) -> object:
            del msg[name]
            return msg

        return edit

    delta = lambda m: m["delta"][0]  # noqa: E731
    return [
        put("sender", {"id": "x"}), put("sender", ["x", "http://x", "1", 0]), put("sender", ["", "a", 1, 0]),
        put("digest", []), put("digest", {"w": [1.5, 0]}), put("digest", {"w": [-1, 0]}),
        put("digest", {"w": [2**53, 0]}), put("digest", {"w": [1]}), put("digest", {"": [1, 0]}),
        put("members", {}), put("members", [[1, 2, 3, 4]]), put("members", [["a", "b", 1]]),
        put("delta", "x"), put("delta", [["w", [0, 0], [1, 0]]]), put("type", "exchangeX"), put("type", 1),
        put("type", []), put("type", {}),  # unhashable: once a 500 (a TypeError in the decoder)
        drop("sender"), drop("digest"), drop("delta"), drop("type"), put("type", "rumor"),
        setter(entry, 0, 5), setter(entry, 0, ""), setter(entry, 0, "k" * 257), setter(entry, 0, "\ud800"),
        setter(entry, 1, float("nan")), setter(entry, 1, float("inf")), setter(entry, 1, "v" * 70_000),
        setter(entry, 2, True), setter(entry, 2, -1), setter(entry, 2, 1.5), setter(entry, 3, "0"),
        setter(entry, 4, 2), setter(entry, 4, True), setter(entry, 5, "soon"), setter(entry, 5, -3),
        setter(delta, 1, [wall, 0]),  # the entry no longer lies in (base, upto]
        setter(delta, 2, [wall - 1, 0]), setter(delta, 0, 9), setter(delta, 3, {}),
        lambda m: [m], lambda m: None, lambda m: "exchange", lambda m: 1,
        lambda m: {**m, "delta": [[*m["delta"][0][:3], [[*m["delta"][0][3][0], 1]]]]},  # 7 fields
    ]


def _wrong_types(f: Forger) -> Attack:
    wall = now_ms()
    edit = f.rng.choice(_wrong_type_mutations(f, wall))
    msg = edit(f.exchange_dict(wall))
    return f.gossip(json.dumps(msg, separators=(",", ":")).encode())


def _deep_nesting(f: Forger) -> Attack:
    depth = f.config.max_value_depth
    choice = f.rng.randrange(4)
    if choice == 0:  # a value one level deeper than allowed
        msg = f.exchange_dict()
        msg["delta"][0][3][0][1] = json.loads("[" * (depth + 1) + "]" * (depth + 1))
        body = f.dumps(msg)
    elif choice == 1:  # far deeper than Python's recursion limit, as the whole body
        n = f.rng.choice([10_000, 100_000, 500_000])
        body = b"[" * n + b"]" * n
    elif choice == 2:
        n = 50_000
        body = b'{"a":' * n + b"1" + b"}" * n
    else:  # deep, and not even closed
        body = b'{"v":1,"sender":' + b"[" * 200_000
    return f.gossip(body)


def _oversized_with_length(f: Forger) -> Attack:
    size = f.config.max_body_bytes + f.rng.choice([1, 1024, 512 * 1024])
    path = f.rng.choice(["/gossip", "/set"])
    body = b"[" + b" " * (size - 2) + b"]"
    return Attack("POST", path, f.headers(body), body)


def _oversized_chunked(f: Forger) -> Attack:
    # Just over the limit: the node stops reading at the piece that crosses it, and a
    # client that is still writing when the node closes is reset (see send_oversized).
    size = f.config.max_body_bytes + f.rng.choice([1, 1024, 64 * 1024])
    path = f.rng.choice(["/gossip", "/set"])
    return Attack("POST", path, {"content-type": "application/json"}, stream=size)


def _huge_counts(f: Forger) -> Attack:
    choice = f.rng.randrange(5)
    if choice not in f.huge:  # built once each (they are big), signed afresh every time
        f.huge[choice] = _huge_body(f, choice)
    return f.gossip(f.huge[choice])


def _huge_body(f: Forger, choice: int) -> bytes:
    cfg, wall = f.config, now_ms()
    if choice == 0:
        body = f.exchange(entries=cfg.max_entries_per_message + 1, wall=wall)
    elif choice == 1:
        body = f.rumor(wall, items=cfg.max_entries_per_message + 1)
    else:
        msg = f.exchange_dict(wall)
        many = cfg.max_members_per_message + 1
        if choice == 2:
            msg["members"] = [[f"m{i}", f"http://127.0.0.1:{i + 1}", 1, 0] for i in range(many)]
        elif choice == 3:
            msg["digest"] = {f"w{i}": [1, 0] for i in range(many)}
        else:
            msg = json.loads(f.rumor(wall))
            msg["groups"][0][0] = [f"http://127.0.0.1:{i + 1}" for i in range(many)]
        body = f.dumps(msg)
    return body


def _far_future(f: Forger) -> Attack:
    """Validly signed gossip whose HLC timestamps lie beyond max_offset."""
    ahead = f.rng.choice([f.config.max_offset_ms + 2_000, 3_600_000, 10 * 365 * 86_400_000])
    wall = now_ms() + ahead
    choice = f.rng.randrange(3)
    if choice == 0:
        body = f.rumor(wall)
    elif choice == 1:
        body = f.exchange(entries=1, wall=wall)
    else:
        msg = json.loads(f.exchange())
        msg["digest"] = {"w": [wall, 0]}
        body = f.dumps(msg)
    return f.gossip(body)


def _bad_auth(f: Forger, token: str) -> dict[str, str]:
    auth = f.rng.choice([None, "Bearer wrong", f"Bearer {token}x", f"Bearer {token[:-1]}", f"Basic {token}",
                         "Bearer", token, "Bearer \u00e9\u00e9"])
    headers = {"content-type": "application/json"}
    if auth is not None:
        headers["authorization"] = auth
    return headers


def _unauth_set(f: Forger, token: str) -> Attack:
    body = f.dumps({"key": PROBE_KEY, "value": "overwritten"})
    return Attack("POST", "/set", _bad_auth(f, token), body)


def _unauth_delete(f: Forger, token: str) -> Attack:
    return Attack("POST", "/delete", _bad_auth(f, token), f.dumps({"key": PROBE_KEY}))


def _unauth_admin(f: Forger, token: str) -> Attack:
    kid = key_id(f.ring.primary)
    method, path, body = f.rng.choice([
        ("POST", "/admin/keys", f.dumps({"key": secrets.token_hex(32)})),
        ("POST", f"/admin/keys/{kid}/primary", b""),
        ("DELETE", f"/admin/keys/{kid}", b""),
        ("GET", "/admin/keys", b""),
    ])
    return Attack(method, path, _bad_auth(f, token), body)


def kinds(token: str) -> list[Kind]:
    """Every kind of hostile request, with the answers a correct node gives."""
    s = frozenset
    return [
        Kind("unsigned", s({401}), 3, _unsigned),
        Kind("bad signature", s({401}), 3, _bad_signature),
        Kind("signed for another cluster", s({401}), 3, _signed_for_other_cluster),
        Kind("wrong cluster id in body", s({409}), 3, _wrong_cluster_in_body),
        Kind("wrong protocol version", s({409}), 2, _wrong_version),
        Kind("retired key", s({401}), 3, _retired_key),
        Kind("replayed", s({403}), 3, lambda f: Attack("", "", {})),  # built by the runner
        Kind("timestamp before window", s({403}), 3, _stale_time),
        Kind("timestamp after window", s({403}), 2, _future_time),
        Kind("malformed signature headers", s({401}), 2, _malformed_signature_headers),
        Kind("malformed JSON", s({400}), 3, _malformed_json),
        Kind("wrong types", s({400}), 4, _wrong_types),
        Kind("deep nesting", s({400}), 2, _deep_nesting),
        Kind("oversized, Content-Length", s({413}), 1, _oversized_with_length, raw=True),
        Kind("oversized, chunked", s({413}), 1, _oversized_chunked, raw=True),
        Kind("huge counts", s({400}), 1, _huge_counts),
        Kind("far-future HLC timestamp", s({400}), 3, _far_future),
        Kind("unauthenticated /set", s({401}), 3, lambda f: _unauth_set(f, token), gossip=False),
        Kind("unauthenticated /delete", s({401}), 2, lambda f: _unauth_delete(f, token), gossip=False),
        Kind("unauthenticated /admin", s({401}), 1, lambda f: _unauth_admin(f, token), gossip=False),
    ]


def schedule(all_kinds: Sequence[Kind], total: int, rng: random.Random) -> list[Kind]:
    """`total` kinds in random order, each in proportion to its weight (every kind at least once)."""
    weights = sum(k.weight for k in all_kinds)
    counts = [max(1, total * k.weight // weights) for k in all_kinds]
    i = 0
    while sum(counts) != total:  # hand out the rounding remainder (or take it back)
        step = 1 if sum(counts) < total else -1
        if counts[i % len(counts)] + step >= 1:
            counts[i % len(counts)] += step
        i += 1
    plan = [k for k, n in zip(all_kinds, counts, strict=True) for _ in range(n)]
    rng.shuffle(plan)
    return plan
