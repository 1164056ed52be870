"""`node.testing`, the path the README gives: clusters for tests, in-process nodes and
`UvicornWorkers` (the code: node/tools/testing.py)."""

from node.tools.testing import *  # noqa: F403
