"""Authenticated gossip: every message is signed with HMAC-SHA256 over the cluster id, a
timestamp, a nonce and the body, with the primary key of a key ring; any key in the ring
verifies. Messages outside the replay window, or repeating a nonce inside it, are refused.
Time is passed in, as everywhere in the core."""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from gossip.errors import CallerError, PeerError

KEY_BYTES = 32
HEADERS = ("x-gossip-key", "x-gossip-time", "x-gossip-nonce", "x-gossip-signature")


class AuthError(PeerError):
    """A message that is not provably from a key holder (answered 401)."""


class ReplayError(AuthError):
    """A validly signed message seen before or outside the time window (answered 403)."""


class KeyRingError(CallerError):
    """A key, or a key ring operation, that cannot be used."""


def key_id(key: bytes) -> str:
    """A short public name for a key: safe to log and to send."""
    return hashlib.sha256(b"gossip-key-id" + key).hexdigest()[:12]


def parse_key(text: str) -> bytes:
    """A key given as 64 hex digits (32 bytes)."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise KeyRingError("a key must be 64 hex digits") from exc
    if len(key) != KEY_BYTES:
        raise KeyRingError(f"a key must be {KEY_BYTES} bytes (64 hex digits), got {len(key)}")
    return key


@dataclass
class KeyRing:
    """One primary key that signs, and every installed key (the primary included) that
    verifies. Rotation: install the new key everywhere, use it everywhere, remove the old
    one. Each step is idempotent, so repeating it is safe."""

    primary: bytes
    keys: dict[str, bytes]

    @classmethod
    def of(cls, primary: bytes, *accepted: bytes) -> KeyRing:
        ring = cls(primary, {})
        for key in (primary, *accepted):
            ring.keys[key_id(key)] = key
        return ring

    def install(self, key: bytes) -> str:
        self.keys[key_id(key)] = key
        return key_id(key)

    def use(self, kid: str) -> None:
        if kid not in self.keys:
            raise KeyRingError(f"key {kid} is not installed; install it first")
        self.primary = self.keys[kid]

    def remove(self, kid: str) -> None:
        if kid == key_id(self.primary):
            raise KeyRingError(f"key {kid} is the primary key; make another key primary first")
        self.keys.pop(kid, None)

    def describe(self) -> dict[str, object]:
        return {"primary": key_id(self.primary), "keys": sorted(self.keys)}


def _mac(key: bytes, cluster_id: str, time_ms: int, nonce: str, body: bytes) -> str:
    message = f"{cluster_id}\n{time_ms}\n{nonce}\n".encode() + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(ring: KeyRing, cluster_id: str, body: bytes, now_ms: int, nonce: str) -> dict[str, str]:
    """Headers that authenticate `body` as sent now by a holder of the primary key;
    `nonce` must not repeat (the node uses 128 random bits)."""
    signature = _mac(ring.primary, cluster_id, now_ms, nonce, body)
    return dict(zip(HEADERS, (key_id(ring.primary), str(now_ms), nonce, signature), strict=True))


class Verifier:
    """Checks signatures, the time window and nonces. Remembers each nonce for as long
    as its message could pass the window check, so memory is bounded by the rate of
    valid messages, which only key holders can produce."""

    def __init__(self, ring: KeyRing, cluster_id: str, window_ms: int) -> None:
        self.ring, self.cluster_id, self.window_ms = ring, cluster_id, window_ms
        self._seen: OrderedDict[str, int] = OrderedDict()  # nonce -> its message time

    def verify(self, headers: Mapping[str, str], body: bytes, now_ms: int) -> None:
        values = [headers.get(name) for name in HEADERS]
        if any(v is None for v in values):
            raise AuthError("unsigned gossip: this cluster requires signed messages")
        kid, time_text, nonce, signature = (str(v) for v in values)
        key = self.ring.keys.get(kid)
        if key is None:
            raise AuthError(f"signed with key {kid[:12]!r}, which this node does not accept")
        # ASCII only and bounded: int() refuses digits like '²' and > 4300 digits, and
        # compare_digest refuses non-ASCII text; either would escape as a 500.
        if not (time_text.isascii() and time_text.isdigit() and len(time_text) <= 20
                and len(nonce) <= 64 and signature.isascii()):
            raise AuthError("malformed signature headers")
        time_ms = int(time_text)
        expected = _mac(key, self.cluster_id, time_ms, nonce, body)
        if not hmac.compare_digest(expected, signature):
            raise AuthError("bad signature (another key, another cluster id, or an altered body)")
        if abs(now_ms - time_ms) > self.window_ms:
            raise ReplayError(f"message time is {now_ms - time_ms} ms from ours; the window is "
                              f"{self.window_ms} ms")
        self._forget_before(now_ms - self.window_ms)
        if nonce in self._seen:
            raise ReplayError("replayed message: this nonce was seen before")
        self._seen[nonce] = time_ms

    def _forget_before(self, cutoff_ms: int) -> None:
        while self._seen:
            nonce, time_ms = next(iter(self._seen.items()))
            if time_ms >= cutoff_ms:
                break
            del self._seen[nonce]
