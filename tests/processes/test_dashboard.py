"""The dashboard (GET /ui) in a real headless browser, against real node processes: it
asks for the token where reads need one, lists every member, and shows a write made
through another node as it arrives (through /watch, and by polling /get)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from node.tools.local_cluster import LocalCluster
from scripts.headless import Chromium, find_browser

pytestmark = pytest.mark.skipif(
    find_browser() is None,
    reason="no chromium: scripts/install-test-deps.sh installs it (needs root and apt-get)",
)

TOKEN = "dashboard-test-token"
FEED = "document.getElementById('feed').textContent"
MEMBERS = "[...document.querySelectorAll('#members tbody tr')].map(r => [...r.cells].map(c => c.textContent))"


def change(key: str) -> str:
    """JavaScript: [value, written by] of the newest change row for `key`, or null."""
    return (f"(r => r && [r.cells[2].textContent, r.cells[3].textContent])"
            f"(document.querySelector('#changes tbody tr[data-key={json.dumps(key)}]'))")


def test_dashboard_lists_the_members_and_shows_writes_made_through_another_node() -> None:
    env = {"GOSSIP_API_TOKEN": TOKEN, "GOSSIP_PROTECT_READS": "on"}
    writer = httpx.Client(timeout=5, headers={"authorization": f"Bearer {TOKEN}"})
    with (
        LocalCluster(3, interval=0.1, env=env) as cluster,
        Chromium(cluster.urls[0] + "/ui") as browser,
        writer,
    ):
        # Reads need the token here: the page asks for it and shows nothing else.
        browser.wait_for("!document.getElementById('login').hidden", what="the token form")
        assert browser.evaluate("document.getElementById('panels').hidden") is True
        browser.evaluate(f"document.getElementById('token').value = {json.dumps(TOKEN)}; "
                         "document.getElementById('login').requestSubmit(); true")

        all_alive = f"(m => m.length === 3 && m.every(r => r[2] === 'alive') && m)({MEMBERS})"
        members = browser.wait_for(all_alive, what="three alive members")
        shown = [["n1 (this node)", cluster.urls[0]], ["n2", cluster.urls[1]], ["n3", cluster.urls[2]]]
        assert [m[:2] for m in members] == shown
        browser.wait_for(f"{FEED} === '/watch (live)'", what="the page to follow /watch")

        key = f"dashboard-{uuid.uuid4().hex[:8]}"
        assert (
            writer.post(cluster.urls[1] + "/set", json={"key": key, "value": {"seen": True}}).status_code
            == 200
        )
        assert browser.wait_for(change(key), what=f"{key} in the changes") == ['{"seen":true}', "n2"]
        assert browser.evaluate(f"!!document.querySelector('#key-list tr[data-key={json.dumps(key)}]')")

        # Where /watch is not used, the page polls /get; the token may come in the address.
        browser.navigate(cluster.urls[0] + f"/ui?changes=poll&token={TOKEN}")
        browser.wait_for(f"{FEED} === 'polling /get'", what="the page to poll")
        assert "token" not in browser.evaluate("location.href")
        browser.wait_for(f"({MEMBERS}).length === 3", what="the members again")
        polled = f"polled-{uuid.uuid4().hex[:8]}"
        assert writer.post(cluster.urls[2] + "/set", json={"key": polled, "value": 7}).status_code == 200
        assert browser.wait_for(change(polled), what=f"{polled} in the changes") == ["7", "n3"]
