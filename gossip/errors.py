"""Errors that say whose fault it was.

GossipError
├── ConfigError          a setting is invalid (names the field)
├── CallerError          the local caller asked for something invalid -> HTTP 4xx
│   ├── InvalidKey
│   └── InvalidValue
├── PeerError            a peer sent something we refuse -> rejected, logged, counted
│   ├── MalformedMessage     not decodable, or breaks a limit or a type
│   ├── IncompatibleMessage  another protocol version or another cluster id
│   └── ClockSkewRejected    a timestamp too far ahead of our wall clock
├── NetworkError         the network failed us -> the loop logs, counts, carries on
│   ├── PeerTimeout
│   └── PeerUnreachable
│       └── PeerRefused      the peer answered with an error status (403, 400, ...)
└── WritesRefused        this node takes no writes now (its peers refuse its gossip) -> HTTP 503
"""

from __future__ import annotations


class GossipError(Exception):
    """Base of every error raised by this project."""


class ConfigError(GossipError, ValueError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"config field {field!r}: {problem}")
        self.field = field


class CallerError(GossipError):
    """The caller's fault: maps to a 4xx answer."""


class InvalidKey(CallerError):
    pass


class InvalidValue(CallerError):
    pass


class PeerError(GossipError):
    """A peer's fault: the message is rejected and nothing of it is applied."""


class MalformedMessage(PeerError):
    pass


class IncompatibleMessage(PeerError):
    pass


class ClockSkewRejected(PeerError):
    pass


class NetworkError(GossipError):
    """The network's fault: the round carries on with the other peers."""

    def __init__(self, address: str, problem: str) -> None:
        super().__init__(f"{address}: {problem}")
        self.address = address


class PeerTimeout(NetworkError):
    pass


class PeerUnreachable(NetworkError):
    pass


class PeerRefused(PeerUnreachable):
    """The peer answered with an error status: `reason` is the refusal's error type, as
    the peer names it (x-gossip-refusal), or "" if it does not."""

    def __init__(self, address: str, status: int, reason: str, problem: str) -> None:
        super().__init__(address, f"refused with {status}{f' ({reason})' if reason else ''}: {problem}")
        self.status, self.reason = status, reason


class WritesRefused(GossipError):
    """This node takes no writes for now: no peer would take them (see /health)."""
