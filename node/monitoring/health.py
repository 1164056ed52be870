"""Whether a node is in the cluster, and if not, why and what to change.

`assess` turns what our exchanges with each peer met with (node.server.peerlog: answered,
unreachable, or refused with a status and the peer's reason; whose gossip we refused),
the membership and the clock's judgement (node.server.clockcheck: whether this node's clock is
fit to acknowledge writes) into a verdict for GET /health. The node's watcher
re-assesses every gossip interval, logs each problem once when it begins and once when it
ends, tells the clock check which nodes the node knows of, and logs the membership changes
the core recorded (node.monitoring.memberlog).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from gossip.config import Config
from gossip.membership import ALIVE, LEFT, SUSPECT, MemberEvent
from gossip.version import __version__
from node.monitoring.memberlog import log_events
from node.server.clockcheck import AHEAD, BEHIND, HLC_AHEAD, UNCHECKED, ClockCheck, Judgement
from node.server.dns_seeds import DnsSeeds
from node.server.peerlog import Failure, PeerLog
from node.wire.traffic import Traffic

log = logging.getLogger("gossip.health")

FORGET_AFTER = 3600.0  # seconds an outcome is kept (only recent ones count)

# What to change, by the reason a peer gives for refusing our gossip (or, failing that,
# by the status it answers with).
FIXES = {
    "NotAllowed": "add our network to their --allow (GOSSIP_ALLOW)",
    "ClockSkewRejected": "our clock runs ahead of theirs beyond max_offset: fix this host's clock (NTP)",
    "ReplayError": "they refuse our signatures' time or nonce: check this host's clock against theirs",
    "AuthError": "they do not accept our gossip key: give every node the same GOSSIP_KEY",
    "IncompatibleMessage": "they run another cluster id or protocol version: check --cluster-id and versions",
    "MalformedMessage": "they cannot read our messages: run one version of the node everywhere",
    "403": "check their --allow (GOSSIP_ALLOW) and our clock",
    "401": "give every node the same GOSSIP_KEY",
    "409": "check --cluster-id and the versions",
    "413": "give every node the same max_body_bytes",
}


def suspicion_seconds(interval: float, phi_suspect: float) -> float:
    """How long a silent member takes to be suspected: phi grows by log10(e) per mean
    heartbeat interval of silence."""
    return phi_suspect / math.log10(math.e) * interval


def fix_for(status: int, reason: str) -> str:
    return FIXES.get(reason) or FIXES.get(str(status), "see the peer's log for why it refuses us")


class Watched(Protocol):
    """What the health check reads of a node (node.state.SharedState is one)."""

    @property
    def id(self) -> str: ...
    @property
    def config(self) -> Config: ...
    @property
    def peers(self) -> PeerLog: ...
    @property
    def traffic(self) -> Traffic: ...  # (the peers' clock offsets)
    @property
    def clockcheck(self) -> ClockCheck: ...
    @property
    def dns(self) -> DnsSeeds: ...
    @property
    def health(self) -> HealthWatch: ...
    @property
    def write_refusal(self) -> str | None: ...
    def cluster_view(self) -> tuple[tuple[str, ...], Counter[str]]: ...
    def members(self) -> list[dict[str, Any]]: ...
    def member_events(self) -> list[MemberEvent]: ...


@dataclass(frozen=True)
class Problem:
    code: str  # not_joined, refused, isolated, clock_ahead, hlc_ahead, clock_unchecked, refusing_peers, ...
    detail: str  # what is wrong and what to change, in one sentence or two
    peers: tuple[dict[str, Any], ...] = ()
    logged: bool = True  # (a node starting up is not joined yet either: that goes unlogged)

    def json(self) -> dict[str, Any]:
        return {"problem": self.code, "detail": self.detail, "peers": list(self.peers)}


@dataclass(frozen=True)
class Verdict:
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...] = ()
    alone: str = ""  # why a node with no peers is fine so

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def clock_refused(self) -> Problem | None:
        """The problem with our clock that makes the node refuse writes, if any."""
        return next((p for p in self.problems if p.code in (AHEAD, HLC_AHEAD, UNCHECKED)), None)


def _refusal(address: str, f: Failure, offsets: dict[str, float]) -> dict[str, Any]:
    out = {"peer": address, "status": f.status, "reason": f.reason, "fix": fix_for(f.status, f.reason)}
    if address in offsets:
        out["clock_offset_seconds"] = round(offsets[address], 3)
    return out


def _describe(refusals: dict[str, Failure]) -> str:
    kinds = sorted({(f.status, f.reason) for f in refusals.values()})
    return "; ".join(f"{status}{f' {reason}' if reason else ''}: {fix_for(status, reason)}"
                     for status, reason in kinds)


def assess(state: Watched) -> Verdict:
    """The node's health now, from its peer log and its membership."""
    now, peers, config = time.monotonic(), state.peers, state.config
    window = max(suspicion_seconds(config.gossip_interval, config.phi_suspect), 3 * config.gossip_interval)
    seeds, statuses = state.cluster_view()
    staying = sum(n for status, n in statuses.items() if status != LEFT)
    offsets = state.traffic.last_offset
    # Each peer's latest outcome, when it failed recently.
    failing = {a: f for a, f in peers.failed.items()
               if now - f.at <= window and f.at > peers.answered.get(a, -math.inf)}
    refusals = {a: f for a, f in failing.items() if f.status}
    problems: list[Problem] = []
    warnings: list[Problem] = []
    alone = ""
    # Our clock against the other hosts' (node.server.clockcheck): ahead, or our HLC ahead of it.
    clock = state.clockcheck.judge()
    if clock.code in (AHEAD, HLC_AHEAD):
        problems.append(_clock_problem(clock, refusals))
    elif now - peers.last_ok > window:
        if refusals:
            code = "refused" if peers.joined else "not_joined"
            problems.append(Problem(
                code, f"{'' if peers.joined else 'not joined: '}peers refuse our gossip with "
                f"{_describe(refusals)}", tuple(_refusal(a, f, offsets) for a, f in sorted(refusals.items())),
            ))
        elif not peers.joined and (seeds or staying):
            tried = tuple({"peer": a, "error": f.detail} for a, f in sorted(failing.items()))
            detail = (f"not joined: no seed reachable ({', '.join(seeds) or 'no seeds'}): check the seeds, "
                      "the network and that the seeds run" if tried else
                      "not joined yet: no exchange with a seed has completed")
            problems.append(Problem("not_joined", detail, tried, logged=bool(tried)))
        elif staying:
            problems.append(Problem(
                "isolated", f"no member reachable for {now - peers.last_ok:.1f} s (over the suspicion time, "
                f"{window:.1f} s) while {staying} are not known to have left: check this host's network",
                tuple({"peer": a, "error": f.detail} for a, f in sorted(failing.items())),
            ))
        elif peers.joined:
            alone = "every other member has left"
        elif state.dns.seeds:
            alone = (f"the DNS seeds ({', '.join(map(str, state.dns.seeds))}) give no node but this one: a "
                     "one-node cluster until they give others (looked up every round)")
        else:
            alone = "no seeds and no other member: a one-node cluster"
    if clock.code == UNCHECKED and not problems:  # (joined, but only by nodes on our own host)
        problems.append(_clock_problem(clock, refusals, logged=now - state.health.started > window))
    elif clock.code == BEHIND:
        warnings.append(_clock_problem(clock, refusals))
    if refusals and not any(p.code in ("refused", "not_joined", AHEAD, HLC_AHEAD) for p in problems):
        warnings.append(Problem(
            "some_peers_refuse", f"some peers refuse our gossip with {_describe(refusals)}",
            tuple(_refusal(a, f, offsets) for a, f in sorted(refusals.items())),
        ))
    if unresolved := _unresolved(state):
        if statuses[ALIVE] + statuses[SUSPECT]:  # in a cluster: it goes on without the names
            warnings.append(unresolved)
        else:
            problems.append(unresolved)
            alone = ""
    ours = {h: f for h, f in peers.refused_hosts.items() if now - f.at <= window}
    outside = {h: f for h, f in ours.items() if f.reason == "NotAllowed"}
    if outside:
        refusing = Problem(
            "refusing_peers", f"we refuse gossip from {', '.join(sorted(outside))} with 403: not in our "
            "--allow; if they are ours, add their network to our --allow (GOSSIP_ALLOW)",
            tuple({"peer": h, "status": f.status, "reason": f.reason} for h, f in sorted(outside.items())),
        )
        if alone or problems:  # alone with peers knocking is not alone by design
            problems.append(refusing)
            alone = ""
        else:
            warnings.append(refusing)
    if rejected := {h: f for h, f in ours.items() if h not in outside}:
        warnings.append(Problem(
            "rejected_gossip", "we rejected gossip from " + "; ".join(
                f"{h} ({f.status} {f.reason})" for h, f in sorted(rejected.items())),
            tuple({"peer": h, "status": f.status, "reason": f.reason, "detail": f.detail[:200]}
                  for h, f in sorted(rejected.items())),
        ))
    return Verdict(tuple(problems), tuple(warnings), alone)


def _clock_problem(clock: Judgement, refusals: dict[str, Failure], logged: bool = True) -> Problem:
    """The clock's judgement as a problem: each node of another host, with its clock's
    offset from ours (and that estimate's uncertainty), and its refusal if it refuses us
    (a node taking writes anyway sees its peers refuse them: 400 ClockSkewRejected)."""
    peers = []
    for p in clock.peers:
        named = p.json()
        if (f := refusals.get(p.address)) is not None:
            named.update(status=f.status, reason=f.reason, fix=fix_for(f.status, f.reason))
        peers.append(named)
    return Problem(clock.code, clock.detail, tuple(peers), logged)


def _unresolved(state: Watched) -> Problem | None:
    """The DNS seeds whose last lookup failed, with the error and what to check."""
    failed = sorted((str(seed), error, seed.what_to_check) for seed, error in dict(state.dns.failed).items())
    if not failed:
        return None
    return Problem(
        "dns_seed_unresolved",
        "; ".join(f"DNS seed {seed} does not resolve ({error}): {check}" for seed, error, check in failed),
        tuple({"peer": seed, "error": error} for seed, error, _ in failed),
    )


def answer(state: Watched, verdict: Verdict) -> dict[str, Any]:
    """The body of GET /health."""
    body: dict[str, Any] = {
        "status": "ok" if verdict.ok else "unavailable",
        "node": state.id,
        "version": __version__,
        "accepting_writes": state.write_refusal is None,
    }
    if verdict.alone:
        body["alone"] = verdict.alone
    if verdict.problems:
        body["problems"] = [p.json() for p in verdict.problems]
    if verdict.warnings:
        body["warnings"] = [p.json() for p in verdict.warnings]
    return body


class HealthWatch:
    """Re-assesses the node, logs problems as they begin and end, and sets whether it
    takes writes."""

    def __init__(self, state: Watched) -> None:
        self.state = state
        self.active: dict[str, Problem] = {}
        self.last: Verdict | None = None
        self.started = time.monotonic()

    def update(self) -> Verdict:
        state = self.state
        state.peers.forget_before(time.monotonic() - FORGET_AFTER)
        seeds, _ = state.cluster_view()
        state.clockcheck.expect([*seeds, *(m["address"] for m in state.members()
                                           if not m["self"] and m["status"] != LEFT)])
        verdict = assess(state)
        now = {p.code: p for p in (*verdict.problems, *verdict.warnings) if p.logged}
        for code, problem in now.items():
            before = self.active.get(code)
            if before is None:
                log.warning("%s: health: %s began: %s; peers: %s", state.id, code, problem.detail,
                            _peers_line(problem))
            elif _gist(before.detail) != _gist(problem.detail):  # another cause, not just other figures
                log.warning("%s: health: %s goes on, now: %s; peers: %s", state.id, code, problem.detail,
                            _peers_line(problem))
        for code, problem in self.active.items():
            if code not in now:
                log.warning("%s: health: %s ended (it was: %s)", state.id, code, problem.detail)
        self.active, self.last = now, verdict
        return verdict

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.state.config.gossip_interval)
            try:
                log_events(self.state.id, self.state.member_events())
                self.update()
            except Exception:  # a bug here must not stop the node
                log.exception("%s: health assessment failed", self.state.id)


def _peers_line(problem: Problem) -> str:
    parts = []
    for p in problem.peers:
        offset = f"clock {p['clock_offset_seconds']:+.2f} s" if "clock_offset_seconds" in p else ""
        said = (p.get("status") or p.get("error", ""), p.get("reason", ""), offset)
        why = " ".join(str(w) for w in said if w)
        parts.append(f"{p['peer']} ({why})")
    return ", ".join(parts) or "none"


def _gist(detail: str) -> str:
    """A problem's detail without its figures (times, counts), to tell a new cause apart."""
    return re.sub(r"\d+(\.\d+)?", "#", detail)
