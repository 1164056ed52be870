"""`node.pytest_plugin`, the path the README gives (`pytest_plugins = ["node.pytest_plugin"]`
in a conftest.py): the fixtures gossip_cluster and gossip_processes (the code:
node/tools/pytest_plugin.py)."""

from node.tools.pytest_plugin import *  # noqa: F403
