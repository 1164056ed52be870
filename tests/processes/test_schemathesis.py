"""Schemathesis with every check on, against live processes over real HTTP, in each
configuration that changes the schema: a node with no api token (open), with one (writes
and admin routes need it), with protected reads (reads need it too), and a user's app that
embeds `node.router` (examples/typed_app.py under uvicorn, with an api token: its schema
learns the node's settings from the lifespan).

For every operation: the coverage phase's boundary cases and generated valid and invalid
requests, sent with the token where there is one. Every check runs (`st run -c all`),
ignored_auth included: it sends each request that needs the token again without it and
with a wrong one. One check is narrowed: positive_data_acceptance gives way to
accepts_valid_data, which also takes a 422 naming a rule JSON Schema cannot express
(RULES_IN_WORDS: byte lengths, a value's size and depth).

Excluded operations: GET /watch, a stream of Server-Sent Events that never ends, cannot be
checked as a request and its response.

`make test` runs a few examples per operation; `make fuzz` runs many (FUZZ_EXAMPLES).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import CheckContext
from schemathesis.specs.openapi.checks import positive_data_acceptance

from node.tools.local_cluster import LocalCluster
from node.tools.testing import UvicornWorkers

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
TOKEN = "schemathesis-token"
ROOT = Path(__file__).resolve().parents[2]

# Rules the schema states in words only: a request within everything the schema says may
# still break one, and gets a 422 naming it (positive_data_acceptance takes that answer).
RULES_IN_WORDS = {
    "bytes, the limit is": "a key's length in UTF-8 bytes (the schema bounds its characters)",
    "bytes as JSON, the limit is": "a value's size as JSON",
    "nests deeper than": "a value's nesting depth",
    "integers in a value must lie in": "integers inside a value fit in 64 bits",
    "numbers in a value must be finite": "numbers inside a value are finite",
}


@dataclass(frozen=True)
class Live:
    name: str
    url: str
    token: str = ""
    protect_reads: bool = False

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


Server = LocalCluster | UvicornWorkers
CONFIGS = ["open", "token", "protected-reads", "embedded"]


def server(name: str) -> tuple[Server, Live]:
    token = {"GOSSIP_API_TOKEN": TOKEN}
    if name == "embedded":
        app = UvicornWorkers("examples.typed_app:app", workers=1, env=token, cwd=ROOT)
        return app, Live(name, app.url, TOKEN)
    env = {"open": {}, "token": token, "protected-reads": {**token, "GOSSIP_PROTECT_READS": "on"}}[name]
    cluster = LocalCluster(nodes=1, env=env)
    return cluster, Live(name, cluster.urls[0], env.get("GOSSIP_API_TOKEN", ""), name == "protected-reads")


@pytest.fixture(scope="module")
def lives() -> Iterator[dict[str, Live]]:
    """Every configuration's server, started side by side (each start mostly waits)."""
    servers = [server(name) for name in CONFIGS]
    with contextlib.ExitStack() as stack:
        for each, _ in servers:
            stack.callback(each.stop)  # (stopping one never started is a no-op)
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(lambda each: each.start(), [each for each, _ in servers]))
        yield {live.name: live for _, live in servers}


@pytest.fixture(scope="module")
def runs(lives: dict[str, Live], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """`st run` against every configuration, side by side (each mostly waits on its server)."""
    started = {name: Run(live, tmp_path_factory.mktemp(name)) for name, live in lives.items()}
    try:
        yield started
    finally:
        for run in started.values():
            run.stop()


@pytest.fixture(params=CONFIGS)
def live(request: pytest.FixtureRequest, lives: dict[str, Live]) -> Live:
    return lives[request.param]


@pytest.fixture
def spec(live: Live) -> dict[str, Any]:
    return httpx.get(live.url + "/openapi.json", timeout=10).raise_for_status().json()  # type: ignore[no-any-return]


def test_the_schema_asks_for_the_token_where_the_node_does(live: Live, spec: dict[str, Any]) -> None:
    """Each operation declares the bearer token (and its 401) exactly when the node refuses
    it without one; and which those are follows the configuration."""
    secured = set()
    with httpx.Client(base_url=live.url, timeout=10) as client:
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                declared = "security" in operation
                assert declared == ("401" in operation["responses"]), (method, path)
                url = re.sub(r"\{[^}]*\}", "x", path)
                with client.stream(method, url) as answer:  # (a stream: GET /watch never ends)
                    assert declared == (answer.status_code == 401), (method, path, answer.status_code)
                if declared:
                    secured.add((method, path))
    assert "/gossip" not in spec["paths"]  # (for peers only)
    assert (("post", "/set") in secured) == bool(live.token)
    assert (("get", "/get") in secured) == live.protect_reads
    assert ("securitySchemes" in spec.get("components", {})) == bool(secured)


@schemathesis.check
def accepts_valid_data(ctx: CheckContext, response: Any, case: Case[Any]) -> bool | None:
    """positive_data_acceptance, but for a 422 naming one of RULES_IN_WORDS."""
    if response.status_code == 422 and any(rule in response.text for rule in RULES_IN_WORDS):
        return None
    return positive_data_acceptance(ctx, response, case)


class Run:
    """`st run -c all`, as a user runs it, with this file as its hooks module (it registers
    accepts_valid_data, which stands in for positive_data_acceptance)."""

    def __init__(self, live: Live, cwd: Path) -> None:
        st = str(Path(sys.executable).parent / "st")
        command = [st, "run", live.url + "/openapi.json", "--checks", "all",
                   "--exclude-checks", "positive_data_acceptance", "--max-examples", str(EXAMPLES),
                   "--exclude-path", "/watch", "--generation-database", "none", "--no-color"]
        for name, value in live.headers.items():
            command += ["--header", f"{name}: {value}"]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.processes.test_schemathesis",
               "PYTHONPATH": str(ROOT)}
        self.log = cwd / "st.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)

    def result(self) -> tuple[int, str]:
        returncode = self.process.wait(timeout=300 + 10 * EXAMPLES)  # (make fuzz runs long)
        return returncode, self.log.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def test_every_check(live: Live, runs: dict[str, Run]) -> None:
    returncode, output = runs[live.name].result()
    print(f"{live.name}: {output.strip().splitlines()[-1]}")
    assert returncode == 0, output[-8000:]
