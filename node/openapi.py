"""`node.openapi`, the path the examples give: each node's OpenAPI schema, and
`method_not_allowed` (the code: node/web/openapi.py)."""

from node.web.openapi import *  # noqa: F403
