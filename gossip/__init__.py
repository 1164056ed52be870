"""The pure gossip core: no I/O, no clock reads, no global randomness."""

from gossip.clock import HybridClock, Timestamp
from gossip.codec import PROTOCOL_VERSION, Codec
from gossip.config import Config
from gossip.errors import (
    CallerError,
    ClockSkewRejected,
    ConfigError,
    GossipError,
    IncompatibleMessage,
    InvalidKey,
    InvalidValue,
    MalformedMessage,
    NetworkError,
    PeerError,
    PeerTimeout,
    PeerUnreachable,
)
from gossip.membership import Member, MemberInfo, Membership
from gossip.messages import (
    Behind,
    Exchange,
    Message,
    Outgoing,
    Reply,
    Rumor,
    RumorGroup,
    RumorItem,
    Summary,
    WriterDelta,
)
from gossip.protocol import GossipProtocol
from gossip.store import Entry, Store

__all__ = [
    "PROTOCOL_VERSION", "Behind", "CallerError", "ClockSkewRejected", "Codec", "Config", "ConfigError",
    "Entry", "Exchange", "GossipError", "GossipProtocol", "HybridClock", "IncompatibleMessage",
    "InvalidKey", "InvalidValue", "MalformedMessage", "Member", "MemberInfo", "Membership",
    "Message", "NetworkError", "Outgoing", "PeerError", "PeerTimeout", "PeerUnreachable",
    "Reply", "Rumor", "RumorGroup", "RumorItem", "Store", "Summary", "Timestamp", "WriterDelta",
]
