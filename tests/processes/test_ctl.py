"""`gossip-ctl` against a running cluster of real node processes: each command, its
readable and --json output, and its exit status when it fails."""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from node.tools import ctl
from node.tools.local_cluster import LocalCluster, free_ports
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ctl-test-token"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(2, interval=0.1, env={"GOSSIP_API_TOKEN": TOKEN}) as c:
        yield c


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOSSIP_API_TOKEN", TOKEN)
    monkeypatch.delenv("GOSSIP_NODE", raising=False)


def run(*argv: str, transport: httpx.BaseTransport | None = None) -> tuple[int, str]:
    """gossip-ctl's exit status and what it printed on stdout."""
    out = io.StringIO()
    return ctl.main(argv, out, transport), out.getvalue()


def test_members_aligned_and_as_json(cluster: LocalCluster) -> None:
    status, text = run("--node", cluster.urls[0], "members")
    assert status == 0
    header, *rows = text.splitlines()
    assert header.split() == ["ID", "ADDRESS", "STATUS", "PHI", "LAST", "HEARD"]
    listed = [[n, u, "alive"] for n, u in zip(cluster.ids, cluster.urls, strict=True)]
    assert [row.split()[:3] for row in rows] == listed
    for column in ("ADDRESS", "STATUS", "PHI"):  # every row's cell starts under its heading
        at = header.index(column)
        assert all(row[at - 1] == " " and row[at] != " " for row in rows), text
    assert rows[0].endswith("(this node)")

    status, text = run("--node", cluster.urls[1], "--json", "members")
    assert status == 0
    assert sorted(m["id"] for m in json.loads(text)["members"]) == cluster.ids


def test_set_through_one_node_get_through_another_then_delete(cluster: LocalCluster) -> None:
    n1, n2 = cluster.urls
    status, text = run("--node", n1, "set", "ctl:color", '{"rgb": [0, 0, 255]}')
    assert (status, text.splitlines()[0]) == (0, 'ctl:color = {"rgb": [0, 0, 255]}')
    assert "written by n1 at " in text

    def on_n2() -> bool:
        return run("--node", n2, "--json", "get", "ctl:color")[0] == 0

    wait_until(on_n2, 10, "the write to reach n2")
    status, text = run("--node", n2, "--json", "get", "ctl:color")
    entry = json.loads(text)
    assert (entry["value"], entry["node"], entry["deleted"]) == ({"rgb": [0, 0, 255]}, "n1", False)

    assert run("--node", n2, "--json", "set", "ctl:word", "blue")[0] == 0  # not JSON: a string
    assert run("--node", n2, "--json", "set", "ctl:answer", "42")[0] == 0  # JSON: a number
    assert run("--node", n2, "--json", "set", "ctl:text", "42", "--string", "--ttl", "60")[0] == 0
    values = httpx.get(n2 + "/get").json()["values"]
    assert (values["ctl:word"], values["ctl:answer"], values["ctl:text"]) == ("blue", 42, "42")

    status, text = run("--node", n2, "delete", "ctl:color")
    assert (status, text.splitlines()[0]) == (0, "ctl:color deleted")
    wait_until(lambda: run("--node", n1, "get", "ctl:color")[0] == 1, 10, "the delete to reach n1")


def test_health(cluster: LocalCluster) -> None:
    status, text = run("--node", cluster.urls[0], "health")
    assert (status, text.splitlines()[0]) == (0, "n1: ok")
    status, text = run("--node", cluster.urls[0], "--json", "health")
    assert (status, json.loads(text)["status"]) == (0, "ok")


def test_failures_exit_non_zero_with_the_nodes_message(
    cluster: LocalCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    n1 = cluster.urls[0]
    assert run("--node", n1, "get", "ctl:never-written") == (ctl.REFUSED, "")
    assert "404" in (err := capsys.readouterr().err) and "'ctl:never-written' not found" in err

    monkeypatch.delenv("GOSSIP_API_TOKEN")
    assert run("--node", n1, "set", "ctl:k", "v") == (ctl.REFUSED, "")
    assert "401" in (err := capsys.readouterr().err) and "missing bearer token" in err
    monkeypatch.setenv("GOSSIP_API_TOKEN", "wrong")
    assert run("--node", n1, "delete", "ctl:k") == (ctl.REFUSED, "")
    assert "401" in (err := capsys.readouterr().err) and "valid bearer token" in err
    monkeypatch.setenv("GOSSIP_API_TOKEN", TOKEN)
    assert run("--node", n1, "set", "ctl:k", "v", "--ttl", "-1") == (ctl.REFUSED, "")
    assert "422" in (err := capsys.readouterr().err) and "ttl: Input should be greater than 0" in err

    nobody = f"http://127.0.0.1:{free_ports(1)[0]}"
    for command in (["members"], ["get", "k"], ["set", "k", "1"], ["delete", "k"], ["health"], ["watch"]):
        assert run("--node", nobody, *command) == (ctl.UNREACHABLE, ""), command
        assert f"cannot reach {nobody}" in capsys.readouterr().err

    for bad in (["set", "only-a-key"], ["get"], ["frobnicate"], ["--timeout", "soon", "members"]):
        with pytest.raises(SystemExit) as exited:
            run("--node", n1, *bad)
        assert exited.value.code == ctl.USAGE, bad


def test_help_says_how_value_is_read(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run("set", "--help")
    assert exited.value.code == 0
    assert "VALUE is parsed as JSON if it parses" in " ".join(capsys.readouterr().out.split())


def test_a_dropped_watch_exits_non_zero_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    """The node cuts a consumer that falls behind: the last event says why."""
    stream = (b": watching\n\nevent: change\ndata: {\"key\": \"a\", \"value\": 1, \"timestamp\": [1000, 0], "
              b"\"node\": \"n9\", \"deleted\": false, \"expires_at\": null}\n\n"
              b"event: dropped\ndata: {\"reason\": \"fell behind\"}\n\n")
    node = httpx.MockTransport(lambda request: httpx.Response(200, content=stream))
    status, text = run("watch", "a", transport=node)
    assert status == ctl.REFUSED
    assert text == "1970-01-01 00:00:01.000 UTC  n9  a = 1\n"
    assert "the node cut the watch: fell behind" in capsys.readouterr().err


def test_watch_prints_each_change_under_the_prefix(cluster: LocalCluster) -> None:
    """The command as a user runs it, in a process of its own, told its node by $GOSSIP_NODE."""
    n1, n2 = cluster.urls
    watcher = subprocess.Popen([sys.executable, "-m", "node.tools.ctl", "watch", "ctl:w/"], cwd=ROOT,
                               env={**os.environ, "GOSSIP_NODE": n1},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    ready = threading.Event()

    def read() -> None:
        for line in watcher.stdout or ():
            if "ctl:w/ready" in line:
                ready.set()
            else:
                lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    try:
        with httpx.Client(timeout=5, headers={"authorization": f"Bearer {TOKEN}"}) as client:
            tries = iter(range(1000))

            def watching() -> bool:  # the stream is open once a write shows up in it
                client.post(n2 + "/set", json={"key": "ctl:w/ready", "value": next(tries)})
                return ready.is_set()

            wait_until(watching, 20, "the watch to show a write")
            # (one step at a time: a write and a delete in quick succession may spread as the delete alone)
            for path, body, shown in (
                ("/set", {"key": "ctl:elsewhere", "value": 1}, None),  # not under the prefix: not shown
                ("/set", {"key": "ctl:w/a", "value": {"x": 1}}, '  n2  ctl:w/a = {"x": 1}'),
                ("/delete", {"key": "ctl:w/a"}, "  n2  ctl:w/a deleted"),
            ):
                assert client.post(n2 + path, json=body).status_code == 200
                if shown is not None:
                    line = lines.get(timeout=10)
                    assert line.endswith(shown), line
        watcher.send_signal(signal.SIGINT)  # Ctrl-C
        assert watcher.wait(10) == 130
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        for stream in (watcher.stdout, watcher.stderr):
            if stream is not None:
                stream.close()


def test_health_of_a_node_cut_off_exits_non_zero(
    cluster: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """Last: it stops n2, so n1 is left with no member to reach."""
    cluster.kill("n2")
    wait_until(lambda: run("--node", cluster.urls[0], "health")[0] != 0, 20, "n1 to report itself unhealthy")
    status, text = run("--node", cluster.urls[0], "health")
    err = capsys.readouterr().err
    assert status == ctl.REFUSED and "gossip-ctl: 503 from" in err, err
    assert text.startswith("n1: ") and not text.startswith("n1: ok"), text


def test_the_tool_loads_no_web_framework_and_the_package_names_still_resolve() -> None:
    """gossip-ctl needs httpx alone, and only once it has a command to send: importing it
    and building its parser load neither FastAPI nor the node's server nor httpx; every
    name `node` exports is still there on first use."""
    probe = (
        "import sys, node.tools.ctl\n"
        "node.tools.ctl.parser().format_help()\n"
        "heavy = ('fastapi', 'starlette', 'uvicorn', 'node.state', 'httpx')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "import node\n"
        "missing = [n for n in node.__all__ if getattr(node, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert node.SharedState.__module__ == 'node.state'\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
