"""Messages and snapshots from untrusted parsed JSON, once gossip/codec.py has checked their
frame (version, cluster, type): every field checked, every count held to its limit, and
whatever is wrong named by its path."""

from __future__ import annotations

from typing import Any

from gossip.clock import Timestamp
from gossip.config import Config
from gossip.errors import MalformedMessage
from gossip.messages import (
    BEHIND_REASONS,
    Behind,
    Exchange,
    ForgottenLife,
    Message,
    Reply,
    Rumor,
    RumorGroup,
    Snapshot,
    WriterDelta,
)
from gossip.retired import BUCKETS, EMPTY, RetiredSummary
from gossip.wire_checks import (
    as_array,
    as_flag,
    as_hex,
    as_int,
    as_items,
    as_object,
    as_text,
    as_timestamp,
    as_writer,
    field,
)
from gossip.wire_records import entry, fast_entry, fast_rumor_item, member, rumor_item


class Decoder:
    """Decodes one message or snapshot; counts its entries against `max_entries` as it goes."""

    def __init__(self, config: Config, max_entries: int | None = None) -> None:
        self.config = config
        self.entries = 0
        self.max_entries = config.max_entries_per_message if max_entries is None else max_entries

    def message(self, kind: str, obj: dict[str, Any]) -> Message:
        """The fields after the frame of a message of type `kind` (exchange, reply or rumor)."""
        sender = member(field(obj, "sender"), "sender")
        limit = self.config.max_members_per_message
        if kind == "rumor":
            raw_groups = as_array(field(obj, "groups"), "groups")
            if len(raw_groups) > limit:
                raise MalformedMessage(f"more than {limit} groups")
            return Rumor(sender, tuple(self.rumor_group(g, f"groups[{i}]") for i, g in enumerate(raw_groups)))
        digest = self.digest(obj, "digest", limit=limit)
        raw_members = as_array(field(obj, "members"), "members")
        if len(raw_members) > limit:
            raise MalformedMessage(f"more than {limit} members")
        members = tuple(member(m, f"members[{i}]") for i, m in enumerate(raw_members))
        raw_delta = as_array(field(obj, "delta"), "delta")
        delta = tuple(self.writer_delta(d, f"delta[{i}]") for i, d in enumerate(raw_delta))
        # The horizon goes with the writers of the digest, the listed retired ones and the delta.
        horizon = self.digest(obj, "horizon", limit=2 * limit + len(delta))
        retired = self.digest(obj, "retired", limit=limit)
        collected = as_timestamp(field(obj, "collected"), "collected")
        bootstrap = as_flag(field(obj, "boot"), "boot")
        more = as_flag(field(obj, "more"), "more")
        behind = self.behind(obj["behind"]) if obj.get("behind") is not None else None
        retired_sum = self.retired_sum(obj["rsum"]) if "rsum" in obj else EMPTY
        lineage = as_int(obj.get("lineage", 0), "lineage")
        roster = self.cursor(obj["roster"], "roster") if "roster" in obj else None
        roster_end = as_flag(obj["roster_end"], "roster_end") if "roster_end" in obj else None
        forgotten = self.forgotten(obj, "forgotten", limit=limit) if roster_end is not None else {}
        forgotten_writers = (self.digest(obj, "forgotten_writers", limit=limit)
                             if roster_end is not None and "forgotten_writers" in obj else {})
        cls = Exchange if kind == "exchange" else Reply
        return cls(sender, digest, members, delta, horizon, retired, collected, bootstrap, more, behind,
                   retired_sum, lineage, roster, roster_end, forgotten, forgotten_writers)

    def snapshot(self, obj: dict[str, Any]) -> Snapshot:
        """The fields after the frame of a snapshot, of any version codec.SNAPSHOT_VERSIONS lists."""
        entries = []
        for i, raw in enumerate(as_array(field(obj, "entries"), "entries")):
            item = as_array(raw, f"entries[{i}]")
            if not item:
                raise MalformedMessage(f"entries[{i}] is empty")
            origin = as_writer(item[0], f"entries[{i}] origin")
            entries.append(entry(origin, item[1:], f"entries[{i}]", self.config))
        retired = self.digest(obj, "retired") if "retired" in obj else {}
        horizon = self.digest(obj, "horizon")
        if obj["v"] < 3:  # forgotten lives by generation alone: as collected up to the snapshot
            collected = max(horizon.values(), default=Timestamp(0, 0))
            raw_forgotten = as_object(obj.get("forgotten", {}), "forgotten")
            forgotten = {as_text(k, "forgotten key"): ForgottenLife(as_int(v, f"forgotten[{k!r}]"), collected)
                         for k, v in raw_forgotten.items()}
        else:
            forgotten = self.forgotten(obj, "forgotten", limit=None)
        members = tuple(member(m, f"members[{i}]")
                        for i, m in enumerate(as_array(obj.get("members", []), "members")))
        forgotten_writers = self.digest(obj, "forgotten_writers") if "forgotten_writers" in obj else {}
        return Snapshot(as_timestamp(field(obj, "clock"), "clock"), self.digest(obj, "watermarks"), horizon,
                        tuple(entries), retired, forgotten, as_int(obj.get("generation", 0), "generation"),
                        as_int(obj.get("lineage", 0), "lineage"), members, forgotten_writers)

    def retired_sum(self, raw: object) -> RetiredSummary:
        items = as_array(raw, "rsum")
        if len(items) not in (2, 3):
            raise MalformedMessage(f"rsum must have 2 or 3 items, got {len(items)}")
        count = as_int(items[0], "rsum count")
        root = as_hex(items[1], "rsum root", 16)
        if len(items) == 2:
            return RetiredSummary(count, root)
        text = items[2]
        if not isinstance(text, str) or len(text) != 16 * BUCKETS:
            raise MalformedMessage(f"rsum buckets must be {16 * BUCKETS} hex digits")
        buckets = tuple(as_hex(text[i : i + 16], "rsum buckets", 16) for i in range(0, len(text), 16))
        xor = 0
        for b in buckets:
            xor ^= b
        if xor != root:
            raise MalformedMessage("rsum buckets do not add up to its root")
        return RetiredSummary(count, root, buckets)

    def forgotten(self, obj: dict[str, Any], name: str, limit: int | None) -> dict[str, ForgottenLife]:
        raw = as_object(obj.get(name, {}), name)
        if limit is not None and len(raw) > limit:
            raise MalformedMessage(f"{name} lists more than {limit} lives")
        lives = {}
        for k, v in raw.items():
            generation, wall, counter = as_items(v, f"{name}[{k!r}]", 3)
            lives[as_text(k, f"{name} key")] = ForgottenLife(
                as_int(generation, f"{name}[{k!r}] generation"),
                as_timestamp([wall, counter], f"{name}[{k!r}]"),
            )
        return lives

    @staticmethod
    def cursor(raw: object, path: str) -> str:
        """A roster cursor: a member id, or "" for the start."""
        return "" if raw == "" else as_text(raw, path)

    @staticmethod
    def behind(raw: object) -> Behind:
        reason, writer, wall, counter = as_items(raw, "behind", 4)
        if not isinstance(reason, str) or reason not in BEHIND_REASONS:
            raise MalformedMessage(f"behind reason must be one of {list(BEHIND_REASONS)}, got {reason!r}")
        return Behind(reason, as_text(writer, "behind writer"), as_timestamp([wall, counter], "behind mark"))

    @staticmethod
    def digest(obj: dict[str, Any], name: str, limit: int | None = None) -> dict[str, Timestamp]:
        """A writer -> timestamp map (a digest, watermarks or a horizon)."""
        raw = as_object(field(obj, name), name)
        if limit is not None and len(raw) > limit:
            raise MalformedMessage(f"{name} lists more than {limit} writers")
        return {as_text(k, f"{name} key"): as_timestamp(v, f"{name}[{k!r}]") for k, v in raw.items()}

    def writer_delta(self, raw: object, path: str) -> WriterDelta:
        fields = as_array(raw, path)
        if len(fields) not in (4, 5):
            raise MalformedMessage(f"{path} must have 4 items, or 5 with the final flag, got {len(fields)}")
        origin, base, upto, entries = fields[:4]
        final = len(fields) == 5 and as_flag(fields[4], f"{path} final")
        origin = as_writer(origin, f"{path} origin")
        base, upto = as_timestamp(base, f"{path} base"), as_timestamp(upto, f"{path} upto")
        items = self.count(as_array(entries, f"{path} entries"))
        config = self.config
        parsed = tuple(fast_entry(origin, e, config) or entry(origin, e, f"{path} entries[{i}]", config)
                       for i, e in enumerate(items))
        if any(not base < e.stamp <= upto for e in parsed):
            raise MalformedMessage(f"{path}: entry timestamps must lie in (base, upto]")
        return WriterDelta(origin, base, upto, parsed, final)

    def rumor_group(self, raw: object, path: str) -> RumorGroup:
        cover, items = as_items(raw, path, 2)
        cover = as_array(cover, f"{path} cover")
        limit = self.config.max_members_per_message
        if len(cover) > limit:
            raise MalformedMessage(f"{path} cover lists more than {limit} addresses")
        raw_items = self.count(as_array(items, f"{path} items"))
        config = self.config
        return RumorGroup(
            tuple(as_text(a, f"{path} cover[{i}]") for i, a in enumerate(cover)),
            tuple(fast_rumor_item(r, config) or rumor_item(r, f"{path} items[{i}]", config)
                  for i, r in enumerate(raw_items)),
        )

    def count(self, entries: list[Any]) -> list[Any]:
        """Refuse a message with too many entries before looking at any of them."""
        self.entries += len(entries)
        if self.entries > self.max_entries:
            raise MalformedMessage(f"more than {self.max_entries} entries")
        return entries
