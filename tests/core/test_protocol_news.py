"""Which writes a round's Exchange carries to a peer whose digest we do not know
(PROTOCOL.md R12): what recent digests lack and, with eager push off, the news; a known
digest decides alone."""

from __future__ import annotations

import random
from collections.abc import Mapping

from gossip.clock import Timestamp
from gossip.config import Config
from gossip.deltas import news_rounds
from gossip.membership import MemberInfo
from gossip.messages import Exchange, Reply
from gossip.protocol import GossipProtocol

T0 = 1_700_000_000_000
PEERS = [MemberInfo(f"p{i}", f"mem://p{i}", 1, 1) for i in range(3)]


def node(eager_push: bool = False) -> GossipProtocol:
    config = Config(gossip_interval=1.0, fanout=3, eager_push=eager_push, phi_suspect=1e9, phi_dead=1e9)
    p = GossipProtocol(config, "me", "mem://me", random.Random(1), T0)
    p.membership.merge(PEERS, T0)
    return p


def keys_sent(p: GossipProtocol, now_ms: int) -> dict[str, set[str]]:
    out = {}
    for o in p.round(now_ms):
        assert isinstance(o.message, Exchange)
        out[o.address] = {e.key for d in o.message.delta for e in d.entries}
    return out


def reply_from(p: GossipProtocol, peer: MemberInfo, digest: Mapping[str, Timestamp], now_ms: int) -> None:
    p.on_reply(peer.address, Reply(peer, digest, (), ()), now_ms)


def test_news_goes_to_every_peer_whose_digest_is_unknown() -> None:
    """R12: without eager push, a fresh write goes to every peer whose digest we do not know."""
    p = node()
    p.write("fresh", 1, T0)
    assert keys_sent(p, T0 + 1000) == {peer.address: {"fresh"} for peer in PEERS}


def test_with_eager_push_the_push_carries_the_news_and_exchanges_only_repair() -> None:
    p = node(eager_push=True)
    p.write("fresh", 1, T0)
    assert keys_sent(p, T0 + 2000) == {peer.address: set() for peer in PEERS}
    reply_from(p, PEERS[0], {}, T0 + 2500)  # p0 holds nothing: it missed the push
    assert keys_sent(p, T0 + 3000) == {peer.address: {"fresh"} for peer in PEERS}


def test_with_eager_push_a_digest_is_judged_as_of_when_it_was_heard() -> None:
    """R12: of the writes a peer's digest lacks, an Exchange sends those made at least an
    interval before that digest came; the later ones a push may have carried since, and
    the peer's next summary tells whether it did."""
    p = node(eager_push=True)
    early = p.write("early", 1, T0)
    late = p.write("late", 2, T0 + 1000)
    holder = PEERS[0]
    reply_from(p, holder, {}, T0 + 1500)  # it lacks both, as of T0 + 1.5 s
    assert keys_sent(p, T0 + 5000)[holder.address] == {"early"}  # not "late": a push may carry it
    reply_from(p, holder, {early.origin: early.ts}, T0 + 5500)  # the push did not
    assert keys_sent(p, T0 + 6000)[holder.address] == {"late"}
    reply_from(p, holder, {late.origin: late.ts}, T0 + 6500)
    assert keys_sent(p, T0 + 7000)[holder.address] == set()


def test_old_writes_are_not_news() -> None:
    p = node()
    p.write("old", 1, T0)
    later = T0 + (news_rounds(4) + 1) * 1000
    p.write("fresh", 2, later - 500)
    assert keys_sent(p, later) == {peer.address: {"fresh"} for peer in PEERS}


def test_old_writes_a_recent_digest_lacks_are_sent_too() -> None:
    p = node()
    p.write("old", 1, T0)
    later = T0 + (news_rounds(4) + 1) * 1000
    reply_from(p, PEERS[0], {}, later - 100)  # p0 holds nothing at all
    sent = keys_sent(p, later)
    assert sent[PEERS[0].address] == {"old"}  # its own digest says so
    assert sent[PEERS[1].address] == sent[PEERS[2].address] == {"old"}  # guessed from it


def test_a_known_digest_decides_and_a_failure_forgets_it() -> None:
    p = node()
    p.write("fresh", 1, T0)
    holder = PEERS[0]
    reply_from(p, holder, dict(p.store.watermarks), T0 + 500)  # it holds the write
    assert keys_sent(p, T0 + 1000)[holder.address] == set()
    p.on_failure(holder.address)  # it may have restarted empty since
    assert keys_sent(p, T0 + 2000)[holder.address] == {"fresh"}


def test_news_lasts_twice_the_rounds_push_gossip_needs() -> None:
    """R12: what counts as news, and for how many rounds."""
    assert news_rounds(1) == 1
    assert news_rounds(10) == 12  # 2 * (3.32 + 2.30)
    assert news_rounds(1000) == 34  # 2 * (9.97 + 6.91)
