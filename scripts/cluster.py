"""`python scripts/cluster.py` is the same launcher as `gossip-cluster` (node/tools/cluster.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.tools.cluster import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
