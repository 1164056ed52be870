"""Flood a live node with adversarial requests and show that none gets through.

Starts a small signed cluster (LocalCluster: real `gossip-node` processes on 127.0.0.1,
a cluster key and an api token), then sends `--requests` hostile requests to node n1:
unsigned, badly signed, wrong-cluster, retired-key, replayed and out-of-window gossip,
malformed JSON, wrong types, deep nesting, oversized bodies (with and without a
Content-Length), huge counts and far-future timestamps in validly signed gossip, and
unauthenticated writes. Every kind is adversarial, so the number accepted must be 0.

Reports the status codes per kind, 5xx count, the state digest before and after, whether
the node still serves and gossips, the p99 latency of a legitimate GET /get measured by a
separate process before and during the flood, and the node's RSS growth.

    python -m scripts.flood --requests 10000

tests/test_flood.py runs `run_flood` with fewer requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.synchronize
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from gossip.auth import KeyRing, key_id, sign
from gossip.clock import Timestamp
from gossip.codec import PROTOCOL_VERSION, Codec
from gossip.config import Config
from gossip.membership import MemberInfo
from gossip.messages import Exchange, Rumor, RumorItem, WriterDelta
from gossip.store import Entry
from node.tools.local_cluster import LocalCluster
from node.tools.propagation import percentile

HOST = "127.0.0.1"
PROBE_KEY = "flood-probe"
JSONDict = dict[str, Any]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- the attacks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """One hostile request. `stream` > 0: a body of that many bytes sent chunked, with no
    Content-Length."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    stream: int = 0


@dataclass(frozen=True)
class Kind:
    name: str
    expected: frozenset[int]  # the status codes a correct node answers
    weight: int  # share of the flood (expensive kinds get less)
    build: Callable[[Forger], Attack]
    gossip: bool = True  # sent to /gossip (so a refusal is counted in /stats)
    raw: bool = False  # sent by send_oversized rather than httpx


class Forger:
    """Builds adversarial requests against one node of one cluster."""

    def __init__(self, url: str, cluster_id: str, key: bytes, node_id: str, rng: random.Random) -> None:
        self.url, self.cluster_id, self.node_id, self.rng = url, cluster_id, node_id, rng
        self.config = Config.local(cluster_id=cluster_id)
        self.codec = Codec(self.config)
        self.ring = KeyRing.of(key)
        self.retired = KeyRing.of(secrets.token_bytes(32))  # a key no node of ours accepts
        self.sender = MemberInfo(node_id, url, 1, 0)  # the node's own id: merging it is a no-op
        self.huge: dict[int, bytes] = {}

    # -- building blocks

    def headers(self, body: bytes, *, ring: KeyRing | None = None, cluster: str | None = None,
                at_ms: int | None = None) -> dict[str, str]:
        signed = sign(ring or self.ring, cluster or self.cluster_id, body,
                      now_ms() if at_ms is None else at_ms, secrets.token_hex(16))
        return {"content-type": "application/json", **signed}

    def gossip(self, body: bytes, **sign_args: Any) -> Attack:
        return Attack("POST", "/gossip", self.headers(body, **sign_args), body)

    def exchange(self, *, entries: int = 0, wall: int | None = None) -> bytes:
        """A well-formed Exchange; with `entries`, a delta from writer 'w' at time `wall`."""
        wall = now_ms() if wall is None else wall
        delta: tuple[WriterDelta, ...] = ()
        if entries:
            items = tuple(Entry(f"k{i}", i, Timestamp(wall, i), "w") for i in range(entries))
            delta = (WriterDelta("w", Timestamp(0, 0), Timestamp(wall, entries), items),)
        return self.codec.encode(Exchange(self.sender, {}, (), delta))

    def exchange_dict(self, wall: int | None = None) -> JSONDict:
        return json.loads(self.exchange(entries=1, wall=wall))  # type: ignore[no-any-return]

    def rumor(self, wall: int, items: int = 1) -> bytes:
        made = tuple(RumorItem(Entry(f"r{i}", i, Timestamp(wall, i + 1), "w"), Timestamp(0, 0))
                     for i in range(items))
        return self.codec.encode(Rumor.of(self.sender, made, ()))

    @staticmethod
    def dumps(obj: object) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


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


# -- the legitimate reader, in a process of its own -----------------------------------------


def probe_reads(url: str, token: str, stop: multiprocessing.synchronize.Event, out: Any, max_samples: int,
                pause: float) -> None:
    """GET /get?key=PROBE_KEY over and over (one connection, `pause` s apart) until `stop`
    is set or `max_samples` are taken; put (latencies in s, failures) on `out`."""
    latencies: list[float] = []
    failures = 0
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=10.0, headers=headers) as client:
        client.get("/health")  # open the connection before timing
        while not stop.is_set() and len(latencies) < max_samples:
            started = time.perf_counter()
            try:
                ok = client.get("/get", params={"key": PROBE_KEY}).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            failures += not ok
            time.sleep(pause)
    out.put((latencies, failures))


class Prober:
    """Runs probe_reads in another process, so the flood's own CPU use in this process
    does not delay the reader's measurements through the GIL."""

    def __init__(self, url: str, token: str, max_samples: int = 10**9, pause: float = 0.002) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.stop = ctx.Event()
        self.queue: Any = ctx.Queue()
        args = (url, token, self.stop, self.queue, max_samples, pause)
        self.process = ctx.Process(target=probe_reads, args=args, daemon=True)
        self.process.start()

    def result(self, stop: bool = True, timeout: float = 120.0) -> tuple[list[float], int]:
        """Collect what the reader measured: stop it now, or let it finish its samples."""
        if stop:
            self.stop.set()
        try:
            latencies, failures = self.queue.get(timeout=timeout)
        finally:
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        return latencies, failures


# -- running the flood ----------------------------------------------------------------------


@dataclass
class KindResult:
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    sample: dict[str, str] = field(default_factory=dict)  # status -> one answer's detail


@dataclass
class FloodResult:
    requests: int
    nodes: int
    by_kind: dict[str, KindResult]
    expected: dict[str, frozenset[int]]
    accepted: int
    server_errors: int
    transport_errors: int
    unexpected: dict[str, Counter[str]]  # kind -> statuses outside its expected set
    refused_gossip: int  # /gossip answers that SharedState.receive counted as rejected
    rejected_before: int
    rejected_after: int
    rejected_by_reason: dict[str, int]
    replay_originals: int  # legitimate messages sent once so they could be replayed
    digest_before: dict[str, Any]
    digest_after: dict[str, Any]
    peer_digest_after: dict[str, Any] | None
    serving_after: bool
    legit_exchange_after: int
    propagated_after: bool
    p99_before_ms: float
    p99_during_ms: float
    p50_before_ms: float
    p50_during_ms: float
    probe_samples: tuple[int, int]
    probe_failures: tuple[int, int]
    rss_before_kib: int
    rss_after_kib: int
    seconds: float

    @property
    def rejected_delta(self) -> int:
        return self.rejected_after - self.rejected_before

    @property
    def ok(self) -> bool:
        return (self.accepted == 0 and self.server_errors == 0 and self.transport_errors == 0
                and not self.unexpected and self.digest_before == self.digest_after and self.serving_after
                and self.legit_exchange_after == 200 and self.propagated_after
                and self.rejected_delta == self.refused_gossip)

    def table(self) -> str:
        codes = sorted({s for r in self.by_kind.values() for s in r.statuses}, key=lambda s: (len(s), s))
        width = max(len(k) for k in self.by_kind) + 2
        cols = {c: max(7, len(c)) + 1 for c in codes}
        head = f"{'kind':<{width}}{'sent':>6}" + "".join(f"{c:>{cols[c]}}" for c in codes) + "  expected"
        lines = [head, "-" * len(head)]
        for name, r in self.by_kind.items():
            cells = "".join(f"{r.statuses.get(c, 0) or '.':>{cols[c]}}" for c in codes)
            expected = ",".join(map(str, sorted(self.expected[name])))
            flag = "" if name not in self.unexpected else "  <-- UNEXPECTED"
            lines.append(f"{name:<{width}}{r.sent:>6}{cells}  {expected}{flag}")
        total: Counter[str] = Counter()
        for r in self.by_kind.values():
            total.update(r.statuses)
        lines.append("-" * len(head))
        sent = sum(r.sent for r in self.by_kind.values())
        lines.append(f"{'total':<{width}}{sent:>6}" + "".join(f"{total.get(c, 0):>{cols[c]}}" for c in codes))
        growth = (self.rss_after_kib - self.rss_before_kib) / 1024
        lines += [
            "",
            f"requests: {sent} in {self.seconds:.1f} s to a {self.nodes}-node cluster; accepted (2xx): "
            f"{self.accepted}; 5xx: {self.server_errors}; transport errors: {self.transport_errors}",
            f"gossip refusals counted in /stats: {self.rejected_delta} (expected {self.refused_gossip}): "
            f"{self.rejected_by_reason}",
            f"legitimate originals sent once so they could be replayed (not part of the flood): "
            f"{self.replay_originals}",
            f"state digest before: {self.digest_before}",
            f"state digest after:  {self.digest_after}  "
            + ("UNCHANGED" if self.digest_before == self.digest_after else "CHANGED"),
            f"peer digest after:   {self.peer_digest_after}",
            f"after the flood: /health {'200' if self.serving_after else 'FAILED'}, a legitimately signed "
            f"exchange -> {self.legit_exchange_after}, a write on n2 reached n1: {self.propagated_after}",
            f"legitimate GET /get, p50 / p99: before {self.p50_before_ms:.2f} / {self.p99_before_ms:.2f} ms "
            f"({self.probe_samples[0]} reads, {self.probe_failures[0]} failed); during "
            f"{self.p50_during_ms:.2f} / {self.p99_during_ms:.2f} ms ({self.probe_samples[1]} reads, "
            f"{self.probe_failures[1]} failed); p99 ratio {self.p99_during_ms / self.p99_before_ms:.1f}x",
            f"node RSS: {self.rss_before_kib / 1024:.1f} MiB before, "
            f"{self.rss_after_kib / 1024:.1f} MiB after (growth {growth:+.1f} MiB)",
            f"verdict: {'PASS' if self.ok else 'FAIL'}",
        ]
        return "\n".join(lines)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        lines = status.read().splitlines()
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _only_loopback(url: str) -> None:
    if urlsplit(url).hostname != HOST:
        raise ValueError(f"the flood only targets {HOST}, not {url}")


def _pieces(attack: Attack, size: int = 64 * 1024) -> Iterator[bytes]:
    """The body on the wire, in pieces: as is, or chunked (without the last, empty chunk)."""
    if not attack.stream:
        for i in range(0, len(attack.body), size):
            yield attack.body[i : i + size]
        return
    sent = 0
    while sent < attack.stream:
        n = min(size, attack.stream - sent)
        sent += n
        yield f"{n:x}\r\n".encode() + b" " * n + b"\r\n"


async def send_oversized(url: str, attack: Attack, timeout: float = 10.0) -> str:
    """Send a body larger than the node takes, over a raw connection, the way careful
    clients send large bodies: `Expect: 100-continue`, the body only once the node asks
    for it (or has not answered in timeout/2), and reading the answer while still
    writing. The node answers 413 and closes without reading the rest, so a client that
    writes the whole body before it reads (httpx does) is often reset before it sees the
    413. The status code as text, or the error's name."""
    parts = urlsplit(url)
    assert parts.hostname == HOST and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    length = "transfer-encoding: chunked" if attack.stream else f"content-length: {len(attack.body)}"
    head = [f"{attack.method} {attack.path} HTTP/1.1", f"host: {parts.netloc}", length, "connection: close",
            "expect: 100-continue", *(f"{k}: {v}" for k, v in attack.headers.items())]
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        status = asyncio.ensure_future(reader.readline())
        try:
            first = await asyncio.wait_for(asyncio.shield(status), timeout / 2)
        except TimeoutError:
            first = b""  # no interim answer: send the body anyway, as curl does
        if first.split()[1:2] == [b"100"]:
            await reader.readline()  # the blank line that ends the interim answer
            status = asyncio.ensure_future(reader.readline())
        for piece in _pieces(attack):
            if status.done():
                break  # answered: the rest of the body is not wanted
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)  # let the reader take an answer that has arrived
        if attack.stream and not status.done():
            # A node that took the whole body would wait for the last chunk: send it only if
            # no answer comes, so a correct node's 413 is never raced by a reset.
            try:
                await asyncio.wait_for(asyncio.shield(status), timeout / 2)
            except TimeoutError:
                writer.write(b"0\r\n\r\n")
        line = await asyncio.wait_for(status, timeout)
    except (ConnectionError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        writer.close()
    fields = line.split()
    return fields[1].decode() if len(fields) > 1 else "closed without an answer"


class _Replays:
    """Legitimately signed messages sent once each (and accepted), then replayed; a fresh
    one after `per_original` replays or half the replay window, so every replay is refused
    for its nonce, not its age."""

    def __init__(self, forger: Forger, client: httpx.AsyncClient, per_original: int = 25) -> None:
        self.forger, self.client, self.per_original = forger, client, per_original
        self.lock = anyio.Lock()
        self.current: Attack | None = None
        self.uses, self.sent_at, self.originals = 0, 0.0, 0

    async def next(self) -> Attack:
        async with self.lock:
            max_age = self.forger.config.replay_window / 2
            stale = time.monotonic() - self.sent_at > max_age
            if self.current is None or self.uses >= self.per_original or stale:
                original = self.forger.gossip(self.forger.exchange())
                response = await self.client.post(self.forger.url + "/gossip", content=original.body,
                                                  headers=original.headers)
                if response.status_code != 200:
                    raise RuntimeError(f"a legitimate exchange was refused: {response.status_code} "
                                       f"{response.text}")
                self.current, self.uses, self.sent_at = original, 0, time.monotonic()
                self.originals += 1
            self.uses += 1
            return self.current


async def _flood(forger: Forger, plan: list[Kind], concurrency: int, deadline: float,
                 results: dict[str, KindResult]) -> tuple[int, int]:
    """Send the plan; (replay originals sent, transport errors)."""
    transport_errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        replays = _Replays(forger, client)
        queue = iter(plan)

        async def worker() -> None:
            nonlocal transport_errors
            for kind in queue:
                if time.monotonic() > deadline:
                    raise TimeoutError("the flood ran past its deadline")
                attack = await replays.next() if kind.name == "replayed" else kind.build(forger)
                result = results[kind.name]
                result.sent += 1
                if kind.raw:
                    status = await send_oversized(forger.url, attack)
                    result.statuses[status] += 1
                    transport_errors += not status.isdigit()
                    continue
                try:
                    headers = {k.encode(): v.encode("latin-1") for k, v in attack.headers.items()}
                    response = await client.request(attack.method, forger.url + attack.path,
                                                    content=attack.body, headers=headers)
                except httpx.TransportError as exc:
                    transport_errors += 1
                    result.statuses[type(exc).__name__] += 1
                    continue
                status = str(response.status_code)
                result.statuses[status] += 1
                if status not in result.sample:
                    try:
                        result.sample[status] = str(response.json().get("detail", ""))[:160]
                    except ValueError:
                        result.sample[status] = response.text[:160]

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
    return replays.originals, transport_errors


def _poll(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def run_flood(requests: int = 10_000, nodes: int = 2, concurrency: int = 8, seed: int = 5,
              timeout: float = 600.0, baseline_reads: int = 1000) -> FloodResult:
    """Start a cluster, flood its first node, measure, stop the cluster."""
    if not 1 <= nodes <= 3:
        raise ValueError("1 to 3 nodes")
    rng = random.Random(seed)
    token = secrets.token_urlsafe(24)
    cluster = LocalCluster(nodes=nodes, interval=0.2, env={"GOSSIP_API_TOKEN": token})
    for url in cluster.urls:
        _only_loopback(url)
    auth = {"authorization": f"Bearer {token}"}
    started = time.monotonic()
    with cluster, httpx.Client(timeout=10.0, headers=auth) as http:
        target, pid = cluster.urls[0], cluster.procs["n1"].pid
        assert cluster.key is not None
        forger = Forger(target, cluster.cluster_id, bytes.fromhex(cluster.key), "n1", rng)
        http.post(target + "/set", json={"key": PROBE_KEY, "value": {"legit": True}}).raise_for_status()
        for url in cluster.urls:  # every node holds the probe key: the digests agree before we start
            _poll(lambda u=url: http.get(u + "/get", params={"key": PROBE_KEY}).status_code == 200,  # type: ignore[misc]
                  20.0, f"{url} to hold the probe key")

        baseline = Prober(target, token, max_samples=baseline_reads)
        before_reads, before_failures = baseline.result(stop=False)

        digest_before = http.get(target + "/digest").json()
        stats_before = http.get(target + "/stats").json()
        rss_before = rss_kib(pid)

        plan = schedule(kinds(token), requests, rng)
        results = {k.name: KindResult() for k in kinds(token)}
        prober = Prober(target, token)
        flood_started = time.monotonic()
        try:
            originals, transport_errors = anyio.run(
                _flood, forger, plan, concurrency, started + timeout, results
            )
        finally:
            during_reads, during_failures = prober.result()
        flood_seconds = time.monotonic() - flood_started

        rss_after = rss_kib(pid)
        digest_after = http.get(target + "/digest").json()
        stats_after = http.get(target + "/stats").json()
        serving = http.get(target + "/health").status_code == 200
        legit = forger.gossip(forger.exchange())
        legit_status = http.post(target + "/gossip", content=legit.body, headers=legit.headers).status_code
        peer_digest = http.get(cluster.urls[1] + "/digest").json() if nodes > 1 else None
        propagated = True
        if nodes > 1:  # gossip between the nodes still works: a write on n2 reaches n1
            http.post(cluster.urls[1] + "/set", json={"key": "after-flood", "value": 1}).raise_for_status()
            try:
                _poll(lambda: http.get(target + "/get", params={"key": "after-flood"}).status_code == 200,
                      20.0, "a write on n2 to reach n1")
            except TimeoutError:
                propagated = False

    expected = {k.name: k.expected for k in kinds(token)}
    gossip_kinds = {k.name for k in kinds(token) if k.gossip}
    unexpected: dict[str, Counter[str]] = {}
    accepted = server_errors = refused = 0
    for name, r in results.items():
        for status, n in r.statuses.items():
            if status.isdigit() and 200 <= int(status) < 300:
                accepted += n
            if status.isdigit() and int(status) >= 500:
                server_errors += n
            if status.isdigit() and int(status) not in expected[name]:
                unexpected.setdefault(name, Counter())[status] += n
            if not status.isdigit():
                unexpected.setdefault(name, Counter())[status] += n
            # SharedState.receive counts what it refuses; 413 is refused before it is reached
            if name in gossip_kinds and status in ("400", "401", "403", "409"):
                refused += n
    # an oversized body to /set is no gossip, but "oversized" kinds are only ever 413
    return FloodResult(
        requests=requests, nodes=nodes, by_kind=results, expected=expected, accepted=accepted,
        server_errors=server_errors, transport_errors=transport_errors, unexpected=unexpected,
        refused_gossip=refused, rejected_before=stats_before["rejected"],
        rejected_after=stats_after["rejected"],
        rejected_by_reason=stats_after["rejected_by_reason"], replay_originals=originals,
        digest_before=digest_before, digest_after=digest_after, peer_digest_after=peer_digest,
        serving_after=serving, legit_exchange_after=legit_status, propagated_after=propagated,
        p99_before_ms=percentile(before_reads, 99) * 1000, p99_during_ms=percentile(during_reads, 99) * 1000,
        p50_before_ms=percentile(before_reads, 50) * 1000, p50_during_ms=percentile(during_reads, 50) * 1000,
        probe_samples=(len(before_reads), len(during_reads)),
        probe_failures=(before_failures, during_failures),
        rss_before_kib=rss_before, rss_after_kib=rss_after, seconds=flood_seconds,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.flood", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=10_000, help="adversarial requests to send")
    p.add_argument("--nodes", type=int, default=2, help="cluster size, 1 to 3 (node n1 is flooded)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    args = p.parse_args(argv)
    result = run_flood(args.requests, args.nodes, args.concurrency, args.seed, args.timeout)
    print(result.table())
    if result.unexpected:
        print("\nunexpected answers, with a sample detail:")
        for name, statuses in result.unexpected.items():
            for status in statuses:
                sample = result.by_kind[name].sample.get(status, "")
                print(f"  {name}: {status} x{statuses[status]}: {sample}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
