"""`node.watch`, the path the examples give: change streams (the code: node/recipes/watch.py)."""

from node.recipes.watch import *  # noqa: F403
