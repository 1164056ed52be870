"""`node.jobs`, the path the README gives: run-once jobs (the code: node/recipes/jobs.py)."""

from node.recipes.jobs import *  # noqa: F403
