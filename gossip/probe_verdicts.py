"""What a node holds of each member from direct probes (R23), and the notes that spread it.

Each life of a node keeps an *incarnation*, a counter only it raises. A node hears notes
(alive, suspect, dead at an incarnation) on every probe message; `Verdicts` keeps what it
concluded of each member's current life (the newest incarnation heard, its suspicions,
its dead marks), tells the membership (`Membership.judge`), refutes what is said against
itself, and queues each note it learns to pass on a number of times that grows with
log10 N. gossip/probes.py (`Prober`) sends the probes and asks it what to carry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gossip.config import Config
from gossip.membership import ALIVE, DEAD, LEFT, SUSPECT, Membership
from gossip.probe_messages import NOTES, PIGGYBACK, PING, Note, Probe, ProbeOut
from gossip.suspicion import LocalHealth, Suspicion, confirmations_needed, suspicion_bounds_ms


@dataclass
class ProbeCounters:
    probes: int = 0
    indirect: int = 0  # probes that needed helpers
    failed: int = 0  # probes with no ack at all
    refuted: int = 0  # suspicions of ourselves refuted
    declared_dead: int = 0  # suspicions that ran out here
    stalls: int = 0  # times this node found it had been stopped or starved (Prober._after_stall)


@dataclass(slots=True)
class _Queued:
    """A note to pass on, and how many more times."""

    note: Note
    left: int


@dataclass
class Verdicts:
    config: Config
    membership: Membership
    health: LocalHealth
    counters: ProbeCounters
    incarnation: int = 0  # ours, in this life
    suspicions: dict[str, Suspicion] = field(default_factory=dict)
    dead: dict[str, tuple[int, int]] = field(default_factory=dict)  # member -> (generation, incarnation)
    # The newest incarnation heard of each member's life: member -> (generation, incarnation).
    _known: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Notes to pass on: member -> {by: [note, sends left]}; an alive or dead note goes under "".
    _notes: dict[str, dict[str, _Queued]] = field(default_factory=dict)

    def size(self) -> int:
        """The cluster's size as we know it, ourselves included."""
        return len(self.membership.members) + 1

    @property
    def has_notes(self) -> bool:
        return bool(self._notes)

    # -- messages -------------------------------------------------------------------------

    def message(self, address: str, kind: str, *, seq: int = 0, target: str = "", target_address: str = "",
                to: str = "") -> ProbeOut:
        """A message of ours, with notes riding on it: first what we hold against its
        receiver (`to`, or the member a ping is meant for), so it can refute."""
        notes = self.take_notes(PIGGYBACK, to=to or (target if kind == PING else ""))
        return ProbeOut(address, self.probe_message(kind, notes, seq, target, target_address))

    def probe_message(self, kind: str, notes: tuple[Note, ...], seq: int = 0, target: str = "",
                      target_address: str = "") -> Probe:
        me = self.membership.me
        return Probe(kind, me.id, me.address, me.generation, self.incarnation, seq, target, target_address,
                     notes)

    def take_header(self, message: Probe, now_ms: int) -> None:
        """Any message from a member shows it alive at its incarnation."""
        if message.sender != self.membership.me.id:
            note = Note(ALIVE, message.sender, message.generation, message.incarnation, message.sender)
            self._take_alive(note, now_ms, spread=False)

    # -- notes to pass on -----------------------------------------------------------------

    def _sends(self) -> int:
        return self.config.retransmit_mult * max(1, math.ceil(math.log10(self.size() + 1)))

    def _queue(self, note: Note, key: str) -> None:
        by_member = self._notes.setdefault(note.member, {})
        if key == "":
            by_member.clear()  # an alive or dead note supersedes every suspicion of it
        by_member[key] = _Queued(note, self._sends())

    def take_notes(self, limit: int, to: str = "") -> tuple[Note, ...]:
        """Up to `limit` notes to send, those sent least first; a note about the receiver
        itself goes first (and always, so a suspect hears it)."""
        picked: list[Note] = []
        against = self.against(to) if to else None
        if against is not None:
            picked.append(against)
        if not self._notes:
            return tuple(picked)
        queued = [(item, member, key) for member, by in self._notes.items() for key, item in by.items()]
        queued.sort(key=lambda t: -t[0].left)
        for item, member, key in queued:
            if len(picked) >= limit:
                break
            if item.note in picked:
                continue
            picked.append(item.note)
            item.left -= 1
            if item.left == 0:
                del self._notes[member][key]
                if not self._notes[member]:
                    del self._notes[member]
        return tuple(picked)

    def against(self, member_id: str) -> Note | None:
        """What we hold against a member (a suspicion or a dead verdict), to tell it."""
        me = self.membership.me.id
        if (s := self.suspicions.get(member_id)) is not None:
            return Note(SUSPECT, member_id, s.generation, s.incarnation, me)
        if (d := self.dead.get(member_id)) is not None and self.current(member_id, d[0]):
            return Note(DEAD, member_id, d[0], d[1], me)
        return None

    def witnessed(self) -> list[str]:
        """The members we suspect from a probe of our own (first, or confirming): we tell
        each, with every round of notes, until it refutes or is dead. A suspect that
        was stopped while the news went round (its notes spent) hears it this way within
        a fifth of an interval of waking, not only at its next probe."""
        me = self.membership.me.id
        return [m for m, s in self.suspicions.items() if s.first == me or me in s.confirmers]

    # -- what we know of each member --------------------------------------------------------

    def current(self, member_id: str, generation: int) -> bool:
        """Whether `generation` is the life of the member we know (notes of other lives
        are left to the membership: a newer life is news there, R13)."""
        member = self.membership.members.get(member_id)
        return member is not None and member.info.generation == generation and member.status != LEFT

    def _dead_at(self, member_id: str, generation: int) -> int | None:
        """The incarnation at which we hold this life of the member dead, if we do."""
        dead = self.dead.get(member_id)
        if dead is None or dead[0] != generation:
            return None
        return dead[1]

    def incarnation_of(self, member_id: str, generation: int) -> int:
        known = self._known.get(member_id)
        return known[1] if known is not None and known[0] == generation else 0

    def describe(self, member_id: str, now_ms: int) -> dict[str, object]:
        """The probes' view of a member, for /members: their verdict, the incarnation heard,
        and a suspicion's age, confirmations and time left."""
        member = self.membership.members.get(member_id)
        generation = member.info.generation if member is not None else 0
        out: dict[str, object] = {
            "probe_verdict": member.verdict if member is not None else ALIVE,
            "incarnation": self.incarnation_of(member_id, generation),
        }
        s = self.suspicions.get(member_id)
        if s is not None and s.generation == generation:
            out["suspicion"] = {"first_by": s.first, "confirmations": sorted(s.confirmers),
                                "since_ms_ago": max(0, now_ms - s.started),
                                "dead_in_ms": max(0, s.deadline() - now_ms)}
        return out

    # -- taking notes -----------------------------------------------------------------------

    def take_note(self, note: Note, now_ms: int, out: list[ProbeOut]) -> None:
        if note.kind == ALIVE:
            self._take_alive(note, now_ms, spread=True)
        elif note.kind == SUSPECT:
            self.take_suspect(note, now_ms, out)
        else:
            why = f"{note.by} says so"
            self.take_dead(note.member, note.generation, note.incarnation, note.by, now_ms, why)

    def _refute(self, note: Note) -> bool:
        """A note that suspects us, or calls us dead: raise our incarnation above it and say
        we are alive. True if the note was about us."""
        me = self.membership.me
        if note.member != me.id:
            return False
        if note.generation == me.generation and note.incarnation >= self.incarnation:
            self.incarnation = note.incarnation + 1
            self.counters.refuted += 1
            self.health.worse()  # others could not reach us: slow down
            self._queue(Note(ALIVE, me.id, me.generation, self.incarnation, me.id), "")
        return True

    def _take_alive(self, note: Note, now_ms: int, spread: bool) -> None:
        if note.member == self.membership.me.id or not self.current(note.member, note.generation):
            return
        known = self._known.get(note.member)
        if known is not None and known[0] == note.generation and note.incarnation <= known[1]:
            return
        self._known[note.member] = (note.generation, note.incarnation)
        cleared = False
        if (s := self.suspicions.get(note.member)) is not None and (
            s.generation != note.generation or s.incarnation < note.incarnation
        ):
            del self.suspicions[note.member]
            cleared = True
        d = self.dead.get(note.member)
        if d is not None and (d[0] != note.generation or d[1] < note.incarnation):
            del self.dead[note.member]
            cleared = True
        if cleared or (spread and note.incarnation > 0):
            self._queue(note, "")  # news: a refutation
        if cleared and not self.suspicions.get(note.member) and note.member not in self.dead:
            self.membership.judge(note.member, ALIVE, now_ms, f"alive at incarnation {note.incarnation}")

    def take_suspect(self, note: Note, now_ms: int, out: list[ProbeOut]) -> None:
        """A suspicion heard (or ours, from a failed probe); our own goes to the suspect at
        once, in `out`."""
        if self._refute(note) or not self.current(note.member, note.generation):
            return
        if note.incarnation < self.incarnation_of(note.member, note.generation):
            return  # refuted already
        dead = self._dead_at(note.member, note.generation)
        if dead is not None and dead >= note.incarnation:
            return
        s = self.suspicions.get(note.member)
        if s is not None and s.generation == note.generation and s.incarnation >= note.incarnation:
            if s.confirm(note.by):
                self._queue(note, note.by)  # a new witness: others count it too
            return
        size = self.size()
        shortest, longest = suspicion_bounds_ms(self.config, size)
        needed = confirmations_needed(self.config, size)
        self.suspicions[note.member] = Suspicion(note.generation, note.incarnation, now_ms, shortest, longest,
                                                 needed, note.by)
        self._queue(note, note.by)
        self.membership.judge(note.member, SUSPECT, now_ms, f"suspected by {note.by}")
        if note.by == self.membership.me.id:  # our own suspicion: tell the suspect at once
            address = self.membership.members[note.member].info.address
            out.append(ProbeOut(address, self.probe_message(NOTES, (note,))))

    def take_dead(self, member_id: str, generation: int, incarnation: int, by: str, now_ms: int,
                  why: str) -> None:
        note = Note(DEAD, member_id, generation, incarnation, by)
        if self._refute(note) or not self.current(member_id, generation):
            return
        if incarnation < self.incarnation_of(member_id, generation):
            return
        dead = self._dead_at(member_id, generation)
        if dead is not None and dead >= incarnation:
            return
        self.dead[member_id] = (generation, incarnation)
        self.suspicions.pop(member_id, None)
        self._queue(note, "")
        self.membership.judge(member_id, DEAD, now_ms, why)

    def answered_last_check(self, member_id: str, now_ms: int) -> None:
        """A suspect answered the last check of its suspicion: whatever we missed, it lives
        (here; we tell nobody)."""
        if self.suspicions.pop(member_id, None) is not None:
            self.membership.judge(member_id, ALIVE, now_ms, "answered the last check of a suspicion")
