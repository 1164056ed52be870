"""The import paths the README and the examples give users stay as they were when node/
was split into rooms: each is a one-line alias of the room's module, exposing the same
objects, and none of the project's own modules imports one (they import the rooms)."""

from __future__ import annotations

import importlib

import pytest

from tests.project.test_imports import project_graph

USER_PATHS = {
    "node.jobs": "node.recipes.jobs",  # README: node.jobs.current_tick()
    "node.watch": "node.recipes.watch",  # examples/watch_app.py: WatchDropped
    "node.openapi": "node.web.openapi",  # examples/typed_app.py: method_not_allowed
    "node.limits_storage": "node.web.limits_storage",  # README: storage_uri=node.limits_storage.URI
    "node.testing": "node.tools.testing",  # README: node.testing.UvicornWorkers
    "node.pytest_plugin": "node.tools.pytest_plugin",  # README: pytest_plugins = ["node.pytest_plugin"]
}


@pytest.mark.parametrize(("path", "home"), sorted(USER_PATHS.items()))
def test_a_user_path_is_its_rooms_module(path: str, home: str) -> None:
    assert project_graph()[path] == {home}
    kept, real = importlib.import_module(path), importlib.import_module(home)
    public = [name for name in vars(real) if not name.startswith("_")]
    missing = object()
    assert public and [n for n in public if getattr(kept, n, missing) is not getattr(real, n)] == []


def test_the_project_imports_the_rooms_not_the_user_paths() -> None:
    users = sorted(f"{m} imports {t}" for m, targets in project_graph().items() for t in targets
                   if t in USER_PATHS and m not in USER_PATHS)
    assert users == []
