"""The container image and the manifests under deploy/: valid Kubernetes objects, settings
the node's own parser accepts, a Dockerfile that keeps its promises, its command run as a
real non-root process, and a rolling restart as the StatefulSet does it (real processes).
No container engine or cluster runs here: docs/DEPLOY.md says what this leaves untested."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from gossip.errors import ConfigError
from node.server.settings import Settings
from node.tools.local_cluster import LocalCluster, free_ports
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.34"
POD = {"metadata.name": "gossip-0", "metadata.namespace": "shop", "status.podIP": "10.244.1.7"}
KEY = secrets.token_hex(32)
TOKEN = secrets.token_hex(16)


# -- reading the files ------------------------------------------------------------------------


def dockerfile(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continued lines joined."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
        pending = ""
    return instructions


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last:]


def one(word: str) -> str:
    found = [args for w, args in final_stage() if w == word]
    assert len(found) == 1, f"the final stage needs exactly one {word}, has {found}"
    return found[0]


def image_command() -> list[str]:
    command = json.loads(one("CMD"))  # the exec form: a JSON list, no shell in between
    assert isinstance(command, list) and all(isinstance(a, str) for a in command), command
    return command


def image_env() -> dict[str, str]:
    return dict(item.split("=", 1) for w, args in final_stage() if w == "ENV" for item in shlex.split(args))


def manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                yield path, doc


def workloads() -> dict[str, dict[str, Any]]:
    """The Deployment and the StatefulSet, by kind."""
    return {doc["kind"]: doc for _, doc in manifests() if doc["kind"] in ("Deployment", "StatefulSet")}


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only  # type: ignore[no-any-return]


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())  # type: ignore[no-any-return]


def pod_env(c: dict[str, Any], pod: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: downward-API fields from
    `pod` (by field path), secrets as a valid key and token, and $(VAR) replaced by variables set above."""
    env: dict[str, str] = {}
    for var in c["env"]:
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), var["value"])
        elif "fieldRef" in var["valueFrom"]:
            env[var["name"]] = pod[var["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = {"key": KEY, "api-token": TOKEN}[ref["key"]]
    return env


def node_argv(c: dict[str, Any] | None = None) -> list[str]:
    """The node's arguments in the container: the image's command (or the container's
    own), then its args, the program name left out."""
    command = (c or {}).get("command") or image_command()
    assert command[0] == "gossip-node", command
    return [*command[1:], *(c or {}).get("args", [])]


def exposed_port() -> int:
    (port,) = one("EXPOSE").split()
    return int(port)


# -- the manifests -----------------------------------------------------------------------------


def test_every_manifest_is_a_valid_kubernetes_object() -> None:
    kinds = []
    for path, doc in manifests():
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{path.name}: {doc['kind']} {exc.message} at {list(exc.path)}") from exc
        kinds.append(doc["kind"])
    assert sorted(kinds) == ["Deployment", "PodDisruptionBudget", "Secret", "Service", "StatefulSet"]


def test_strict_validation_refuses_a_misspelt_field() -> None:
    """The check above can fail: strict mode refuses fields the schema does not know."""
    statefulset = workloads()["StatefulSet"]
    container(statefulset)["readinessProbes"] = container(statefulset).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessProbes"):
        kubernetes_validate.validate(statefulset, K8S_VERSION, strict=True)


def test_the_node_accepts_what_the_workloads_give_it() -> None:
    service = next(doc for _, doc in manifests() if doc["kind"] == "Service")
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    (port,) = service["spec"]["ports"]
    assert port["name"] == "gossip", "the SRV records are _gossip._tcp.<service>: the port's name"
    for kind, workload in workloads().items():
        c = container(workload)
        settings = Settings.parse(node_argv(c), pod_env(c, POD))
        assert (settings.host, settings.port) == ("0.0.0.0", exposed_port()), kind
        assert [p["containerPort"] for p in c["ports"]] == [settings.port] == [port["port"]], kind
        assert settings.id == "gossip-0", kind
        assert settings.address == f"http://10.244.1.7:{settings.port}", kind
        assert settings.keyring() is not None and settings.api_token == TOKEN, kind
        assert settings.allow and settings.allow != Settings().allow, f"{kind}: --allow left at loopback"
        # The Service's SRV records as a dns: seed (the parser checks its syntax).
        assert settings.seeds == (f"dns:{service['metadata']['name']}.shop.svc.cluster.local",), kind
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsUser"] == int(one("USER").split(":")[0]), kind
        assert spec["terminationGracePeriodSeconds"] >= 10, kind
        assert c["securityContext"]["readOnlyRootFilesystem"] is True, kind
    statefulset = workloads()["StatefulSet"]
    data_dir = Settings.parse(node_argv(), pod_env(container(statefulset), POD)).data_dir
    mounts = {m["name"]: m["mountPath"] for m in container(statefulset)["volumeMounts"]}
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert mounts[claim["metadata"]["name"]] == data_dir == "/data"
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]


def test_the_example_secret_is_refused_until_replaced() -> None:
    secret = next(doc for _, doc in manifests() if doc["kind"] == "Secret")
    with pytest.raises(ConfigError, match="gossip_key"):
        Settings.parse([], {"GOSSIP_KEY": secret["stringData"]["key"]})


def test_the_node_accepts_what_compose_gives_it() -> None:
    spec = compose()
    (network,) = spec["networks"].values()
    (subnet,) = (c["subnet"] for c in network["ipam"]["config"])
    for name, service in spec["services"].items():
        assert service["env_file"] == "gossip.env" and service["build"]["context"] == ".."
        settings = Settings.parse(node_argv(), {**service["environment"], "GOSSIP_KEY": KEY})
        assert settings.id == name and settings.address == f"http://{name}:{exposed_port()}"
        assert settings.allow == (subnet,)
        assert settings.address in settings.seeds and len(settings.seeds) == len(spec["services"])
        assert [p.rsplit(":", 1)[1] for p in service["ports"]] == [str(exposed_port())]


# -- the image -----------------------------------------------------------------------------------


def test_the_dockerfile_keeps_its_promises() -> None:
    steps = dockerfile()
    bases = [args.split()[0] for word, args in steps if word == "FROM"]
    assert bases == ["python:3.11-slim", "python:3.11-slim"], "a build stage, then the final one"
    user = one("USER").split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root user (runAsNonRoot checks it)"
    assert not any(word == "ENTRYPOINT" for word, _ in steps), "CMD alone: a derived image replaces it"
    assert image_command()[:1] == ["gossip-node"]
    assert Settings.parse(node_argv(), {}).host == "0.0.0.0"
    assert exposed_port() == Settings.parse(node_argv(), {}).port
    kept = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line.startswith("!")}
    for word, args in steps:
        if word == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert source.rstrip("/") in kept, f".dockerignore leaves {source} out of the build"


def run_as(user: str) -> list[str]:
    return ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="running the image's command as another user needs root and setpriv")
def test_the_image_command_serves_and_says_goodbye_on_sigterm(tmp_path: Path) -> None:
    """The Dockerfile's command with the StatefulSet's environment (on 127.0.0.1 and a free
    port, a local peer as the seed), as user nobody with no capabilities: it joins, answers
    /health 200, and on SIGTERM leaves (the peer shows it left) within the grace period."""
    statefulset = workloads()["StatefulSet"]
    grace = statefulset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    (port,) = free_ports(1)
    venv = str(Path(sys.executable).parent)
    with tempfile.TemporaryDirectory(prefix="gossip-deploy-") as home, \
            LocalCluster(1, interval=0.2, key=KEY, cluster_id="default") as peer, \
            httpx.Client(timeout=5) as client:
        shutil.chown(home, "nobody", "nogroup")  # (pytest's tmp_path is root's alone)
        data = Path(home) / "data"
        env = pod_env(container(statefulset), {**POD, "status.podIP": "127.0.0.1"})
        assert env["GOSSIP_ADVERTISE"].endswith(":8000") and env["GOSSIP_DATA_DIR"] == "/data"
        env.update(GOSSIP_ADVERTISE=f"http://127.0.0.1:{port}", GOSSIP_SEEDS=peer.urls[0],
                   GOSSIP_ALLOW="127.0.0.0/8", GOSSIP_DATA_DIR=str(data))
        image = image_env()
        image["PATH"] = image["PATH"].replace("/opt/venv/bin", venv).replace("$PATH", "/usr/bin:/bin")
        command = [*run_as("nobody"), *image_command(), "--host", "127.0.0.1", "--port", str(port)]
        url = f"http://127.0.0.1:{port}"
        with open(tmp_path / "node.log", "wb") as log:
            proc = subprocess.Popen(command, env={**image, **env}, cwd=home, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        log_tail = lambda: (tmp_path / "node.log").read_text()[-2000:]  # noqa: E731

        def serving() -> bool:
            assert proc.poll() is None, f"exited with {proc.returncode}: {log_tail()}"
            return healthy(client, url)

        try:
            wait_until(serving, what="/health 200", detail=log_tail)
            token = {"authorization": f"Bearer {TOKEN}"}
            client.post(url + "/set", json={"key": "k", "value": 1}, headers=token).raise_for_status()
            wait_until(lambda: status_on(client, peer.urls[0], "gossip-0") == "alive",
                       what="the peer to see it")
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=grace)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        # uvicorn shuts down cleanly, then raises the signal again: the status says SIGTERM.
        assert code == -signal.SIGTERM, (code, log_tail())
        assert "Application shutdown complete" in log_tail()
        assert status_on(client, peer.urls[0], "gossip-0") == "left"
        assert any(data.iterdir()), "no snapshot written to the data dir"


def healthy(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url + "/health").status_code == 200
    except httpx.HTTPError:
        return False


def status_on(client: httpx.Client, url: str, node_id: str) -> str | None:
    members = client.get(url + "/members").json()["members"]
    return next((m["status"] for m in members if m["id"] == node_id), None)


# -- a rolling restart -------------------------------------------------------------------------


class Writer:
    """Writes to every node that is not being stopped (`urls`, by index: a node may come
    back at another address), one write at a time, and keeps the entries the nodes
    acknowledged. `stopping(i)` waits for the write in flight, so a node stops right after
    its last acknowledged write, never in the middle of one."""

    def __init__(self, urls: list[str]) -> None:
        self.urls, self.down = urls, set[int]()
        self.acknowledged: list[dict[str, Any]] = []
        self.lock, self.done = threading.Lock(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            i = 0
            while not self.done.is_set():
                with self.lock:
                    if (node := i % len(self.urls)) not in self.down:
                        r = client.post(self.urls[node] + "/set", json={"key": f"k{i % 20}", "value": i})
                        if r.status_code == 200:
                            self.acknowledged.append(r.json())
                i += 1
                self.done.wait(0.01)  # a steady client, not a flood: the restarts need the CPU

    def stopping(self, index: int) -> None:
        with self.lock:
            self.down.add(index)

    def back(self, index: int) -> None:
        with self.lock:
            self.down.discard(index)

    def latest(self) -> dict[str, Any]:
        """Each key's value by last-writer-wins over what was acknowledged."""
        best: dict[str, dict[str, Any]] = {}
        for entry in self.acknowledged:
            held = best.get(entry["key"])
            if held is None or (entry["timestamp"], entry["node"]) > (held["timestamp"], held["node"]):
                best[entry["key"]] = entry
        return {key: entry["value"] for key, entry in best.items()}


def test_a_rolling_restart_loses_no_acknowledged_write() -> None:
    """What `kubectl rollout restart statefulset/gossip` does, with real processes: every
    node has a data dir and every node as a seed; in turn each gets SIGTERM and leaves
    (the others show it left), comes back with the same id and data at a new address (a
    new pod IP), and is in the cluster (/health 200) before the next goes. A client writes
    all along; at the end every node holds every acknowledged write."""
    cluster = LocalCluster(3, interval=0.2, data=True)
    cluster.extra_args += ["--seeds", ",".join(cluster.urls)]  # as the SRV records list every pod
    with cluster, httpx.Client(timeout=5) as client:
        writer = Writer(cluster.urls)
        writer.thread.start()
        try:
            for node_id in reversed(cluster.ids):  # the StatefulSet's order: highest ordinal first
                i = cluster.ids.index(node_id)
                count = len(writer.acknowledged)
                wait_until(lambda c=count: len(writer.acknowledged) >= c + 20, what="writes meanwhile")
                writer.stopping(i)
                cluster.leave(node_id)
                others = [u for u in cluster.urls if u != cluster.urls[i]]
                wait_until(lambda n=node_id, o=others: all(status_on(client, u, n) == "left" for u in o),
                           what=f"the others to show {node_id} left")
                (port,) = free_ports(1)
                cluster.ports[i], cluster.urls[i] = port, f"http://127.0.0.1:{port}"
                cluster.restart(node_id, extra_args=["--seeds", ",".join(cluster.urls)])  # the DNS answer now
                wait_until(lambda u=cluster.urls[i]: healthy(client, u), what=f"{node_id} in the cluster")
                writer.back(i)
            count = len(writer.acknowledged)
            wait_until(lambda: len(writer.acknowledged) >= count + 20, what="writes after the restarts")
        finally:
            writer.done.set()
            writer.thread.join(timeout=10)
        expected = writer.latest()
        assert len(expected) == 20
        wait_until(lambda: len({client.get(u + "/digest").json()["digest"] for u in cluster.urls}) == 1,
                   what="the nodes to agree")
        for url in cluster.urls:
            values = client.get(url + "/get").json()["values"]
            missing = {k: (values.get(k), v) for k, v in expected.items() if values.get(k) != v}
            assert not missing, f"{url}: (held, acknowledged) {missing}"
            stats = client.get(url + "/stats").json()
            assert stats["resets"] == 0, url
            members = {m["id"]: (m["status"], m["address"])
                       for m in client.get(url + "/members").json()["members"]}
            assert members == {n: ("alive", u) for n, u in zip(cluster.ids, cluster.urls, strict=True)}, url
        print(f"\nrolling restart: {len(writer.acknowledged)} acknowledged writes, all held by every node")
