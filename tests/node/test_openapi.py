"""Each node's OpenAPI schema states its own limits (node.web.openapi): the key bounds and body
size of its Config, not the defaults; and installing it again (a restarted lifespan)
restates the schema for the new settings instead of stacking on the old one.
(tests/processes/test_schemathesis.py checks the credentials against live nodes.)"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from gossip.config import Config
from node import router
from node.server.settings import Settings
from node.web import openapi
from node.web.app import create_app

CONFIG = Config.for_tests(max_key_bytes=40, max_value_bytes=8_000, max_body_bytes=900_000,
                          delta_budget_bytes=80_000, max_members_per_message=64)


def body_of(spec: dict[str, Any], path: str) -> dict[str, Any]:
    ref = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return spec["components"]["schemas"][ref.rpartition("/")[2]]  # type: ignore[no-any-return]


def test_the_schema_states_the_limits_of_the_nodes_own_config() -> None:
    spec = create_app(Settings(node_id="n", discovery_dir="off", config=CONFIG)).openapi()
    for path in ("/set", "/delete"):
        key = body_of(spec, path)["properties"]["key"]
        assert (key["minLength"], key["maxLength"]) == (1, 40) and "40 bytes as UTF-8" in key["description"]
        assert key["not"] == {"pattern": "^_gossip/"}
        operation = spec["paths"][path]["post"]
        assert "900000 bytes" in operation["requestBody"]["description"]
        assert "900000" in operation["responses"]["413"]["description"]
    assert "8000 bytes" in body_of(spec, "/set")["properties"]["value"]["description"]


def test_installing_again_restates_the_schema_for_the_new_settings() -> None:
    app = FastAPI()
    app.include_router(router)
    openapi.install(app, Settings(node_id="n", discovery_dir="off", api_token="t"))
    assert app.openapi()["paths"]["/set"]["post"]["security"] == [{openapi.SCHEME: []}]
    openapi.install(app, Settings(node_id="n", discovery_dir="off"))  # restarted without a token
    spec = app.openapi()
    assert "security" not in spec["paths"]["/set"]["post"]
    assert "401" not in spec["paths"]["/set"]["post"]["responses"]
    assert "securitySchemes" not in spec.get("components", {})
