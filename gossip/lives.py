"""A node's lives: each life writes as a writer of its own (R16); a state restored from a
snapshot continues the life that saved it (its lineage, R19); and the lives of other
nodes that this one forgot (R18), by which a node back with an old state is judged (R7c).
Whether a writer's life has ended is asked here too (R20)."""

from __future__ import annotations

import random
from dataclasses import replace

from gossip.clock import Timestamp
from gossip.membership import LEFT, Membership
from gossip.messages import FORGOTTEN, Behind, ForgottenLife
from gossip.remembered import remember_newest
from gossip.store import WRITER_SEP, writer_id


def writer_life(writer: str) -> tuple[str, int] | None:
    """(node id, generation) of a writer id, or None if it is not one of ours."""
    node, sep, generation = writer.rpartition(WRITER_SEP)
    return (node, int(generation)) if sep and generation.isdigit() else None


class Lives:
    def __init__(self, node_id: str, generation: int, membership: Membership, rng: random.Random) -> None:
        self.id = node_id
        self.generation = generation
        self.writer = writer_id(node_id, generation)
        # The life whose state ours continues: our own, unless restored from a snapshot
        # (R19). A peer that forgot that life judges our state by it (R7c).
        self.lineage = generation
        self.forgotten: dict[str, ForgottenLife] = {}  # lives we forgot, by node id (R18)
        self._membership = membership
        self.rng = rng

    @property
    def own_state(self) -> bool:
        """Whether our state is this life's own (it began empty, or at a reset, in this
        life), not one restored."""
        return self.lineage == self.generation

    def new(self, now_ms: int, above: int = 0) -> None:
        """Start writing as a new life: a generation above every earlier one of ours
        (even one that ran under a clock ahead of ours), so a new writer (R16). When our
        clock is behind the one we must be above, it is not a time any more but a mark,
        and a random step keeps two lives that both had to go above the same one (say,
        both restored from one old snapshot) from sharing a writer."""
        floor = max(self.generation, above)
        self.generation = now_ms if now_ms > floor else floor + self.rng.randrange(1, 1_000_000)
        self.writer = writer_id(self.id, self.generation)
        membership = self._membership
        membership.me = replace(membership.me, generation=self.generation, heartbeat=0)
        membership.outlived = None

    def outlive(self, now_ms: int) -> bool:
        """A peer knows a life of ours newer than this one (one that ran under a clock
        ahead of ours): start a life above it, or the cluster would take this one for
        the older (R16). Our state stays: it is a new writer, not a reset. Whether we did."""
        outlived = self._membership.outlived
        if outlived is None or outlived < self.generation:
            return False
        own_state = self.own_state
        self.new(now_ms, above=outlived)
        if own_state:  # (a state of this life's own, not one restored: it moves with it)
            self.lineage = self.generation
        return True

    def outlive_forgotten(self, claim: Behind | None, now_ms: int) -> bool:
        """A peer forgot a life of ours newer than this one, and this life's state is its
        own. Lives of a node follow each other, so this one began after that one, under a
        clock behind its, and holds nothing of its state: rather than be taken for it and
        reset, start a life above it, keeping our state (R16). Whether we did."""
        if (claim is not None and claim.reason == FORGOTTEN and claim.writer == self.id
                and self.lineage == self.generation < claim.mark.wall):
            self.new(now_ms, above=claim.mark.wall)
            self.lineage = self.generation
            return True
        return False

    def evidence(self, node: str, lineage: int, collected: Timestamp) -> Behind | None:
        """A node whose state continues a life we forgot, back while we have collected
        since (up to `collected`): its state may hold keys deleted meanwhile (R7c)."""
        forgotten = self.forgotten.get(node)
        if forgotten is None or lineage > forgotten.generation:
            return None
        if collected <= forgotten.collected:
            return None
        return Behind(FORGOTTEN, node, Timestamp(forgotten.generation, 0))

    def remember_forgotten(self, node: str, life: ForgottenLife) -> None:
        remember_newest(self.forgotten, node, life)

    def ended(self, writer: str, for_good: bool = False) -> bool:
        """Whether `writer`'s life is over: its node started a newer life, left, or was
        forgotten. (A writer we know nothing of may be a live node not yet met.) Only the
        first two are `for_good`: a forgotten life may be alive and writing, cut off."""
        life = writer_life(writer)
        if life is None:
            return False
        node, generation = life
        if node == self.id:
            return generation != self.generation
        member = self._membership.members.get(node)
        if member is not None:
            return member.info.generation > generation or (
                member.info.generation == generation and member.status == LEFT
            )
        reaped = self._membership.reaped.get(node)
        if reaped is not None and (reaped[0].generation > generation or reaped[0].left):
            return reaped[0].generation >= generation
        forgotten = self.forgotten.get(node)
        return not for_good and forgotten is not None and forgotten.generation >= generation
