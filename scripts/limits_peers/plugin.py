"""The pytest plugin the peers' suites run with (`-p scripts.limits_peers.plugin`): it points
them at `gossip://`, gives each test a node of its own, marks the listed differences, and
shims two things in the suites' surroundings that are not about the storage.

- Storage: `limits`' tests are parametrized by storage URI: every such parametrization is
  replaced by one, `gossip://` (and the storage class it must build). slowapi's limiters
  default to `memory://`: RATELIMIT_STORAGE_URL, slowapi's own setting, makes it `gossip://`.
- A node per test: a real node (its gossip loops running in a thread of their own) that
  every `gossip://` storage of the test counts on (node.web.limits_storage.counting_on), as
  each test of the suites builds fresh storages and expects fresh counts.
- Shims: Starlette 1.0 removed `@app.route`, which slowapi's tests use (added back as the
  plain add_route it was); and hiro, the time-freezing library slowapi's tests use, makes
  `time.time_ns()` return a float while frozen (wrapped to return it as an int, as the
  real one does: the storage refuses a float clock, loudly).
"""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import node.web.limits_storage
from node.tools.testing import node_in_thread
from node.web.limits_storage import GossipStorage, counting_on

DIFFERENCES = Path(__file__).with_name("differences.toml")
MARKERS = ["flaky", "unit", "integration", "benchmark", "memory", "redis", "redis_sentinel", "redis_cluster",
           "mongodb", "memcached", "valkey", "valkey_cluster"]


def load_differences(suite: str) -> dict[str, dict[str, str]]:
    """The listed tests of `suite`, by pytest node id (with our parametrization's ids)."""
    listed = tomllib.loads(DIFFERENCES.read_text())["test"]
    return {t["id"]: t for t in listed if t["suite"] == suite}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--peer-suite", required=True, choices=["limits", "slowapi"])


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", f"{marker}: a marker of the peers' suites")
    os.environ["RATELIMIT_STORAGE_URL"] = node.web.limits_storage.URI
    _shim_starlette_route()
    _shim_hiro_time_ns()


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Point each storage parametrization at `gossip://` before the tests are generated."""
    marks = getattr(obj, "pytestmark", None)
    if isinstance(marks, list):
        obj.pytestmark = [_to_gossip(mark) for mark in marks]  # type: ignore[attr-defined]


def _to_gossip(mark: pytest.Mark) -> pytest.Mark:
    if mark.name != "parametrize" or not str(mark.args[0]).replace(" ", "").startswith("uri,args,"):
        return mark
    names = [n.strip() for n in str(mark.args[0]).split(",")]
    values: dict[str, object] = {"uri": node.web.limits_storage.URI, "args": {}, "fixture": None,
                                 "expected_instance": GossipStorage}
    gossip = pytest.param(*(values[n] for n in names), id="gossip")
    return pytest.mark.parametrize(mark.args[0], [gossip]).mark


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    listed = load_differences(config.getoption("--peer-suite"))
    unknown = set(listed) - {item.nodeid for item in items}
    if unknown:
        raise pytest.UsageError(f"{DIFFERENCES.name} lists tests this suite does not have: {sorted(unknown)}")
    for item in items:
        entry = listed.get(item.nodeid)
        if entry is None:
            continue
        if entry["expect"] not in ("fail", "any"):
            raise pytest.UsageError(f"{DIFFERENCES.name}: {item.nodeid}: expect must be 'fail' or 'any'")
        reason = f"by design ({entry['kind']}): {entry['reason']}"
        item.add_marker(pytest.mark.xfail(reason=reason, strict=entry["expect"] == "fail"))


@pytest.fixture(autouse=True)
def _gossip_node() -> Iterator[None]:
    """A running node of its own for each test, the one its `gossip://` storages count on."""
    with node_in_thread() as state, counting_on(state):
        yield


def _shim_starlette_route() -> None:
    from starlette.applications import Starlette

    if hasattr(Starlette, "route"):
        return

    def route(self: Starlette, path: str, methods: list[str] | None = None, name: str | None = None,
              include_in_schema: bool = True) -> Callable[[Any], Any]:
        def decorator(func: Any) -> Any:
            self.add_route(path, func, methods=methods, name=name, include_in_schema=include_in_schema)
            return func

        return decorator

    Starlette.route = route  # type: ignore[attr-defined]


def _shim_hiro_time_ns() -> None:
    try:
        import hiro
    except ImportError:
        return
    enter = hiro.Timeline.__enter__

    def entered(self: Any) -> Any:
        timeline = enter(self)
        patched = time.time_ns  # hiro's, which returns a float while frozen
        whole = mock.patch("time.time_ns", lambda: int(patched()))
        whole.start()
        self.patchers.insert(0, whole)  # (stopped first, so hiro's own stop restores the real one)
        return timeline

    hiro.Timeline.__enter__ = entered
