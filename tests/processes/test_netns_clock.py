"""A node whose clock runs beyond max_offset ahead of the cluster's acknowledges no write,
from its first second (real processes on three "hosts", network namespaces, see netns.py;
the skew with Debian's faketime). Healthy nodes n1 and n2 on hosts 1 and 2; max_offset 2 s.

a. n5 started on host 3 with its clock 4 s ahead: every write it answers gets 503, from the
   first on, until it is restarted with the true clock; then it takes writes.
b. n5 and n6, both on host 3, both 4 s ahead: a same-host sibling does not vouch for the
   clock (it shares it): every write to either gets 503.
c. n5 restarted with the true clock and a data directory written while its clock ran 8 s
   ahead (it took a write then, with --accept-writes-when-refused on): its hybrid logical
   clock restored ahead of the wall clock, writes wait (503, saying so), then are taken.

And no write a node acknowledged is refused by the others: each acknowledged write's
timestamp is within max_offset of the true time it was acknowledged at (the other nodes'
clocks are true), and it reaches every node. Needs root, `ip` and `faketime`
(scripts/install-test-deps.sh); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.netns import Hosts, skewable_hosts, skewed_clock, start_node, stop_node
from tests.polling import wait_until

INTERVAL = 0.2
MAX_OFFSET = 2.0
NETWORK = "10.77.1.0/24"
HOSTS = {"n1": (1, 7401), "n2": (2, 7402), "n5": (3, 7405), "n6": (3, 7406)}
# Deadlines of the polls (they end as soon as the condition holds): one that includes a
# node's start (a Python process importing FastAPI, on a machine that may be busy), and
# one for gossip between running nodes.
STARTING = 60.0
RUNNING = 30.0


@dataclass
class Fleet:
    hosts: Hosts
    logs: Path
    cluster_id: str = field(default_factory=lambda: f"clock-{uuid.uuid4().hex[:6]}")
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=3))

    def start(self, node_id: str, *args: str, ahead: float = 0.0) -> None:
        assert node_id not in self.procs, f"{node_id} runs already"
        host, port = HOSTS[node_id]
        seed = [] if node_id == "n1" else ["--seeds", f"http://{self.hosts.cluster_ip(1)}:{HOSTS['n1'][1]}"]
        node_args = [
            "--host", "0.0.0.0", "--port", str(port), "--node-id", node_id,
            "--advertise", f"http://{self.hosts.cluster_ip(host)}:{port}", "--cluster-id", self.cluster_id,
            "--interval", str(INTERVAL), "--max-offset", str(MAX_OFFSET), "--allow", NETWORK, *seed, *args,
        ]
        self.procs[node_id] = start_node(self.hosts.ns(host), node_args, self.logs / f"{node_id}.log",
                                         env=skewed_clock(ahead) if ahead else None)

    def stop(self, node_id: str) -> None:
        """SIGTERM the node's process group: it leaves and saves its data directory; SIGKILL
        if it outlives the deadline."""
        stop_node(self.procs.pop(node_id))

    def url(self, node_id: str) -> str:
        host, port = HOSTS[node_id]
        return f"http://{self.hosts.admin_ip(host)}:{port}"

    def get(self, node_id: str, path: str, **params: str) -> tuple[int, Any]:
        try:
            response = self.client.get(self.url(node_id) + path, params=params)
        except httpx.HTTPError:
            return 0, None
        return response.status_code, response.json()

    def write(self, node_id: str, key: str, value: object) -> Answer | None:
        """POST /set; None if the node did not answer (not serving yet)."""
        try:
            response = self.client.post(self.url(node_id) + "/set", json={"key": key, "value": value})
        except httpx.HTTPError:
            return None
        return Answer(node_id, key, value, response.status_code, response.json(), time.time())


@dataclass(frozen=True)
class Answer:
    node: str
    key: str
    value: object
    status: int
    body: dict[str, Any]
    at: float  # the true time the answer came (this process runs on the true clock)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with skewable_hosts(3) as hosts:
        fleet = Fleet(hosts, tmp_path_factory.mktemp("netns-clock"))
        try:
            fleet.start("n1")
            fleet.start("n2")
            wait_until(lambda: healthy(fleet, "n1") and healthy(fleet, "n2"), timeout=STARTING,
                       what="n1 and n2 to be in the cluster")
            yield fleet
        finally:
            for node_id in list(fleet.procs):
                fleet.stop(node_id)
            fleet.client.close()


@pytest.fixture
def skewed_host(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet; whatever a test started on host 3 is stopped after it, pass or fail."""
    try:
        yield fleet
    finally:
        for node_id in ("n5", "n6"):
            if node_id in fleet.procs:
                fleet.stop(node_id)


def healthy(fleet: Fleet, node_id: str) -> bool:
    code, body = fleet.get(node_id, "/health")
    return code == 200 and "alone" not in body


def refused_until_judged(fleet: Fleet, nodes: tuple[str, ...], key: str) -> list[Answer]:
    """Write to each of `nodes` from the moment it starts until its /health names its
    clock, then three writes more each: every answer (none while it does not serve yet)."""
    answers: list[Answer] = []
    judged: set[str] = set()

    def write_all() -> None:
        for node_id in nodes:
            if (answer := fleet.write(node_id, f"{key}-{len(answers)}", len(answers))) is not None:
                answers.append(answer)

    def judged_all() -> bool:
        write_all()
        for node_id in nodes:
            code, body = fleet.get(node_id, "/health")
            if code == 503 and "clock_ahead" in str(body):
                judged.add(node_id)
        return judged == set(nodes)

    wait_until(judged_all, timeout=STARTING, what=f"clock_ahead on {nodes}",
               detail=lambda: (judged, answers[-2:]))
    for _ in range(3):
        write_all()
    return answers


def first_answer(fleet: Fleet, node_id: str, key: str, value: object) -> Answer:
    """Write until the node (just started) answers; its answer."""
    found: list[Answer] = []

    def answered() -> bool:
        answer = fleet.write(node_id, key, value)
        found[:] = [answer] if answer is not None else []
        return bool(found)

    wait_until(answered, timeout=STARTING, what=f"{node_id} to answer a write")
    return found[0]


def acknowledged(answers: list[Answer]) -> list[Answer]:
    return [a for a in answers if a.status == 200]


def assert_takeable(fleet: Fleet, answers: list[Answer]) -> None:
    """Every acknowledged write is one the others take: its timestamp within max_offset of
    the true time it was acknowledged at, and on every running node, same value."""
    for a in acknowledged(answers):
        wall_ms = a.body["timestamp"][0]
        assert wall_ms <= (a.at + MAX_OFFSET) * 1000, f"{a.key} on {a.node}: {wall_ms / 1000 - a.at:+.2f} s"
    for node_id in list(fleet.procs):
        for a in acknowledged(answers):
            wait_until(lambda a=a, node_id=node_id: holds(fleet, node_id, a),
                       timeout=RUNNING, what=f"{a.key} (acknowledged by {a.node}) to reach {node_id}")


def holds(fleet: Fleet, node_id: str, a: Answer) -> bool:
    """Whether the node reads the acknowledged value (a 404 until the write reaches it)."""
    code, body = fleet.get(node_id, "/get", key=a.key)
    return code == 200 and body is not None and body.get("value") == a.value


def clock_problem(fleet: Fleet, node_id: str) -> dict[str, Any]:
    """n5's clock_ahead problem, once it names both other hosts' nodes."""
    found: list[dict[str, Any]] = []

    def both_hosts() -> bool:
        code, body = fleet.get(node_id, "/health")
        assert code == 503 and body["accepting_writes"] is False, body
        found[:] = [p for p in body["problems"] if p["problem"] == "clock_ahead"]
        return len(found) == 1 and {p["host"] for p in found[0]["peers"]} == {"10.77.1.1", "10.77.1.2"}

    wait_until(both_hosts, timeout=RUNNING, what=f"{node_id} to measure both other hosts",
               detail=lambda: found)
    return found[0]


def test_a_node_started_ahead_alone_on_its_host_takes_no_write(skewed_host: Fleet) -> None:
    fleet = skewed_host
    fleet.start("n5", ahead=4)
    answers = refused_until_judged(fleet, ("n5",), "a")
    assert answers and {a.status for a in answers} == {503}, answers[:3]  # from the first answer on
    detail = answers[-1].body["detail"]
    assert "max_offset (2 s)" in detail and "fix this host's clock" in detail, detail
    problem = clock_problem(fleet, "n5")
    measured = re.search(r"our clock runs (\d+\.\d+) s ahead of the cluster's", problem["detail"])
    assert measured and 3.8 < float(measured[1]) < 4.3, problem
    offsets = {p["host"]: p["clock_offset_seconds"] for p in problem["peers"]}
    assert set(offsets) == {"10.77.1.1", "10.77.1.2"} and all(-4.3 < o < -3.7 for o in offsets.values())
    # The healthy nodes take writes meanwhile.
    beside = [fleet.write(n, f"a-beside-{n}", n) for n in ("n1", "n2")]
    assert all(b is not None and b.status == 200 for b in beside), beside
    # The clock fixed: restarted on the true clock, n5 takes writes.
    fleet.stop("n5")
    fleet.start("n5")
    fixed = first_answer(fleet, "n5", "a-fixed", "fixed")
    assert fixed.status == 200, fixed  # (after the first comparison, which the write waits for)
    assert_takeable(fleet, [fixed, *(b for b in beside if b is not None)])
    wait_until(lambda: healthy(fleet, "n5"), timeout=STARTING, what="n5 to answer /health 200")


def test_a_same_host_sibling_does_not_vouch_for_the_clock(skewed_host: Fleet) -> None:
    fleet = skewed_host
    fleet.start("n5", ahead=4)
    fleet.start("n6", ahead=4)
    answers = refused_until_judged(fleet, ("n5", "n6"), "b")
    assert {a.node for a in answers} == {"n5", "n6"} and {a.status for a in answers} == {503}, answers[:3]
    for node_id in ("n5", "n6"):  # each measured both other hosts (and not its sibling, on 10.77.1.3)
        problem = clock_problem(fleet, node_id)
        assert all(p["host"] != "10.77.1.3" for p in problem["peers"]), problem


def test_a_clock_restored_ahead_from_the_data_directory_holds_writes_until_caught_up(
    skewed_host: Fleet, tmp_path: Path
) -> None:
    fleet = skewed_host
    data = tmp_path / "n5"
    # Written while the clock ran 8 s ahead (taken only because of the escape hatch).
    fleet.start("n5", "--data-dir", str(data), "--accept-writes-when-refused", "on", ahead=8)
    taken = first_answer(fleet, "n5", "c-skewed", "skewed")
    assert taken.status == 200 and taken.body["timestamp"][0] / 1000 - taken.at > 7, taken
    fleet.stop("n5")  # (it saves its data directory on the way out)
    saved = json.loads((data / "snapshot.json").read_bytes())
    assert saved["clock"][0] / 1000 - time.time() > MAX_OFFSET, saved["clock"]  # the HLC, ahead

    fleet.start("n5", "--data-dir", str(data))  # the true clock, the restored HLC ahead of it
    answers: list[Answer] = []
    problems: list[dict[str, Any]] = []

    def taken_at_last() -> bool:
        if (answer := fleet.write("n5", f"c-{len(answers)}", len(answers))) is not None:
            answers.append(answer)
        code, body = fleet.get("n5", "/health")
        if code == 503:
            problems.extend(p for p in body["problems"] if p["problem"] == "hlc_ahead")
        return bool(answers) and answers[-1].status == 200

    wait_until(taken_at_last, timeout=STARTING, what="n5 to take writes", detail=lambda: answers[-1:])
    answers += [a for i in range(5) if (a := fleet.write("n5", f"c-after-{i}", i)) is not None]
    first = next(i for i, a in enumerate(answers) if a.status == 200)
    refused = answers[:first]
    assert refused, answers[:1]  # it waited, from the first write on
    assert {a.status for a in refused} == {503} and {a.status for a in answers[first:]} == {200}, answers
    restored = [a for a in refused if "restored from the data directory" in a.body["detail"]]
    assert restored and all(a in restored or "not compared its clock" in a.body["detail"] for a in refused)
    assert problems and "restored from the data directory" in problems[0]["detail"], problems[:1]
    assert "writes wait about" in problems[0]["detail"], problems[0]
    details = [p["detail"] for p in problems] + [a.body["detail"] for a in refused]
    assert not any(re.search(r"-0\.0+ s", d) for d in details), details  # a real offset, each time
    # Every write it took is one the others take.
    assert_takeable(fleet, answers)
