"""The admin routes: the gossip signing keys of a node, installed, made primary and
dropped one step at a time (a rotation across the cluster). Only on a node with an api
token, and with it."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from gossip.auth import KeyRing, KeyRingError, parse_key
from node.state import SharedState
from node.web.http_basics import LimitedRoute, StateDep, admin, errors

admin_router = APIRouter(route_class=LimitedRoute, tags=["admin"], dependencies=[Depends(admin)],
                         responses=errors(409))  # (signing off, or a key that is not there)


HEX_KEY = "[0-9a-fA-F]{64}"  # exactly (the flag and variable take spaces around it, the API does not)


class KeyBody(BaseModel):
    key: str = Field(json_schema_extra={"pattern": f"^{HEX_KEY}$"}, description="64 hex digits")


def _ring(state: SharedState) -> KeyRing:
    if state.keyring is None:
        raise HTTPException(409, "gossip signing is off on this node (no gossip key)")
    return state.keyring


@admin_router.get("/admin/keys")
async def list_keys(state: StateDep) -> dict[str, object]:
    """Ids of the installed keys and of the primary one (never the keys themselves)."""
    return _ring(state).describe()


@admin_router.post("/admin/keys", responses=errors(400, 413, 422))
async def install_key(body: KeyBody, state: StateDep) -> dict[str, object]:
    """Install a key that verifies; step 1 of a rotation, safe to repeat."""
    try:
        if not re.fullmatch(HEX_KEY, body.key):
            raise KeyRingError("a key must be 64 hex digits")
        key = parse_key(body.key)
    except KeyRingError as exc:
        raise HTTPException(422, str(exc)) from exc
    return _change_ring(state, lambda ring: ring.install(key))


@admin_router.post("/admin/keys/{kid}/primary")
async def use_key(kid: str, state: StateDep) -> dict[str, object]:
    """Sign with an installed key from now on; step 2, safe to repeat."""
    return _change_ring(state, lambda ring: ring.use(kid))


@admin_router.delete("/admin/keys/{kid}")
async def remove_key(kid: str, state: StateDep) -> dict[str, object]:
    """Stop accepting a key; step 3, safe to repeat."""
    return _change_ring(state, lambda ring: ring.remove(kid))


def _change_ring(state: SharedState, change: Callable[[KeyRing], object]) -> dict[str, object]:
    ring = _ring(state)
    try:
        with state.keyring_lock():
            change(ring)
    except KeyRingError as exc:
        raise HTTPException(409, str(exc)) from exc
    return ring.describe()

