"""Membership changes in the node's log, one line each, with node ids and the reason:
the core records them (gossip.membership.MemberEvent) and the node drains them every
round. A member found dead or forgotten is a WARNING; the rest (joined, suspect, alive
again, left, restarted) are INFO. Resets are logged where they happen
(node.server.local_state)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from gossip.membership import MemberEvent

log = logging.getLogger("gossip.members")
WARN = ("dead", "reaped")


def log_events(node_id: str, events: Iterable[MemberEvent]) -> None:
    for e in events:
        log.log(
            logging.WARNING if e.kind in WARN else logging.INFO,
            "%s: member %s %s: %s (address %s)", node_id, e.member, e.kind, e.reason, e.address,
            extra={"node": node_id, "event": e.kind, "member": e.member, "address": e.address,
                   "reason": e.reason},
        )
