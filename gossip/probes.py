"""Direct failure detection (R23): SWIM's probes with Lifeguard's refinements.

Every probe interval a node pings one member (round-robin over a shuffled list, shuffled
anew each pass). No ack within the probe timeout: it asks `indirect_probes` others to ping
it for it. No ack from any of them by the end of the interval: the member is suspect. A
suspicion spreads as a note naming who suspects; the suspect refutes it by raising its
incarnation (a counter of its own, per life) and spreading that it is alive; if nobody
hears a refutation within the suspicion timeout (suspicion.py) the member is dead, and
that spreads too (what a node holds of each member, and the notes: probe_verdicts.py).
Notes ride on every probe message and, while there are any, go to `fanout` members every
fifth of an interval. Before a suspicion runs out, a last check probes the suspect once
more, so a refutation lost on its way cannot make a node call a live member dead.

Lifeguard: the suspicion timeout falls as independent confirmations arrive; a node whose
indirect probes go unanswered by the helpers too (the fault may be its own), or that
must refute a suspicion of itself, counts up its *local health* score, which stretches
its probe interval and timeout (each scaled by 1 + score) until its probes succeed again.

Pure: time comes in as now_ms, randomness from the injected rng. The driver calls
`tick(now_ms)` at `next_due()` and hands every probe message that arrives to `handle`; both
return the messages to send (one-way, no answer expected from the transport).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from gossip.config import Config
from gossip.membership import DEAD, LEFT, SUSPECT, Membership
from gossip.probe_messages import ACK, MAX_NOTES, NACK, NOTES, PING, PING_REQ, Note, Probe, ProbeOut
from gossip.probe_verdicts import ProbeCounters, Verdicts
from gossip.suspicion import LocalHealth, Suspicion

GOSSIPS_PER_PROBE = 5  # notes go out this many times per probe interval, while there are any


def probes_if_on(config: Config, membership: Membership, rng: random.Random, now_ms: int) -> Prober | None:
    """A node's direct probes if `probe_interval` is set, with an rng of their own drawn from
    `rng`; None with probing off (and `rng` untouched: nothing else changes)."""
    if config.probe_interval <= 0:
        return None
    return Prober(config, membership, random.Random(rng.getrandbits(64)), now_ms)


@dataclass(slots=True)
class _Probing:
    """A probe of ours in flight."""

    target: str
    address: str
    indirect_at: int  # local ms: ask others if no ack by then
    ends: int  # local ms: suspect it if no ack by then
    asked: int = -1  # helpers asked (-1: not yet)
    nacks: int = 0
    final: bool = False  # the last check of a suspicion before it is declared dead


@dataclass(slots=True)
class _Relay:
    """A ping we sent for another node (a ping_req): its ack goes back to `origin` under
    `seq`, or a nack if none came by `deadline`."""

    origin: str
    seq: int
    deadline: int


@dataclass
class Prober:
    config: Config
    membership: Membership
    rng: random.Random
    now_ms: int
    local_health: LocalHealth = field(default_factory=LocalHealth)
    counters: ProbeCounters = field(default_factory=ProbeCounters)
    verdicts: Verdicts = field(init=False)
    _order: list[str] = field(default_factory=list)
    _in_order: set[str] = field(default_factory=set)
    _ids_seen: list[str] | None = None  # the membership's id list when we last placed new members
    _pos: int = 0
    _seq: int = 0
    _probing: dict[int, _Probing] = field(default_factory=dict)
    _relays: dict[int, _Relay] = field(default_factory=dict)
    _next_probe: int = 0
    _next_gossip: int = 0
    _last_tick: int = 0

    def __post_init__(self) -> None:
        self.verdicts = Verdicts(self.config, self.membership, self.local_health, self.counters)
        self._last_tick = self.now_ms
        interval = self._interval_ms()
        self._next_probe = self.now_ms + int(self.rng.uniform(0, interval))
        self._next_gossip = self._next_probe

    @property
    def incarnation(self) -> int:
        return self.verdicts.incarnation

    @property
    def health(self) -> int:
        """The local health score (Lifeguard): 0 healthy, up to suspicion.MAX_HEALTH."""
        return self.local_health.score

    @property
    def suspicions(self) -> dict[str, Suspicion]:
        return self.verdicts.suspicions

    @property
    def dead(self) -> dict[str, tuple[int, int]]:
        return self.verdicts.dead

    def describe(self, member_id: str, now_ms: int) -> dict[str, object]:
        """The probes' view of a member, for /members (Verdicts.describe)."""
        return self.verdicts.describe(member_id, now_ms)

    # -- timing ---------------------------------------------------------------------------

    def _interval_ms(self) -> int:
        return self.local_health.scaled_ms(self.config.probe_interval)

    def _timeout_ms(self) -> int:
        return self.local_health.scaled_ms(self.config.probe_timeout)

    def _final_ms(self) -> int:
        """How long the last check of a suspicion takes: a probe, direct then indirect."""
        return 2 * self._timeout_ms()

    def next_due(self) -> int:
        """Local ms at which tick() has something to do."""
        due = self._next_probe
        if self.verdicts.has_notes or self.verdicts.witnessed():
            due = min(due, self._next_gossip)
        for p in self._probing.values():
            due = min(due, p.indirect_at if p.asked < 0 else p.ends)
        for r in self._relays.values():
            due = min(due, r.deadline)
        for s in self.suspicions.values():
            if s.check == "":
                due = min(due, s.deadline() - self._final_ms())
            elif s.check == "failed":
                due = min(due, s.deadline())
        return due

    def tick(self, now_ms: int) -> list[ProbeOut]:
        """Whatever is due: indirect probes, probes that ran out, relays that ran out
        (nacks), suspicions that ran out (dead), the next probe, notes to spread."""
        out: list[ProbeOut] = []
        verdicts = self.verdicts
        self._after_stall(now_ms)
        for seq, p in list(self._probing.items()):
            if p.asked < 0 and now_ms >= p.indirect_at:
                self._ask_helpers(seq, p, out)
            if now_ms >= p.ends:
                del self._probing[seq]
                self._failed(p, now_ms, out)
        for seq, r in list(self._relays.items()):
            if now_ms >= r.deadline:
                del self._relays[seq]
                out.append(verdicts.message(r.origin, NACK, seq=r.seq))
        for member, s in list(self.suspicions.items()):
            if not verdicts.current(member, s.generation):
                del self.suspicions[member]
            elif s.check == "" and now_ms >= s.deadline() - self._final_ms():
                self._final_check(member, now_ms, out)
            elif s.check == "failed" and now_ms >= s.deadline():
                self.counters.declared_dead += 1
                why = (f"suspected (first by {s.first}) for {now_ms - s.started} ms, "
                       f"{len(s.confirmers)} confirmation(s)")
                verdicts.take_dead(member, s.generation, s.incarnation, self.membership.me.id, now_ms, why)
        if now_ms >= self._next_probe:
            self._next_probe = now_ms + self._interval_ms()
            self._probe(now_ms, out)
        witnessed = verdicts.witnessed()
        if (verdicts.has_notes or witnessed) and now_ms >= self._next_gossip:
            self._next_gossip = now_ms + int(self.config.probe_interval * 1000 / GOSSIPS_PER_PROBE)
            self._spread(witnessed, out)
        elif not verdicts.has_notes and not witnessed:
            self._next_gossip = max(self._next_gossip, now_ms)
        return out

    def _spread(self, witnessed: list[str], out: list[ProbeOut]) -> None:
        """A round of notes: to `fanout` random members, and to each member we suspect
        from a probe of our own, what we hold against it (it may have missed the news)."""
        verdicts = self.verdicts
        for member_id in self._pick(self.config.fanout, exclude=()) if verdicts.has_notes else ():
            address = self.membership.members[member_id].info.address
            notes = verdicts.take_notes(MAX_NOTES, to=member_id)
            if notes:
                out.append(ProbeOut(address, verdicts.probe_message(NOTES, notes)))
        for member_id in witnessed:
            note, known = verdicts.against(member_id), self.membership.members.get(member_id)
            if note is not None and known is not None:
                out.append(ProbeOut(known.info.address, verdicts.probe_message(NOTES, (note,))))

    def _after_stall(self, now_ms: int) -> None:
        """Ticks come at least once an interval; a longer gap means this node was stopped
        or starved (a paused process, an overloaded host). What ran out meanwhile says
        nothing of the others: our probes in flight suspect nobody, our suspicions get the
        time back (refutations sent to us meanwhile were lost), and our health worsens."""
        stalled = now_ms - self._last_tick - 2 * self._interval_ms()
        self._last_tick = now_ms
        if stalled <= 0:
            return
        self.counters.stalls += 1
        self._probing.clear()
        self._relays.clear()
        for s in self.suspicions.values():
            s.started += stalled
            s.check = ""  # (its last check, if one ran, was cleared with the probes)
        self.local_health.worse()

    # -- probing ----------------------------------------------------------------------------

    def _probe(self, now_ms: int, out: list[ProbeOut]) -> None:
        target = self._next_target()
        if target is None:
            return
        member = self.membership.members[target]
        self._seq += 1
        self.counters.probes += 1
        timeout = self._timeout_ms()
        self._probing[self._seq] = _Probing(target, member.info.address, now_ms + timeout,
                                            now_ms + max(self._interval_ms(), 2 * timeout))
        out.append(self.verdicts.message(member.info.address, PING, seq=self._seq, target=target))

    def _next_target(self) -> str | None:
        """The next member in the shuffled order (a new shuffle after each pass); members
        heard of since the shuffle go in at random places."""
        members = self.membership.members
        if self.membership.ids() is not self._ids_seen:  # members came or went: place the new ones
            self._ids_seen = self.membership.ids()
            for member_id in self._ids_seen:
                if member_id not in self._in_order:
                    self._in_order.add(member_id)
                    self._order.insert(self.rng.randint(self._pos, len(self._order)), member_id)
        for _ in range(2):
            while self._pos < len(self._order):
                member_id = self._order[self._pos]
                self._pos += 1
                if self._probeable(member_id):
                    return member_id
            self._order = [m for m in members if m != self.membership.me.id]
            self._in_order = set(self._order)
            self.rng.shuffle(self._order)
            self._pos = 0
        return None

    def _probeable(self, member_id: str) -> bool:
        member = self.membership.members.get(member_id)
        return member is not None and member.status != LEFT and member.verdict != DEAD

    def _pick(self, count: int, exclude: tuple[str, ...]) -> list[str]:
        """Up to `count` random members that are probed (not left, not dead by the probes),
        by sampling: a large cluster's list is not rebuilt for it."""
        ids = self.membership.ids()
        picked: list[str] = []
        for _ in range(4 * count):
            if len(picked) >= count or not ids:
                break
            member_id = ids[self.rng.randrange(len(ids))]
            if member_id not in picked and member_id not in exclude and self._probeable(member_id):
                picked.append(member_id)
        return picked

    def _ask_helpers(self, seq: int, p: _Probing, out: list[ProbeOut]) -> None:
        helpers = self._pick(self.config.indirect_probes, exclude=(p.target,))
        p.asked = len(helpers)
        if helpers:
            self.counters.indirect += 1
        for helper in helpers:
            address = self.membership.members[helper].info.address
            out.append(self.verdicts.message(address, PING_REQ, seq=seq, target=p.target,
                                             target_address=p.address))

    def _failed(self, p: _Probing, now_ms: int, out: list[ProbeOut]) -> None:
        """No ack, direct or through helpers: the member is suspect. If the helpers did not
        all answer either (no nack), the trouble may be ours: our health worsens."""
        self.counters.failed += 1
        if p.asked < 0 or p.nacks < p.asked:
            self.local_health.worse()
        if p.final:
            if (s := self.suspicions.get(p.target)) is not None:
                s.check = "failed"
            return
        member = self.membership.members.get(p.target)
        if member is None or member.status == LEFT:
            return
        generation = member.info.generation
        incarnation = self.verdicts.incarnation_of(p.target, generation)
        note = Note(SUSPECT, p.target, generation, incarnation, self.membership.me.id)
        self.verdicts.take_suspect(note, now_ms, out)

    def _acked(self, seq: int, now_ms: int) -> None:
        p = self._probing.pop(seq, None)
        if p is None:
            return
        self.local_health.better()
        if p.final:
            self.verdicts.answered_last_check(p.target, now_ms)

    def _final_check(self, member_id: str, now_ms: int, out: list[ProbeOut]) -> None:
        """Before a suspicion runs out, probe the suspect once more, with the suspicion on
        the ping: a suspect that is alive answers (having refuted it), so a refutation we
        missed (lost, or sent while we were stopped) cannot make us call it dead. It
        starts so as to end at the deadline (later only if our health stretches it)."""
        s, member = self.suspicions[member_id], self.membership.members[member_id]
        s.check = "running"
        self._seq += 1
        timeout = self._timeout_ms()
        self._probing[self._seq] = _Probing(member_id, member.info.address, now_ms + timeout,
                                            now_ms + self._final_ms(), final=True)
        out.append(self.verdicts.message(member.info.address, PING, seq=self._seq, target=member_id))

    # -- messages -------------------------------------------------------------------------

    def handle(self, message: Probe, now_ms: int) -> list[ProbeOut]:
        """A probe message from a peer: answer it, relay it, or learn from it."""
        out: list[ProbeOut] = []
        verdicts = self.verdicts
        verdicts.take_header(message, now_ms)
        for note in message.notes:
            verdicts.take_note(note, now_ms, out)
        if message.kind == PING:
            if message.target == self.membership.me.id:
                out.append(verdicts.message(message.address, ACK, seq=message.seq, to=message.sender))
        elif message.kind == PING_REQ:
            self._seq += 1
            self._relays[self._seq] = _Relay(message.address, message.seq, now_ms + self._timeout_ms())
            out.append(verdicts.message(message.target_address, PING, seq=self._seq, target=message.target))
        elif message.kind == ACK:
            relay = self._relays.pop(message.seq, None)
            if relay is not None:
                out.append(verdicts.message(relay.origin, ACK, seq=relay.seq))
            else:
                self._acked(message.seq, now_ms)
        elif message.kind == NACK:
            probing = self._probing.get(message.seq)
            if probing is not None:
                probing.nacks += 1
        return out
