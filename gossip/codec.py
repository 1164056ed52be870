"""The one wire format: compact JSON with a protocol version and a cluster id.

Both the HTTP transport and the in-memory network use it, so byte counts are real.
Decoding checks every type and limit; nothing half-checked reaches the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gossip.clock import Timestamp
from gossip.config import Config
from gossip.errors import CallerError, IncompatibleMessage, MalformedMessage
from gossip.jsontext import JSONDecodeError, dumps, loads
from gossip.limits import check_key, check_value, is_text
from gossip.membership import MemberInfo, Tags, tags_problem
from gossip.messages import (
    BEHIND_REASONS,
    Behind,
    Exchange,
    ForgottenLife,
    Message,
    Reply,
    Rumor,
    RumorGroup,
    RumorItem,
    Snapshot,
    WriterDelta,
)
from gossip.retired import BUCKETS, EMPTY, RetiredSummary
from gossip.store import Entry

PROTOCOL_VERSION = 3
_PARSED_SCALARS = frozenset({int, float, bool, type(None)})  # valid as parsed (see fast_entry)
SNAPSHOT_VERSIONS = (1, 2, 3)  # snapshots of versions 1 and 2 still load
_MAX_INT = 2**53  # integers stay exact in every JSON implementation
_KINDS = {"exchange": Exchange, "reply": Reply, "rumor": Rumor}


def entry_to_wire(e: Entry) -> list[Any]:
    return [e.key, e.value, e.ts.wall, e.ts.counter, int(e.deleted), e.expires_at]


def entry_size(e: Entry) -> int:
    """Bytes this entry adds to a message (close enough for a budget)."""
    return len(dumps(entry_to_wire(e))) + 1



def _member(m: MemberInfo) -> list[Any]:
    record: list[Any] = [m.id, m.address, m.generation, m.heartbeat, int(m.left)]
    if m.tags:  # (a member without tags keeps the five-item record)
        record.append(dict(m.tags))
    return record


def _digest(d: Mapping[str, Timestamp]) -> dict[str, list[int]]:
    return {origin: [ts.wall, ts.counter] for origin, ts in d.items()}


def _writer_delta(d: WriterDelta) -> list[Any]:
    body: list[Any] = [d.origin, [*d.base], [*d.upto], [entry_to_wire(e) for e in d.entries]]
    if d.final:  # (only then: most deltas are of writers still alive)
        body.append(1)
    return body


def _forgotten(d: Mapping[str, ForgottenLife]) -> dict[str, list[int]]:
    return {node: [life.generation, *life.collected] for node, life in d.items()}


def _hex(value: int) -> str:
    return f"{value:016x}"


def _retired_sum(summary: RetiredSummary) -> list[Any]:
    """[count, root] or [count, root, buckets]: hashes as 16 hex digits each."""
    body: list[Any] = [summary.count, _hex(summary.root)]
    if summary.buckets is not None:
        body.append("".join(_hex(b) for b in summary.buckets))
    return body


class Codec:
    def __init__(self, config: Config) -> None:
        self.config = config

    def encode(self, message: Message) -> bytes:
        body: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "cluster": self.config.cluster_id,
            "sender": _member(message.sender),
        }
        if isinstance(message, Rumor):
            body["type"] = "rumor"
            body["groups"] = [
                [list(g.cover), [[i.entry.origin, i.prev.wall, i.prev.counter, *entry_to_wire(i.entry)]
                                 for i in g.items]]
                for g in message.groups
            ]
        else:
            body["type"] = "exchange" if isinstance(message, Exchange) else "reply"
            body["digest"] = _digest(message.digest)
            body["members"] = [_member(m) for m in message.members]
            body["delta"] = [_writer_delta(d) for d in message.delta]
            body["horizon"] = _digest(message.horizon)
            body["retired"] = _digest(message.retired)
            body["collected"] = [*message.collected]
            body["boot"] = int(message.bootstrap)
            body["more"] = int(message.more)
            if (b := message.behind) is not None:
                body["behind"] = [b.reason, b.writer, b.mark.wall, b.mark.counter]
            if message.retired_sum.count:
                body["rsum"] = _retired_sum(message.retired_sum)
            if message.lineage:
                body["lineage"] = message.lineage
            if message.roster is not None:
                body["roster"] = message.roster
            if message.roster_end is not None:
                body["roster_end"] = int(message.roster_end)
                body["forgotten"] = _forgotten(message.forgotten)
        return dumps(body)

    def encode_snapshot(self, snap: Snapshot) -> bytes:
        return dumps({
            "v": PROTOCOL_VERSION, "cluster": self.config.cluster_id, "type": "snapshot",
            "clock": [*snap.clock], "watermarks": _digest(snap.watermarks),
            "horizon": _digest(snap.horizon), "retired": _digest(snap.retired),
            "forgotten": _forgotten(snap.forgotten), "generation": snap.generation,
            "lineage": snap.lineage, "members": [_member(m) for m in snap.members],
            "entries": [[e.origin, *entry_to_wire(e)] for e in snap.entries],
        })

    def decode_snapshot(self, data: bytes) -> Snapshot:
        """A snapshot file, checked like any message (it may be damaged or foreign)."""
        try:
            body = loads(data)
        except JSONDecodeError as exc:
            raise MalformedMessage(f"snapshot is not JSON: {exc}") from exc
        d = _Decoder(self.config, max_entries=2**62)  # a snapshot holds the whole state
        obj = d.obj(body, "snapshot")
        if obj.get("v") not in SNAPSHOT_VERSIONS or obj.get("cluster") != self.config.cluster_id:
            raise IncompatibleMessage("snapshot of another protocol version or cluster")

        entries = []
        for i, raw in enumerate(d.array(d.field(obj, "entries"), "entries")):
            item = d.array(raw, f"entries[{i}]")
            if not item:
                raise MalformedMessage(f"entries[{i}] is empty")
            entries.append(d.entry(d.text(item[0], f"entries[{i}] origin"), item[1:], f"entries[{i}]"))
        retired = d.digest(obj, "retired") if "retired" in obj else {}
        horizon = d.digest(obj, "horizon")
        if obj["v"] < 3:  # forgotten lives by generation alone: as collected up to the snapshot
            collected = max(horizon.values(), default=Timestamp(0, 0))
            raw_forgotten = d.obj(obj.get("forgotten", {}), "forgotten")
            forgotten = {d.text(k, "forgotten key"): ForgottenLife(d.int(v, f"forgotten[{k!r}]"), collected)
                         for k, v in raw_forgotten.items()}
        else:
            forgotten = d.forgotten(obj, "forgotten", limit=None)
        members = tuple(d.member(m, f"members[{i}]")
                        for i, m in enumerate(d.array(obj.get("members", []), "members")))
        return Snapshot(d.ts(d.field(obj, "clock"), "clock"), d.digest(obj, "watermarks"), horizon,
                        tuple(entries), retired, forgotten, d.int(obj.get("generation", 0), "generation"),
                        d.int(obj.get("lineage", 0), "lineage"), members)

    def decode(self, data: bytes) -> Message:
        try:
            body = loads(data)
        except JSONDecodeError as exc:
            raise MalformedMessage(f"body is not JSON: {exc}") from exc
        return _Decoder(self.config).message(body)


class _Decoder:
    """Turns parsed JSON into messages, naming the path of whatever is wrong."""

    def __init__(self, config: Config, max_entries: int | None = None) -> None:
        self.config = config
        self.entries = 0
        self.max_entries = config.max_entries_per_message if max_entries is None else max_entries

    def message(self, body: object) -> Message:
        obj = self.obj(body, "message")
        for name in ("v", "cluster", "type"):
            self.field(obj, name)
        version = obj["v"]
        if type(version) is not int or version != PROTOCOL_VERSION:
            raise IncompatibleMessage(
                f"protocol version {version!r}, this node speaks {PROTOCOL_VERSION}"
            )
        cluster = obj.get("cluster")
        if cluster != self.config.cluster_id:
            raise IncompatibleMessage(
                f"cluster id {cluster!r}, this node is in {self.config.cluster_id!r}"
            )
        kind = obj.get("type")
        if not isinstance(kind, str) or kind not in _KINDS:  # a list or object is unhashable
            raise MalformedMessage(f"type must be one of {sorted(_KINDS)}, got {kind!r}")
        sender = self.member(self.field(obj, "sender"), "sender")
        if kind == "rumor":
            limit = self.config.max_members_per_message
            raw_groups = self.array(self.field(obj, "groups"), "groups")
            if len(raw_groups) > limit:
                raise MalformedMessage(f"more than {limit} groups")
            return Rumor(sender, tuple(self.rumor_group(g, f"groups[{i}]") for i, g in enumerate(raw_groups)))
        limit = self.config.max_members_per_message
        digest = self.digest(obj, "digest", limit=limit)
        raw_members = self.array(self.field(obj, "members"), "members")
        if len(raw_members) > limit:
            raise MalformedMessage(f"more than {limit} members")
        members = tuple(self.member(m, f"members[{i}]") for i, m in enumerate(raw_members))
        raw_delta = self.array(self.field(obj, "delta"), "delta")
        delta = tuple(self.writer_delta(d, f"delta[{i}]") for i, d in enumerate(raw_delta))
        # The horizon goes with the writers of the digest, the listed retired ones and the delta.
        horizon = self.digest(obj, "horizon", limit=2 * limit + len(delta))
        retired = self.digest(obj, "retired", limit=limit)
        collected = self.ts(self.field(obj, "collected"), "collected")
        bootstrap = self.flag(self.field(obj, "boot"), "boot")
        more = self.flag(self.field(obj, "more"), "more")
        behind = self.behind(obj["behind"]) if obj.get("behind") is not None else None
        retired_sum = self.retired_sum(obj["rsum"]) if "rsum" in obj else EMPTY
        lineage = self.int(obj.get("lineage", 0), "lineage")
        roster = self.cursor(obj["roster"], "roster") if "roster" in obj else None
        roster_end = self.flag(obj["roster_end"], "roster_end") if "roster_end" in obj else None
        forgotten = self.forgotten(obj, "forgotten", limit=limit) if roster_end is not None else {}
        cls = Exchange if kind == "exchange" else Reply
        return cls(sender, digest, members, delta, horizon, retired, collected, bootstrap, more, behind,
                   retired_sum, lineage, roster, roster_end, forgotten)

    def retired_sum(self, raw: object) -> RetiredSummary:
        items = self.array(raw, "rsum")
        if len(items) not in (2, 3):
            raise MalformedMessage(f"rsum must have 2 or 3 items, got {len(items)}")
        count = self.int(items[0], "rsum count")
        root = self.hex(items[1], "rsum root", 16)
        if len(items) == 2:
            return RetiredSummary(count, root)
        text = items[2]
        if not isinstance(text, str) or len(text) != 16 * BUCKETS:
            raise MalformedMessage(f"rsum buckets must be {16 * BUCKETS} hex digits")
        buckets = tuple(self.hex(text[i : i + 16], "rsum buckets", 16) for i in range(0, len(text), 16))
        xor = 0
        for b in buckets:
            xor ^= b
        if xor != root:
            raise MalformedMessage("rsum buckets do not add up to its root")
        return RetiredSummary(count, root, buckets)

    def forgotten(self, obj: dict[str, Any], name: str, limit: int | None) -> dict[str, ForgottenLife]:
        raw = self.obj(obj.get(name, {}), name)
        if limit is not None and len(raw) > limit:
            raise MalformedMessage(f"{name} lists more than {limit} lives")
        lives = {}
        for k, v in raw.items():
            generation, wall, counter = self.tuple(v, f"{name}[{k!r}]", 3)
            lives[self.text(k, f"{name} key")] = ForgottenLife(
                self.int(generation, f"{name}[{k!r}] generation"), self.ts([wall, counter], f"{name}[{k!r}]")
            )
        return lives

    @staticmethod
    def hex(raw: object, path: str, digits: int) -> int:
        if not isinstance(raw, str) or len(raw) != digits or any(c not in "0123456789abcdef" for c in raw):
            raise MalformedMessage(f"{path} must be {digits} lowercase hex digits")
        return int(raw, 16)

    def cursor(self, raw: object, path: str) -> str:
        """A roster cursor: a member id, or "" for the start."""
        return "" if raw == "" else self.text(raw, path)

    def behind(self, raw: object) -> Behind:
        reason, writer, wall, counter = self.tuple(raw, "behind", 4)
        if not isinstance(reason, str) or reason not in BEHIND_REASONS:
            raise MalformedMessage(f"behind reason must be one of {list(BEHIND_REASONS)}, got {reason!r}")
        return Behind(reason, self.text(writer, "behind writer"), self.ts([wall, counter], "behind mark"))

    def digest(self, obj: dict[str, Any], name: str, limit: int | None = None) -> dict[str, Timestamp]:
        """A writer -> timestamp map (a digest, watermarks or a horizon)."""
        raw = self.obj(self.field(obj, name), name)
        if limit is not None and len(raw) > limit:
            raise MalformedMessage(f"{name} lists more than {limit} writers")
        return {self.text(k, f"{name} key"): self.ts(v, f"{name}[{k!r}]") for k, v in raw.items()}

    def writer_delta(self, raw: object, path: str) -> WriterDelta:
        fields = self.array(raw, path)
        if len(fields) not in (4, 5):
            raise MalformedMessage(f"{path} must have 4 items, or 5 with the final flag, got {len(fields)}")
        origin, base, upto, entries = fields[:4]
        final = len(fields) == 5 and self.flag(fields[4], f"{path} final")
        origin = self.text(origin, f"{path} origin")
        base, upto = self.ts(base, f"{path} base"), self.ts(upto, f"{path} upto")
        items = self.count(self.array(entries, f"{path} entries"))
        parsed = tuple(self.fast_entry(origin, e) or self.entry(origin, e, f"{path} entries[{i}]")
                       for i, e in enumerate(items))
        if any(not base < e.ts <= upto for e in parsed):
            raise MalformedMessage(f"{path}: entry timestamps must lie in (base, upto]")
        return WriterDelta(origin, base, upto, parsed, final)

    def rumor_group(self, raw: object, path: str) -> RumorGroup:
        cover, items = self.tuple(raw, path, 2)
        cover = self.array(cover, f"{path} cover")
        limit = self.config.max_members_per_message
        if len(cover) > limit:
            raise MalformedMessage(f"{path} cover lists more than {limit} addresses")
        raw_items = self.count(self.array(items, f"{path} items"))
        return RumorGroup(
            tuple(self.text(a, f"{path} cover[{i}]") for i, a in enumerate(cover)),
            tuple(self.fast_rumor_item(r) or self.rumor_item(r, f"{path} items[{i}]")
                  for i, r in enumerate(raw_items)),
        )

    # The fast paths: the common, well-formed case, checked in one go; anything they do
    # not accept goes through the field-by-field checks, which name what is wrong.

    def fast_rumor_item(self, raw: object) -> RumorItem | None:
        if type(raw) is not list or len(raw) != 9:
            return None
        origin, prev_wall, prev_counter = raw[0], raw[1], raw[2]
        if not (type(origin) is str and 0 < len(origin) <= 256 and type(prev_wall) is int
                and type(prev_counter) is int and 0 <= prev_wall < _MAX_INT and 0 <= prev_counter < _MAX_INT):
            return None
        entry = self.fast_entry(origin, raw[3:])
        prev = Timestamp(prev_wall, prev_counter)
        return RumorItem(entry, prev) if entry is not None and prev < entry.ts else None

    def fast_entry(self, origin: str, raw: object) -> Entry | None:
        """An entry from parsed JSON (orjson: strings are valid text, numbers finite and
        integers within 64 bits), or None to take the slow path."""
        if type(raw) is not list or len(raw) != 6:
            return None
        key, value, wall, counter, deleted, expires = raw
        config = self.config
        if not (type(key) is str and key and type(wall) is int and type(counter) is int
                and 0 <= wall < _MAX_INT and 0 <= counter < _MAX_INT and type(deleted) is int
                and (deleted == 0 or (deleted == 1 and value is None))
                and (expires is None or (type(expires) is int and 0 <= expires < _MAX_INT))):
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
        return Entry(key, value, Timestamp(wall, counter), origin, deleted == 1, expires)

    def rumor_item(self, raw: object, path: str) -> RumorItem:
        fields = self.array(raw, path)
        if len(fields) != 9:
            raise MalformedMessage(f"{path}: expected 9 fields, got {len(fields)}")
        origin = self.text(fields[0], f"{path} origin")
        prev = self.ts(fields[1:3], f"{path} prev")
        entry = self.entry(origin, fields[3:], path)
        if not prev < entry.ts:
            raise MalformedMessage(f"{path}: prev must be below the entry's timestamp")
        return RumorItem(entry, prev)

    def count(self, entries: list[Any]) -> list[Any]:
        """Refuse a message with too many entries before looking at any of them."""
        self.entries += len(entries)
        if self.entries > self.max_entries:
            raise MalformedMessage(f"more than {self.max_entries} entries")
        return entries

    def entry(self, origin: str, raw: object, path: str) -> Entry:
        key, value, wall, counter, deleted, expires = self.tuple(raw, path, 6)
        try:
            key = check_key(key, self.config)
            value = check_value(value, self.config)
        except CallerError as exc:
            raise MalformedMessage(f"{path}: {exc}") from exc
        deleted = self.flag(deleted, f"{path} deleted")
        if deleted and value is not None:
            raise MalformedMessage(f"{path}: a tombstone carries no value")
        if expires is not None:
            expires = self.int(expires, f"{path} expires_at")
        ts = Timestamp(self.int(wall, f"{path} wall"), self.int(counter, f"{path} counter"))
        return Entry(key, value, ts, origin, bool(deleted), expires)

    def member(self, raw: object, path: str) -> MemberInfo:
        fields = self.array(raw, path)
        if len(fields) not in (5, 6):
            raise MalformedMessage(f"{path} must have 5 items, or 6 with tags, got {len(fields)}")
        id_, address, generation, heartbeat, left = fields[:5]
        return MemberInfo(
            self.text(id_, f"{path} id"),
            self.text(address, f"{path} address"),
            self.int(generation, f"{path} generation"),
            self.int(heartbeat, f"{path} heartbeat"),
            self.flag(left, f"{path} left"),
            self.tags(fields[5], f"{path} tags") if len(fields) == 6 else (),
        )

    def tags(self, raw: object, path: str) -> Tags:
        tags = self.obj(raw, path)
        problem = tags_problem(tags) if tags else "an empty tag object (no tags are sent as none)"
        if problem is not None:
            raise MalformedMessage(f"{path}: {problem}")
        return tuple(sorted(tags.items()))

    def ts(self, raw: object, path: str) -> Timestamp:
        wall, counter = self.tuple(raw, path, 2)
        return Timestamp(self.int(wall, f"{path} wall"), self.int(counter, f"{path} counter"))

    # -- primitives --------------------------------------------------------------------

    @staticmethod
    def field(obj: dict[str, Any], name: str) -> object:
        if name not in obj:
            raise MalformedMessage(f"missing field {name!r}")
        return obj[name]

    @staticmethod
    def obj(raw: object, path: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise MalformedMessage(f"{path} must be an object")
        return raw

    @staticmethod
    def array(raw: object, path: str) -> list[Any]:
        if not isinstance(raw, list):
            raise MalformedMessage(f"{path} must be an array")
        return raw

    def tuple(self, raw: object, path: str, size: int) -> list[Any]:
        items = self.array(raw, path)
        if len(items) != size:
            raise MalformedMessage(f"{path} must have {size} items, got {len(items)}")
        return items

    @staticmethod
    def int(raw: object, path: str) -> int:
        if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw < _MAX_INT:
            raise MalformedMessage(f"{path} must be an integer in [0, 2**53), got {raw!r}")
        return raw

    @staticmethod
    def flag(raw: object, path: str) -> bool:
        if type(raw) is not int or raw not in (0, 1):
            raise MalformedMessage(f"{path} must be 0 or 1, got {raw!r}")
        return bool(raw)

    @staticmethod
    def text(raw: object, path: str) -> str:
        if not isinstance(raw, str) or not 0 < len(raw) <= 256:
            raise MalformedMessage(f"{path} must be a string of 1 to 256 characters")
        if not is_text(raw):
            raise MalformedMessage(f"{path} is not valid Unicode text (a lone surrogate)")
        return raw
