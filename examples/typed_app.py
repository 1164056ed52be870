"""A typed user app: notes shared by every worker and host, next to the node's own routes.

    uvicorn examples.typed_app:app --workers 2 --port 8000
    curl -X PUT localhost:8000/notes/todo -H 'content-type: application/json' -d '{"text": "ship"}'
    curl localhost:8000/notes/todo      # from any worker
    curl localhost:8000/get             # the node's routes, from node.router

The package ships py.typed markers, so `mypy --strict` checks this file, and its test
(tests/project/test_typed_app.py), against the installed package's hints.
"""

from typing import Annotated

from fastapi import FastAPI, HTTPException, Path
from pydantic import BaseModel, Field, ValidationError

import node
from node import SharedState, StateDep, shared_state_lifespan
from node.openapi import method_not_allowed

app = FastAPI(title="shared notes", version="1.0", lifespan=shared_state_lifespan())
app.include_router(node.router)  # /get, /set, /delete, /members, ... of this worker's node
app.add_exception_handler(405, method_not_allowed)  # Allow: every method of a path, not one route's

PREFIX = "note:"
# A slug: ASCII, so 60 characters are 60 bytes, and the key stays within a key's 256.
Name = Annotated[str, Path(pattern="^[A-Za-z0-9_-]{1,60}$", description="letters, digits, _ and -")]


class Note(BaseModel):
    text: str = Field(max_length=1000)


class Notes(BaseModel):
    names: list[str]


class Problem(BaseModel):
    detail: str


def read_note(state: SharedState, name: str) -> Note | None:
    """The note called `name`, if there is one (a value of another shape is not a note)."""
    try:
        return Note.model_validate(state.get(PREFIX + name))
    except ValidationError:
        return None


@app.put("/notes/{name}", responses={400: {"model": Problem, "description": "the body is not UTF-8 JSON"}})
def put_note(name: Name, note: Note, state: StateDep) -> Note:
    """Write a note; it reaches every worker and host."""
    state.set(PREFIX + name, note.model_dump())
    return note


@app.get("/notes/{name}", responses={404: {"model": Problem, "description": "no such note"}})
def get_note(name: Name, state: StateDep) -> Note:
    """Read a note from this worker's copy of the state (no network)."""
    note = read_note(state, name)
    if note is None:
        raise HTTPException(404, f"no note named {name!r}")
    return note


@app.get("/notes")
def list_notes(state: StateDep) -> Notes:
    return Notes(names=sorted(key.removeprefix(PREFIX) for key in state if key.startswith(PREFIX)))
