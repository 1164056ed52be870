"""Signing and verification in the pure core (gossip/auth.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gossip.auth import AuthError, KeyRing, KeyRingError, ReplayError, Verifier, key_id, parse_key, sign

K1, K2, K3 = bytes(range(32)), bytes(range(1, 33)), bytes(range(2, 34))
NOW = 1_800_000_000_000
WINDOW = 30_000


def verifier(ring: KeyRing, cluster: str = "c") -> Verifier:
    return Verifier(ring, cluster, WINDOW)


def test_signed_message_verifies_once() -> None:
    ring = KeyRing.of(K1)
    headers = sign(ring, "c", b"body", NOW, "n1")
    v = verifier(ring)
    v.verify(headers, b"body", NOW + 5)
    with pytest.raises(ReplayError, match="replayed"):
        v.verify(headers, b"body", NOW + 6)


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        (lambda h, b: ({}, b), AuthError, "unsigned"),
        (lambda h, b: ({**h, "x-gossip-signature": "0" * 64}, b), AuthError, "bad signature"),
        (lambda h, b: (h, b + b" "), AuthError, "bad signature"),
        (lambda h, b: ({**h, "x-gossip-time": str(NOW + 1)}, b), AuthError, "bad signature"),
        (lambda h, b: ({**h, "x-gossip-nonce": "other"}, b), AuthError, "bad signature"),
        (lambda h, b: ({**h, "x-gossip-key": key_id(K3)}, b), AuthError, "does not accept"),
        (lambda h, b: ({**h, "x-gossip-time": "soon"}, b), AuthError, "malformed"),
    ],
)
def test_tampering_is_refused(change, error, words) -> None:  # type: ignore[no-untyped-def]
    ring = KeyRing.of(K1)
    headers, body = change(sign(ring, "c", b"body", NOW, "n1"), b"body")
    with pytest.raises(error, match=words):
        verifier(ring).verify(headers, body, NOW)


def test_other_cluster_and_retired_key_are_refused() -> None:
    ring = KeyRing.of(K1)
    with pytest.raises(AuthError, match="bad signature"):
        verifier(ring, "c").verify(sign(ring, "other", b"x", NOW, "n"), b"x", NOW)
    with pytest.raises(AuthError, match="does not accept"):
        verifier(ring).verify(sign(KeyRing.of(K2), "c", b"x", NOW, "n"), b"x", NOW)


@pytest.mark.parametrize("offset", [-WINDOW - 1, WINDOW + 1])
def test_messages_outside_the_window_are_refused(offset: int) -> None:
    ring = KeyRing.of(K1)
    with pytest.raises(ReplayError, match="window"):
        verifier(ring).verify(sign(ring, "c", b"x", NOW + offset, "n"), b"x", NOW)


def test_nonces_are_forgotten_only_once_outside_the_window() -> None:
    ring = KeyRing.of(K1)
    v = verifier(ring)
    for i in range(1_000):
        v.verify(sign(ring, "c", b"x", NOW + i, f"n{i}"), b"x", NOW + i)
    later = NOW + 1_000 + WINDOW
    v.verify(sign(ring, "c", b"x", later, "fresh"), b"x", later)
    assert len(v._seen) < 1_000  # old nonces dropped: memory stays bounded
    with pytest.raises(ReplayError):  # a remembered one is still refused
        v.verify(sign(ring, "c", b"x", later, "fresh"), b"x", later)


def test_rotation_steps_are_idempotent_and_safe() -> None:
    ring = KeyRing.of(K1)
    new = ring.install(K2)
    assert ring.install(K2) == new and ring.describe()["keys"] == sorted([key_id(K1), new])
    ring.use(new)
    ring.use(new)
    with pytest.raises(KeyRingError, match="primary"):
        ring.remove(new)
    ring.remove(key_id(K1))
    ring.remove(key_id(K1))
    assert ring.describe() == {"primary": new, "keys": [new]}
    with pytest.raises(KeyRingError, match="not installed"):
        ring.use(key_id(K1))
    old_signed = sign(KeyRing.of(K1), "c", b"x", NOW, "n")
    with pytest.raises(AuthError):
        verifier(ring).verify(old_signed, b"x", NOW)


def test_during_rotation_both_keys_verify() -> None:
    old, new = KeyRing.of(K1), KeyRing.of(K1, K2)
    new.use(key_id(K2))
    v_old_node = verifier(KeyRing.of(K1, K2))
    v_old_node.verify(sign(new, "c", b"x", NOW, "a"), b"x", NOW)
    verifier(new).verify(sign(old, "c", b"x", NOW, "b"), b"x", NOW)


@pytest.mark.parametrize("text", ["", "zz" * 32, "ab" * 31, "ab" * 33])
def test_bad_keys_are_refused(text: str) -> None:
    with pytest.raises(KeyRingError, match="64 hex"):
        parse_key(text)


@given(body=st.binary(min_size=1, max_size=64), flip=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_single_bit_change_breaks_the_signature(body: bytes, flip: int, bit: int) -> None:
    ring = KeyRing.of(K1)
    headers = sign(ring, "c", body, NOW, "n")
    altered = bytearray(body)
    altered[flip % len(altered)] ^= 1 << bit
    with pytest.raises(AuthError):
        verifier(ring).verify(headers, bytes(altered), NOW)
