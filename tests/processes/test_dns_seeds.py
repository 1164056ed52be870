"""Seeds by DNS name: how specs parse and a lookup's answer replaces the last one's seeds
(in memory), then against a real DNS server: Debian's dnsmasq in a network namespace,
and real node processes beside it whose /etc/resolv.conf names it (`ip netns exec`
mounts /etc/netns/<ns>/resolv.conf over it). Every node has an address of its own on
10.78.0.0/24 and the same port, as pods do; the test's client reaches them over a veth
pair from the root namespace. One story, sharing the processes:

1. n1, seeded only by `dns:fleet...:8000`, which names n1 alone: it founds the cluster and
   says so. n2 and n3 added to the name and started with the same seed: all three meet.
2. n4, started with no seeds, added to the name: the others look the name up again and
   take it in, without a restart; taken out of the name, it leaves their seeds.
3. n5, seeded by `dns:srv...` (SRV records of _gossip._tcp.srv...), none yet: 503 naming
   them. Then records for n1 and for n6 (on another port, no seeds): n5 finds both, and
   through n1 the whole cluster.
4. n7, seeded by a name that does not exist: 503 naming the seed and the DNS error; once
   the name exists, 200 in the cluster.

Needs root, `ip` and /usr/sbin/dnsmasq; skipped with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.resolver
import httpx
import pytest

from gossip.config import Config
from gossip.errors import ConfigError
from gossip.membership import MemberInfo
from node.monitoring.health import assess
from node.server.dns_seeds import DnsSeed, DnsSeeds, base_url, parse_seed, replace_derived, split_seeds
from node.server.settings import Settings
from node.state import SharedState, wall_ms
from node.web.app import main
from tests.netns import available, ip, start_node
from tests.polling import wait_until

DNSMASQ = "/usr/sbin/dnsmasq"
NET = "10.78.0"
DNS_IP, CLIENT_IP = f"{NET}.1", f"{NET}.254"
DOMAIN = "gdns.test"
PORT = 8000
INTERVAL, REFRESH = 0.2, 0.5  # seconds: gossip rounds, and DNS lookups once a node has met others
LOCK = Path(tempfile.gettempdir()) / "gossip-dns-tests.lock"


# -- in memory ----------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "seed"), [
    ("dns:fleet.example:8000", DnsSeed("fleet.example", 8000)),
    ("dns:gossip-headless", DnsSeed("gossip-headless")),
    ("DNS:gossip.default.svc.cluster.local.:7946", DnsSeed("gossip.default.svc.cluster.local.", 7946)),
    ("http://10.0.0.4:8000", "http://10.0.0.4:8000"),
    ("https://[fd00::4]:8443", "https://[fd00::4]:8443"),
])
def test_a_seed_is_a_base_url_or_a_dns_name(spec: str, seed: str | DnsSeed) -> None:
    assert parse_seed(spec) == seed
    if isinstance(seed, DnsSeed):
        assert str(seed) == "dns:" + spec[4:]
        assert seed.query == (seed.name if seed.port else f"_gossip._tcp.{seed.name}")


@pytest.mark.parametrize(("spec", "problem"), [
    ("dns:fleet:0", "the port must be a number from 1 to 65535, not '0'"),
    ("dns:fleet:65536", "the port must be a number from 1 to 65535, not '65536'"),
    ("dns:fleet:http", "the port must be a number from 1 to 65535, not 'http'"),
    ("dns:fleet:", "the port must be a number from 1 to 65535, not ''"),
    ("dns::8000", "the name is empty"),
    ("dns:", "the name is empty"),
    ("dns:10.0.0.4:8000", "10.0.0.4 is an address, not a name: give it as http://10.0.0.4:<port>"),
    ("dns:fleet!.example:80", "'fleet!.example' is not a DNS name"),
    ("dns:fleet..example:80", "'fleet..example' is not a DNS name"),
    ("ftp://10.0.0.4:21", "the scheme must be http, https or dns (as in http://10.0.0.4:8000 or "
                          "dns:gossip.example:8000), not 'ftp'"),
    ("10.0.0.4:8000", "the scheme must be http, https or dns"),
    ("http://:8000", "names no host"),
    ("http://10.0.0.4:99999", "not a URL: Port out of range"),
    ("http://10.0.0.4:0", "port 0 cannot be reached"),
])
def test_a_bad_seed_is_refused_saying_what_is_wrong(spec: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="seeds") as caught:
        parse_seed(spec)
    assert f"{spec!r}: {problem}" in str(caught.value)


def test_seeds_mix_urls_and_names_and_bad_ones_stop_the_node(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.parse(["--seeds", "http://10.0.0.4:8000/, dns:fleet.example:8000,dns:fleet.example"])
    assert split_seeds(settings.seeds) == (
        ("http://10.0.0.4:8000",), (DnsSeed("fleet.example", 8000), DnsSeed("fleet.example"))
    )
    assert settings.dns_refresh == 30.0
    with pytest.raises(ConfigError, match="seeds"):
        Settings(seeds=("dns::8000",))
    with pytest.raises(SystemExit) as stopped:
        main(["--seeds", "http://10.0.0.4:8000,dns:fleet.example:80000"])
    assert str(stopped.value) == ("gossip-node: config field 'seeds': 'dns:fleet.example:80000': the port "
                                  "must be a number from 1 to 65535, not '80000'")
    with pytest.raises(ConfigError, match="dns_refresh"):
        Settings.parse(["--dns-refresh", "0"])


def test_members_per_message_sets_the_config_and_is_checked_by_it() -> None:
    assert Settings.parse([]).config.max_members_per_message == Config().max_members_per_message
    assert Settings.parse(["--members-per-message", "64"]).config.max_members_per_message == 64
    with pytest.raises(ConfigError, match="max_members_per_message"):
        Settings.parse(["--members-per-message", "0"])
    with pytest.raises(ConfigError, match="max_body_bytes"):  # (too many to fit in a message)
        Settings.parse(["--members-per-message", "100000"])


def test_a_new_answer_replaces_the_seeds_the_last_one_gave() -> None:
    a, b, c, d, x = (f"http://10.0.0.{n}:8000" for n in (1, 2, 3, 4, 9))
    assert replace_derived((a, b, c), before={b, c}, after=[c, d], keep={a}) == (a, c, d)
    # A base URL seed stays when the name no longer gives it; a seed from elsewhere (the
    # host directory) stays; an empty answer drops every seed the name gave.
    assert replace_derived((a, x, b), before={a, b}, after=[], keep={a}) == (a, x)
    assert replace_derived((), before=set(), after=[b, c], keep=()) == (b, c)


def test_the_seeds_names_give_leave_out_the_node_itself_and_repeats() -> None:
    fleet, srv = DnsSeed("fleet.example", 8000), DnsSeed("fleet.example")
    me, other, third = "http://10.0.0.1:8000", "http://10.0.0.2:8000", "http://10.0.0.3:8000"
    seeds = DnsSeeds((fleet, srv), "http", me)
    seeds.found = {fleet: (me, other), srv: (other, third)}
    assert seeds.addresses() == (other, third)
    assert base_url("https", "fd00::4", 8443) == "https://[fd00::4]:8443"
    assert base_url("http", "10.0.0.4", 80) == "http://10.0.0.4:80"


def test_a_name_that_does_not_resolve_is_a_problem_alone_and_a_warning_in_a_cluster() -> None:
    settings = Settings(node_id="a", seeds=("dns:fleet.example:8000",), discovery_dir="off",
                        config=Config.for_tests())
    state = SharedState(settings)
    assert "DNS seeds (dns:fleet.example:8000) give no node but this one" in assess(state).alone
    state.dns.failed[DnsSeed("fleet.example", 8000)] = "The DNS query name does not exist: fleet.example."
    verdict = assess(state)
    assert [p.code for p in verdict.problems] == ["dns_seed_unresolved"] and not verdict.alone
    assert verdict.problems[0].detail == (
        "DNS seed dns:fleet.example:8000 does not resolve (The DNS query name does not exist: "
        "fleet.example.): check the name, that the DNS server in /etc/resolv.conf answers, and that the "
        "A or AAAA records of fleet.example exist"
    )
    # In a cluster, the node goes on without the name (a DNS outage must not take a fleet down).
    state.protocol.membership.merge([MemberInfo("b", "http://10.0.0.2:8000", 1, 1)], wall_ms())
    state.peers.took("http://10.0.0.2:8000")
    verdict = assess(state)
    assert verdict.ok and [p.code for p in verdict.warnings] == ["dns_seed_unresolved"]


# -- a real DNS server ----------------------------------------------------------------------


def fqdn(name: str) -> str:
    return f"{name}.{DOMAIN}"


def remove_leftovers() -> None:
    """The namespace, link and resolv.conf of a run killed before it cleaned up (its
    processes by their PIDs: they would keep the namespace's addresses)."""
    for ns in re.findall(r"^(gdns-\w{4})\b", ip("netns", "list"), re.MULTILINE):
        for pid in ip("netns", "pids", ns).split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("netns", "del", ns)
    for link in re.findall(r"^\d+: (gdns\w{4}r)[@:]", ip("-o", "link"), re.MULTILINE):
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", link)
    for folder in Path("/etc/netns").glob("gdns-*"):
        shutil.rmtree(folder, ignore_errors=True)


def stop(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process groups we started them in (all at once), SIGKILL those that
    outlive 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        deadline = time.monotonic() + 10
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        procs = tuple(p for p in procs if p.poll() is None)
        if not procs:
            return


@dataclass
class Lab:
    """A namespace with dnsmasq and nodes in it, its records, and what it takes to undo it."""

    logs: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:4])
    hosts: dict[str, list[str]] = field(default_factory=dict)  # name -> addresses (A records)
    srv: list[tuple[str, int]] = field(default_factory=list)  # (target, port) of _gossip._tcp.srv
    dnsmasq: subprocess.Popen[bytes] | None = None
    nodes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def ns(self) -> str:
        return f"gdns-{self.tag}"

    @property
    def resolv_dir(self) -> Path:
        return Path("/etc/netns") / self.ns

    def open(self) -> None:
        outside, inside = f"gdns{self.tag}r", "gd0"
        ip("netns", "add", self.ns)
        ip("-n", self.ns, "link", "set", "lo", "up")
        ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", self.ns)
        ip("addr", "add", f"{CLIENT_IP}/24", "dev", outside)
        ip("link", "set", outside, "up")
        for host in [1, *range(11, 18)]:  # the DNS server, and a node address each
            ip("-n", self.ns, "addr", "add", f"{NET}.{host}/24", "dev", inside)
        ip("-n", self.ns, "link", "set", inside, "up")
        self.resolv_dir.mkdir(parents=True)
        (self.resolv_dir / "resolv.conf").write_text(f"nameserver {DNS_IP}\n")
        for n in range(1, 8):
            self.hosts[fqdn(f"n{n}")] = [self.ip(f"n{n}")]

    def close(self) -> None:
        stop(*self.nodes.values(), *([self.dnsmasq] if self.dnsmasq else []))
        self.nodes.clear()
        remove_leftovers()  # ours among them

    @staticmethod
    def ip(node_id: str) -> str:
        return f"{NET}.{10 + int(node_id[1:])}"

    def records(self) -> Path:
        path = self.logs / "hosts"
        path.write_text("".join(f"{a} {name}\n" for name, addresses in self.hosts.items() for a in addresses))
        return path

    def serve_dns(self) -> None:
        """(Re)start dnsmasq with the records now: SRV records come from its arguments."""
        if self.dnsmasq is not None:
            stop(self.dnsmasq)
        srv = [f"--srv-host=_gossip._tcp.{fqdn('srv')},{target},{port}" for target, port in self.srv]
        cmd = ["ip", "netns", "exec", self.ns, DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null",
               "--no-resolv", "--no-hosts", "--port=53", f"--listen-address={DNS_IP}", "--bind-interfaces",
               f"--local=/{DOMAIN}/", f"--addn-hosts={self.records()}", "--pid-file", "--user=root",
               "--log-facility=-", *srv]
        with open(self.logs / "dnsmasq.log", "ab") as log:
            self.dnsmasq = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        up = [self.ip("n1")]
        wait_until(lambda: self.lookup(fqdn("n1"), "A") == up, timeout=10, what="dnsmasq to answer")

    def reload(self) -> None:
        """New A records: dnsmasq reads its hosts file again on SIGHUP."""
        self.records()
        assert self.dnsmasq is not None
        self.dnsmasq.send_signal(signal.SIGHUP)

    def lookup(self, name: str, kind: str) -> list[str]:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [DNS_IP]
        try:
            return sorted(r.to_text() for r in resolver.resolve(name, kind, lifetime=1))
        except dns.exception.DNSException:
            return []

    def start(self, node_id: str, *seeds: str, port: int = PORT) -> None:
        self.ports[node_id] = port
        args = [
            "--host", self.ip(node_id), "--port", str(port), "--node-id", node_id,
            "--cluster-id", f"dns-{self.tag}", "--interval", str(INTERVAL), "--dns-refresh", str(REFRESH),
            "--allow", f"{NET}.0/24", "--log-level", "info", "--seeds", ",".join(seeds),
        ]
        self.nodes[node_id] = start_node(self.ns, args, self.logs / f"{node_id}.log")

    def get(self, node_id: str, path: str) -> tuple[int, dict[str, Any]]:
        try:
            response = httpx.get(f"http://{self.ip(node_id)}:{self.ports[node_id]}{path}", timeout=2)
        except httpx.HTTPError:
            return 0, {}
        return response.status_code, response.json()

    def alive(self, node_id: str) -> set[str]:
        """The members node_id sees alive, itself included."""
        members = self.get(node_id, "/members")[1].get("members", [])
        return {m["id"] for m in members if m["status"] == "alive"}

    def log(self, node_id: str) -> str:
        return (self.logs / f"{node_id}.log").read_text()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if (reason := available()) is not None:
        pytest.skip(reason)
    if not os.access(DNSMASQ, os.X_OK):
        pytest.skip(f"no {DNSMASQ} (Debian's dnsmasq package; scripts/install-test-deps.sh installs it)")
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one run at a time: the subnet is the same
        remove_leftovers()
        lab = Lab(tmp_path_factory.mktemp("dns-seeds"))
        try:
            lab.open()
            yield lab
        finally:
            lab.close()


def health(lab: Lab, node_id: str, status: int, *words: str) -> dict[str, Any]:
    """Poll node_id's /health until it answers `status` with each of `words` in its body."""
    found: list[tuple[int, dict[str, Any]]] = [(0, {})]

    def check() -> bool:
        found[0] = lab.get(node_id, "/health")
        return found[0][0] == status and all(w in str(found[0][1]) for w in words)

    wait_until(check, timeout=15, what=f"{node_id} to answer {status} with {words}", detail=lambda: found)
    return found[0][1]


def meet(lab: Lab, node_ids: list[str]) -> None:
    """Wait until each of node_ids sees every one of them alive."""
    wanted = set(node_ids)

    def seen() -> dict[str, list[str]]:
        return {n: sorted(lab.alive(n)) for n in node_ids}

    wait_until(lambda: all(lab.alive(n) >= wanted for n in node_ids), 15, f"{sorted(wanted)} to meet", seen)


def test_nodes_find_each_other_by_dns_name(lab: Lab) -> None:
    fleet, srv, later = f"dns:{fqdn('fleet')}:{PORT}", f"dns:{fqdn('srv')}", f"dns:{fqdn('later')}:{PORT}"
    lab.hosts[fqdn("fleet")] = [lab.ip("n1")]
    lab.serve_dns()
    lab.start("n1", fleet)
    lab.start("n4")
    lab.start("n5", srv)
    lab.start("n6", port=8006)
    lab.start("n7", later)

    # 1. The name gives n1 only (itself): it founds the cluster, and says why it is alone.
    body = health(lab, "n1", 200, "alone")
    assert f"DNS seeds ({fleet}) give no node but this one" in body["alone"]
    lab.hosts[fqdn("fleet")] = [lab.ip(n) for n in ("n1", "n2", "n3")]
    lab.reload()
    lab.start("n2", fleet)
    lab.start("n3", fleet)
    meet(lab, ["n1", "n2", "n3"])
    assert f"came http://{lab.ip('n2')}:{PORT}, http://{lab.ip('n3')}:{PORT}; went none" in lab.log("n1")

    # 2. n4, alone with no seeds, added to the name: the others find it by looking again.
    health(lab, "n4", 200, "no seeds and no other member")
    lab.hosts[fqdn("fleet")].append(lab.ip("n4"))
    lab.reload()
    meet(lab, ["n1", "n2", "n3", "n4"])
    n4 = f"http://{lab.ip('n4')}:{PORT}"
    came, went = f"came {n4}; went none (4 in all)", f"came none; went {n4} (3 in all)"
    wait_until(lambda: all(came in lab.log(n) for n in ("n1", "n2", "n3")), timeout=10, what=came)
    lab.hosts[fqdn("fleet")].remove(lab.ip("n4"))  # (and taken out, it leaves their seeds)
    lab.reload()
    wait_until(lambda: all(went in lab.log(n) for n in ("n1", "n2", "n3")), timeout=10, what=went)

    # 3. The SRV form: no records yet, so 503 naming them; then n1's and n6's (on another
    # port, with no seeds of its own): n5 finds both, and so the whole cluster.
    body = health(lab, "n5", 503, "dns_seed_unresolved", srv)
    assert f"SRV records of _gossip._tcp.{fqdn('srv')} (in Kubernetes" in body["problems"][0]["detail"]
    health(lab, "n6", 200, "no seeds and no other member")
    lab.srv = [(fqdn("n1"), PORT), (fqdn("n6"), 8006)]
    lab.serve_dns()
    records = lab.lookup(f"_gossip._tcp.{fqdn('srv')}", "SRV")
    assert records == [f"0 0 {PORT} {fqdn('n1')}.", f"0 0 8006 {fqdn('n6')}."]
    meet(lab, ["n1", "n2", "n3", "n4", "n5", "n6"])
    assert f"came http://{lab.ip('n1')}:{PORT}, http://{lab.ip('n6')}:8006; went none" in lab.log("n5")

    # 4. A name that does not exist: 503 naming it, the error and what to check; 200 once it exists.
    body = health(lab, "n7", 503, "dns_seed_unresolved", later, "does not exist")
    assert [p["problem"] for p in body["problems"]] == ["dns_seed_unresolved"]
    assert [p["peer"] for p in body["problems"][0]["peers"]] == [later]
    check = f"and that the A or AAAA records of {fqdn('later')} exist"
    assert "check the name, that the DNS server in /etc/resolv.conf answers" in body["problems"][0]["detail"]
    assert check in body["problems"][0]["detail"]
    lab.hosts[fqdn("later")] = [lab.ip("n1")]
    lab.reload()
    health(lab, "n7", 200)
    meet(lab, ["n1", "n2", "n3", "n4", "n5", "n6", "n7"])
    log = lab.log("n7")
    assert log.count("health: dns_seed_unresolved began") == 1 and log.count("dns_seed_unresolved ended") == 1
