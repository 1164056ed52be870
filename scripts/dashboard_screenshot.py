"""Take the README's picture of the dashboard: a 5-node cluster with a few keys, writes
arriving through several nodes, and one node killed, in headless Chromium.

    .venv/bin/python -m scripts.dashboard_screenshot            # -> docs/dashboard.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx

from node.tools.local_cluster import LocalCluster
from scripts.headless import Chromium

ROOT = Path(__file__).resolve().parent.parent
ROWS = "[...document.querySelectorAll('#members tbody tr')]"
WRITES = [
    ("flag:dark-mode", True), ("config:timeout_s", 30), ("service:search", {"url": "http://10.0.0.7:9200"}),
    ("busy:worker-3", "reindexing"), ("quota:acme", {"used": 812, "limit": 1000}), ("leader", "n2"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    out = parser.parse_args().out
    with LocalCluster(5, interval=0.2) as cluster, httpx.Client(timeout=5) as client:
        for i, (key, value) in enumerate(WRITES[:3]):
            client.post(cluster.urls[i] + "/set", json={"key": key, "value": value}).raise_for_status()
        with Chromium(cluster.urls[0] + "/ui", width=1280, height=900) as browser:
            browser.wait_for(f"{ROWS}.length === 5", what="the members")
            browser.wait_for("document.getElementById('feed').textContent === '/watch (live)'", what="/watch")
            cluster.kill("n5")
            for i, (key, value) in enumerate(WRITES[3:], start=1):
                client.post(cluster.urls[i] + "/set", json={"key": key, "value": value}).raise_for_status()
            client.post(cluster.urls[3] + "/delete", json={"key": "busy:worker-3"}).raise_for_status()
            browser.wait_for(f"{ROWS}.some(r => r.cells[2].textContent === 'dead')", what="n5 dead")
            browser.screenshot(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
