"""Schemathesis against a live node process (real HTTP) with an api token: for every
operation in the node's OpenAPI spec, generated valid and invalid requests, with and
without credentials. No server errors, every response conforms to the spec (status code,
content type, body schema, headers), and without credentials every write and admin
request is refused with 401.

`make test` runs a few examples per operation; `FUZZ_EXAMPLES=500 make fuzz` runs long.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection, positive_data_acceptance

from node.cluster import LocalCluster

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
TOKEN = "schemathesis-token"
WRITES = ("/set", "/delete", "/admin")


@dataclass(frozen=True)
class Node:
    url: str
    operations: list[APIOperation]


def same_tuples_as_arrays(node: Any) -> Any:
    """`prefixItems` whose items all have one schema, as the equivalent `items`. Works around a
    schemathesis bug (4.32: it turns `prefixItems` into a list under `items` and then refuses
    the result as an invalid 2020-12 schema, failing every response with an entry's
    `timestamp: [wall, counter]`; upstream issues #3842 and #4099)."""
    if isinstance(node, list):
        return [same_tuples_as_arrays(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: same_tuples_as_arrays(v) for k, v in node.items()}
    prefix = out.get("prefixItems")
    if isinstance(prefix, list) and prefix and all(p == prefix[0] for p in prefix) and "items" not in out:
        out["items"] = out.pop("prefixItems")[0]
    return out


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    with LocalCluster(nodes=1, env={"GOSSIP_API_TOKEN": TOKEN}) as cluster:
        spec = httpx.get(cluster.urls[0] + "/openapi.json", timeout=10).raise_for_status().json()
        schema = schemathesis.openapi.from_dict(same_tuples_as_arrays(spec))
        operations = [result.ok() for result in schema.get_all_operations()]
        yield Node(cluster.urls[0], operations)


def is_write(operation: APIOperation) -> bool:
    return operation.path.startswith(WRITES)


def excluded(operation: APIOperation) -> list[CheckFunction]:
    # Schema-valid bodies can still break limits JSON Schema cannot state (a key's UTF-8
    # bytes, a value's size and depth): those get a documented 422, not a 2xx.
    checks: list[CheckFunction] = [positive_data_acceptance]
    if not is_write(operation):
        # Reads take the bearer token, so the spec lists it, but they are open unless the
        # node is started with protect_reads: answering them without a token is by design,
        # not an ignored credential nor an accepted invalid request.
        checks += [ignored_auth, negative_data_rejection]
    return checks


def unparsable(response: Any) -> bool:
    """A refusal of a body that is not JSON at all."""
    return (response.status_code == 400 and "parsing the body" in response.text) or (
        response.status_code == 422 and "json_invalid" in response.text
    )


def run(operation: APIOperation, mode: GenerationMode, check: Callable[[Case], None]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],  # a live node: no shrinking replays
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip
    def each(case: Case) -> None:
        check(case)

    each()


def test_the_spec_covers_the_api(node: Node) -> None:
    paths = {(op.method.upper(), op.path) for op in node.operations}
    assert {("POST", "/set"), ("GET", "/get"), ("POST", "/delete"), ("GET", "/digest"),
            ("POST", "/admin/keys")} <= paths  # fmt: skip
    assert not any(path == "/gossip" for _, path in paths)  # peers only, not in the spec


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_with_credentials(node: Node, mode: GenerationMode) -> None:
    def check(case: Case) -> None:
        response = case.call_and_validate(base_url=node.url, headers={"Authorization": f"Bearer {TOKEN}"},
                                          excluded_checks=excluded(case.operation), timeout=10)  # fmt: skip
        assert response.status_code < 500

    for operation in node.operations:
        run(operation, mode, check)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_without_credentials(node: Node, mode: GenerationMode) -> None:
    def check(case: Case) -> None:
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        response = case.call_and_validate(base_url=node.url, excluded_checks=excluded(case.operation),
                                          timeout=10)  # fmt: skip
        assert response.status_code < 500
        if is_write(case.operation):
            # FastAPI parses the body before it runs the token check, so a body that is not
            # JSON at all is refused as such (400 or 422 json_invalid); all else for the token.
            assert response.status_code == 401 or unparsable(response), (case.operation.path, response.text)

    for operation in node.operations:
        run(operation, mode, check)


def test_a_wrong_token_is_refused(node: Node) -> None:
    def check(case: Case) -> None:
        wrong = {"Authorization": "Bearer not-the-token"}
        response = case.call_and_validate(base_url=node.url, headers=wrong,
                                          excluded_checks=excluded(case.operation), timeout=10)  # fmt: skip
        if is_write(case.operation):
            assert response.status_code == 401 or unparsable(response), response.text  # as above

    for operation in node.operations:
        run(operation, GenerationMode.POSITIVE, check)
