"""The forger of hostile requests: well-formed gossip, validly signed or not, built to be
broken by the attacks (attacks.py)."""

from __future__ import annotations

import json
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

from gossip.auth import KeyRing, sign
from gossip.clock import Timestamp
from gossip.codec import Codec
from gossip.config import Config
from gossip.membership import MemberInfo
from gossip.messages import Exchange, Rumor, RumorItem, WriterDelta
from gossip.store import Entry

PROBE_KEY = "flood-probe"  # the key the legitimate reader reads, and unauthenticated writes aim at
JSONDict = dict[str, Any]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Attack:
    """One hostile request. `stream` > 0: a body of that many bytes sent chunked, with no
    Content-Length."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    stream: int = 0



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
