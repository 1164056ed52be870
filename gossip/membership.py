"""Who is in the cluster: seeds to join through, members learned from peers, and how
alive each one looks (alive / suspect / dead by phi accrual, or left by its own word)."""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from gossip.config import Config
from gossip.failure import PhiAccrual
from gossip.jsontext import dumps
from gossip.limits import is_text
from gossip.remembered import MAX_FORGOTTEN

ALIVE, SUSPECT, DEAD, LEFT = "alive", "suspect", "dead", "left"

# With sampled views not every sighting of a member's record moves its heartbeat (the
# sender's copy may be no newer than ours): the detector expects this many times the
# rounds between sightings (measured: docs/SIMULATIONS.md, "Views and detection").
SIGHTING_SLACK = 2.0


def news_sends(members: int) -> int:
    """How many views carry a record as news: each node that hears news passes it on this
    many times, which leaves about e^-K of N nodes unreached (push rumors with a counter,
    Demers et al.): ln N + 3 leaves under one node in twenty. The random sample reaches
    any it misses."""
    return math.ceil(math.log(members)) + 3 if members > 1 else 1

# Node tags (key/value metadata a node carries in its member record, fixed for its life):
# at most MAX_TAGS, keys of 1 to 64 characters, values of at most 256, and at most
# MAX_TAGS_BYTES as compact JSON (config.MEMBER_WIRE_BYTES counts them).
MAX_TAGS = 16
MAX_TAGS_BYTES = 512
Tags = tuple[tuple[str, str], ...]  # sorted by key


def tags_problem(tags: Mapping[str, object]) -> str | None:
    """What is wrong with a set of tags, or None: the one rule for settings and decoding."""
    if len(tags) > MAX_TAGS:
        return f"at most {MAX_TAGS} tags, got {len(tags)}"
    for key, value in tags.items():
        if not isinstance(key, str) or not 0 < len(key) <= 64 or not is_text(key):
            return f"tag name {key!r} must be text of 1 to 64 characters"
        if not isinstance(value, str) or len(value) > 256 or not is_text(value):
            return f"tag {key!r}: the value must be text of at most 256 characters"
    if (size := len(dumps(dict(tags)))) > MAX_TAGS_BYTES:
        return f"tags take {size} bytes as JSON, the limit is {MAX_TAGS_BYTES}"
    return None


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """What a node says about a member: the newer (generation, heartbeat) wins."""

    id: str
    address: str  # base URL peers send gossip to
    generation: int  # set when the node starts; a restarted node has a higher one
    heartbeat: int  # counts the node's own rounds
    left: bool = False  # the node said it is leaving for good
    tags: Tags = ()  # the node's tags: set when it starts, the same in every record of a life

    def newer_than(self, other: MemberInfo) -> bool:
        return (self.generation, self.heartbeat) > (other.generation, other.heartbeat)


@dataclass(slots=True)
class Member:
    info: MemberInfo
    detector: PhiAccrual
    last_heard: int  # local wall ms when its heartbeat last moved
    status: str = ALIVE
    since: int = 0  # local wall ms when the status last changed
    # The probes' judgement of this life (R23: alive, suspect or dead; alive when probing is
    # off). The status is the graver of it and phi's (R24).
    verdict: str = ALIVE


@dataclass(frozen=True, slots=True)
class MemberEvent:
    """A change in a member's standing, for the node to log (one line each)."""

    kind: str  # joined, suspect, dead, alive_again, left, restarted, reaped
    member: str  # its id
    address: str
    reason: str
    at_ms: int


EVENT_OF_STATUS = {ALIVE: "alive_again", SUSPECT: "suspect", DEAD: "dead", LEFT: "left"}
_SEVERITY = {ALIVE: 0, SUSPECT: 1, DEAD: 2}


def worse(a: str, b: str) -> str:
    """The graver of two judgements (alive < suspect < dead): phi's and the probes' (R24)."""
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


@dataclass
class Membership:
    me: MemberInfo
    config: Config
    seeds: tuple[str, ...] = ()
    members: dict[str, Member] = field(default_factory=dict)
    # Forgotten members, and the newest record seen of them: older gossip about them
    # does not bring them back.
    reaped: dict[str, tuple[MemberInfo, int]] = field(default_factory=dict)
    # Derived from `members`, kept until a member comes, goes or changes status: each
    # round and each message reads them, so a large cluster does not rebuild them.
    _live: list[str] | None = field(default=None, init=False, repr=False)
    _ids: list[str] | None = field(default=None, init=False, repr=False)
    _addresses: dict[str, str] | None = field(default=None, init=False, repr=False)  # address -> id
    # Changes in members' standing, newest last, for the node to drain and log (bounded:
    # the simulator never drains them).
    events: deque[MemberEvent] = field(default_factory=lambda: deque(maxlen=256), compare=False, repr=False)
    # Members whose record changed lately (joined, restarted, left, moved), oldest first,
    # and how many more views are to carry each (R13).
    news: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    # Since when we have seen most of the cluster alive without a break (None: not now, or
    # we are not judging): a dead member is forgotten only after reap_after of that (R18).
    majority_since: int | None = field(default=None, compare=False, repr=False)
    # A generation of our own node newer than ours, heard from a peer (an earlier life
    # that ran under a clock ahead of ours): we must start a life above it (R16).
    outlived: int | None = field(default=None, compare=False, repr=False)

    def beat(self) -> None:
        self.me = replace(self.me, heartbeat=self.me.heartbeat + 1)

    def leave(self) -> None:
        self.me = replace(self.me, heartbeat=self.me.heartbeat + 1, left=True)

    @property
    def view_size(self) -> int:
        """Member records per message, ourselves included (R13)."""
        return min(self.config.view_size, self.config.max_members_per_message)

    def view(self, rng: random.Random) -> list[MemberInfo]:
        """What we tell a peer about the cluster (R13): ourselves, then the news (records
        that changed lately, newest first, in at most half the view, each sent
        news_sends times), then a random sample of the other members; every member if
        they all fit."""
        size = self.view_size
        if len(self.members) < size:
            self.news.clear()  # every record goes in every message: nothing is owed
            return [self.me, *(m.info for m in self.members.values())]
        picked = [self.me]
        told: set[str] = set()
        for member_id in list(itertools.islice(reversed(self.news), (size - 1) // 2)):
            member = self.members.get(member_id)
            left = self.news[member_id] - 1
            if member is None or left == 0:
                del self.news[member_id]
            else:
                self.news[member_id] = left
            if member is not None:
                picked.append(member.info)
                told.add(member_id)
        ids = self.ids()
        room = size - len(picked)
        sample = rng.sample(ids, min(len(ids), room + len(told)))
        picked.extend(self.members[i].info for i in sample if i not in told)
        return picked[:size]

    def ids(self) -> list[str]:
        """The ids of the members we know (a list kept until one comes or goes: a new list
        object then, so a reader can tell that it changed)."""
        if self._ids is None:
            self._ids = list(self.members)
        return self._ids

    def _tell(self, member_id: str) -> None:
        """A member's record changed in a way peers must hear of soon: make it news."""
        self.news.pop(member_id, None)
        self.news[member_id] = news_sends(len(self.members) + 1)

    def heartbeat_interval_ms(self) -> float:
        """How often a member's heartbeat is expected to move here (R17): every round
        when each message carries every member; with sampled views, once in the
        rounds it takes the 2 x fanout messages a node gets per round (replies to its
        exchanges, and its peers' exchanges), each with view_size - 1 of the N - 1
        others, to bring that member's record, times SIGHTING_SLACK."""
        others = len(self.members)
        per_round = 2 * self.config.fanout * (self.view_size - 1)
        rounds = SIGHTING_SLACK * others / per_round if others >= self.view_size else 1.0
        return self.config.gossip_interval * 1000 * max(1.0, rounds)

    def _detector(self) -> PhiAccrual:
        expected = self.heartbeat_interval_ms()
        return PhiAccrual(self.config.detector_window, expected, expected * (1 - self.config.jitter))

    def new_record(self, info: MemberInfo, now_ms: int) -> Member:
        """The record of a member first heard of now."""
        return Member(info, self._detector(), now_ms, since=now_ms)

    def forget_derived(self) -> None:
        """A member came or went: the lists derived from `members` are made again."""
        self._live = self._ids = self._addresses = None

    def merge(self, infos: list[MemberInfo], now_ms: int) -> None:
        for info in infos:
            if info.id == self.me.id:
                if info.generation > self.me.generation:
                    self.outlived = max(self.outlived or 0, info.generation)
                continue
            forgotten = self.reaped.get(info.id)
            if forgotten is not None:
                if not info.newer_than(forgotten[0]):
                    continue
                del self.reaped[info.id]
            known = self.members.get(info.id)
            if known is None:
                known = self.members[info.id] = self.new_record(info, now_ms)
                self.forget_derived()
                self._event("joined", info, f"first heard of (generation {info.generation})", now_ms)
                self._tell(info.id)
            elif info.newer_than(known.info):
                if (info.generation, info.address, info.left) != (
                    known.info.generation, known.info.address, known.info.left
                ):
                    self._tell(info.id)
                if info.generation != known.info.generation:
                    known.detector = self._detector()  # a restarted node: a new history
                    known.verdict = ALIVE  # the probes' judgement was of the old life
                    self._event("restarted", info, f"a new life: generation {info.generation} after "
                                f"{known.info.generation}", now_ms)
                if info.address != known.info.address:
                    self._live = self._addresses = None
                known.info = info
            else:
                continue
            known.detector.heartbeat(now_ms)
            known.last_heard = now_ms
            self._set(known, LEFT if info.left else known.verdict, now_ms)

    def judge(self, member_id: str, verdict: str, now_ms: int, reason: str) -> None:
        """The probes' judgement of a member's current life (R23): its status becomes the
        graver of this and phi's, at once (R24)."""
        member = self.members.get(member_id)
        if member is None or member.verdict == verdict:
            return
        member.verdict = verdict
        if member.status == LEFT:
            return
        phi = member.detector.phi(now_ms)
        by_phi = DEAD if phi >= self.config.phi_dead else SUSPECT if phi >= self.config.phi_suspect else ALIVE
        self._set(member, worse(by_phi, verdict), now_ms, reason=f"probes: {reason}")

    def _set(self, member: Member, status: str, now_ms: int, phi: float | None = None,
             reason: str | None = None) -> None:
        if member.status != status:
            was = member.status
            member.status, member.since = status, now_ms
            self._live = None
            if status == LEFT:
                why = "it said it is leaving"
            elif reason is not None:
                why = f"{reason} (was {was})"
            elif phi is not None:
                why = f"phi {phi:.1f} after {now_ms - member.last_heard} ms without news (was {was})"
            else:
                why = f"its heartbeat moved (was {was})"
            self._event(EVENT_OF_STATUS[status], member.info, why, now_ms)

    def _event(self, kind: str, info: MemberInfo, reason: str, now_ms: int) -> None:
        self.events.append(MemberEvent(kind, info.id, info.address, reason, now_ms))

    def update(self, now_ms: int, judging: bool = True) -> list[MemberInfo]:
        """Re-judge every member by its phi, and forget the long gone; the records of
        those forgotten now (R18). A member that left is forgotten reap_after later. A
        dead one is forgotten only by a node that is `judging` (a member, not one
        catching up) and that has seen most of the cluster alive for reap_after since it
        died: so the two sides of a partition never both forget the other, and a node
        that was itself cut off counts nothing of the time it was away."""
        reap_ms = self.config.reap_after * 1000
        phi_suspect, phi_dead = self.config.phi_suspect, self.config.phi_dead
        floor = self.heartbeat_interval_ms() * (1 - self.config.jitter)
        for member in self.members.values():
            if member.status != LEFT:
                member.detector.floor = floor
                phi = member.detector.phi(now_ms)
                status = DEAD if phi >= phi_dead else SUSPECT if phi >= phi_suspect else ALIVE
                if status != member.status:
                    if worse(status, member.verdict) != status:  # the probes judge it graver (R24)
                        self._set(member, member.verdict, now_ms, reason="probes")
                    else:
                        self._set(member, status, now_ms, phi)
        if not judging or not self.has_majority():
            self.majority_since = None
        elif self.majority_since is None:
            self.majority_since = now_ms
        gone = []
        for member in self.members.values():
            if member.status == LEFT:
                since = member.since
            elif member.status == DEAD and self.majority_since is not None:
                since = max(member.since, self.majority_since)
            else:
                continue
            if now_ms - since > reap_ms and (member.status == LEFT or self.heard_most_since(member.since)):
                gone.append(member)
        for member in gone:
            why = f"{member.status} for over reap_after ({self.config.reap_after:g} s)"
            self._event("reaped", member.info, why, now_ms)
            del self.members[member.info.id]
            self.news.pop(member.info.id, None)
            self.forget_derived()
            self.reaped[member.info.id] = (member.info, now_ms)
            if member.status == LEFT:  # a seed that said goodbye is no longer a seed
                self.seeds = tuple(a for a in self.seeds if a != member.info.address)
        while len(self.reaped) > MAX_FORGOTTEN:
            del self.reaped[next(iter(self.reaped))]
        return [member.info for member in gone]

    def restart_judging(self) -> None:
        """Our own state starts anew (a reset): what we saw of the others' liveness before
        counts for nothing towards forgetting them."""
        self.majority_since = None

    def roster_page(self, after: str, limit: int) -> tuple[list[MemberInfo], bool]:
        """Up to `limit` member records with ids above `after`, in id order, and whether
        they end the list: a node catching up learns every member this way (R7d), not
        only those that views happen to bring."""
        ids = sorted(i for i in self.members if i > after)
        return [self.members[i].info for i in ids[:limit]], len(ids) <= limit

    def has_majority(self) -> bool:
        """Whether we and the members we gossip with are more than half of the members
        that have not left (counting us)."""
        return 2 * (1 + len(self.live_addresses())) > self._staying()

    def heard_most_since(self, since: int) -> bool:
        """Whether we and the members whose heartbeat moved at `since` or later are more
        than half of the members that have not left. A member silent as long as one found
        dead at `since`, and not yet found dead itself (detection takes longer with
        sampled views), is no proof that most of the cluster is with us (R18)."""
        heard = 1 + sum(m.status != LEFT and m.last_heard >= since for m in self.members.values())
        return 2 * heard > self._staying()

    def _staying(self) -> int:
        """The members that have not left, and us."""
        return 1 + sum(m.status != LEFT for m in self.members.values())

    def by_address(self, address: str) -> Member | None:
        if self._addresses is None:
            self._addresses = {m.info.address: i for i, m in self.members.items()}
        member_id = self._addresses.get(address)
        return None if member_id is None else self.members.get(member_id)

    def add_seeds(self, addresses: list[str]) -> None:
        fresh = [a for a in addresses if a not in self.seeds and a != self.me.address]
        self.seeds = (*self.seeds, *fresh)

    def knows_address(self, address: str) -> bool:
        return (
            address == self.me.address
            or any(m.info.address == address for m in self.members.values())
            or any(info.address == address for info, _ in self.reaped.values())
        )

    def live_addresses(self) -> list[str]:
        """Members we gossip with: alive, or suspect but not yet given up on."""
        if self._live is None:
            self._live = sorted(m.info.address for m in self.members.values() if m.status in (ALIVE, SUSPECT))
        return list(self._live)

    def pick_peers(self, count: int, rng: random.Random) -> list[str]:
        """Up to `count` random live peers; now and then one dead member, so a node
        that recovers is found again; and a seed we have not met, so a node told only
        seeds finds the cluster. Members that left are never picked."""
        live = self.live_addresses()
        picked = rng.sample(live, min(count, len(live)))
        dead = sorted(m.info.address for m in self.members.values() if m.status == DEAD)
        if dead and rng.random() < self.config.dead_probe_chance:
            picked.append(rng.choice(dead))
        unmet = [s for s in self.seeds if not self.knows_address(s)]
        # Seeds we have not met: always while we know nobody alive (joining), otherwise
        # now and then (two clusters started apart find each other; a gone seed costs little).
        if unmet and (not live or rng.random() < self.config.dead_probe_chance):
            picked.append(rng.choice(unmet))
        return picked
