"""`node.limits_storage`, the path the README gives (`storage_uri=node.limits_storage.URI`):
the `limits` storage that counts in the shared state (the code: node/web/limits_storage.py)."""

from node.web.limits_storage import *  # noqa: F403
