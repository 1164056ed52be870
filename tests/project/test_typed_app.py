"""The typed example app's own test, as a user would write it with the package's fixtures
(tests/project/test_typed_package.py also checks it with mypy --strict): a note written on one
node is read on every other, and a value of another shape under a note's key is no note."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from examples.typed_app import Note, get_note, list_notes, put_note, read_note
from node.testing import InProcessCluster

pytestmark = pytest.mark.anyio


async def test_a_note_written_on_one_node_is_read_on_every_node(gossip_cluster: InProcessCluster) -> None:
    put_note("todo", Note(text="ship it"), gossip_cluster.states[0])
    await gossip_cluster.converged()
    for state in gossip_cluster.states:
        assert get_note("todo", state) == Note(text="ship it")
        assert list_notes(state).names == ["todo"]


@pytest.mark.gossip_nodes(2)
async def test_a_value_of_another_shape_is_no_note(gossip_cluster: InProcessCluster) -> None:
    gossip_cluster.states[0].set("note:odd", [1, 2])
    await gossip_cluster.converged()
    assert read_note(gossip_cluster.states[1], "odd") is None
    with pytest.raises(HTTPException) as missing:
        get_note("odd", gossip_cluster.states[1])
    assert missing.value.status_code == 404
