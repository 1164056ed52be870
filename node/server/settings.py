"""A node's settings, from command-line flags with environment variables as defaults."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gossip.auth import KeyRing, KeyRingError, parse_key
from gossip.config import Config
from gossip.errors import ConfigError
from gossip.membership import tags_problem
from gossip.version import __version__
from node.server.dns_seeds import DnsSeeds, split_seeds

ENV_PREFIX = "GOSSIP_"
LOOPBACK = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class Settings:
    # Where gossip is served: the standalone node's only port, or the gossip listener
    # of a node embedded in an app (port 0: any free port).
    host: str = "127.0.0.1"
    port: int = 8000
    # Embedded listener only: take the first free port in [port, port_max] (0: just port).
    port_max: int = 0
    node_id: str = ""  # empty: "<host>:<port>"
    advertise: str = ""  # base URL peers reach us at; empty: "http://<host>:<port>"
    # Nodes to join through: base URLs, and DNS names (node.server.dns_seeds) looked up again
    # every dns_refresh seconds (every round while the node knows no member).
    seeds: tuple[str, ...] = ()
    dns_refresh: float = 30.0
    # Networks allowed to send gossip (CIDR); anyone else gets 403.
    allow: tuple[str, ...] = LOOPBACK
    # Embedded nodes register here so the workers of one host find each other; empty:
    # <tmp>/fastapi-gossip/<cluster_id>; "off" disables it.
    discovery_dir: str = ""
    # Cluster key (64 hex digits) that signs gossip; empty: gossip is unsigned.
    gossip_key: str = ""
    # More keys that verify (during a rotation).
    accepted_keys: tuple[str, ...] = ()
    # Bearer token required by /set, /delete and the admin routes; empty: open writes,
    # and no admin routes.
    api_token: str = ""
    # Require the token for reads too.
    protect_reads: bool = False
    # PEM files: our certificate and key (serve HTTPS) and the CA peers must be signed by.
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    # Directory for the state snapshot (and clock high-water mark); empty: no persistence,
    # a restarted node catches up from peers.
    data_dir: str = ""
    config: Config = field(default_factory=Config)
    log_level: str = "warning"
    # Take writes even while every peer refuses our clock (they reach nobody until it is fixed).
    accept_writes_when_refused: bool = False
    # Node tags: key/value metadata in this node's member record, shown in /members (like
    # Serf tags); fixed for the node's life.
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert", "tls_cert and tls_key go together")
        for name, keys in (("gossip_key", [self.gossip_key] if self.gossip_key else []),
                           ("accepted_keys", self.accepted_keys)):
            for key in keys:
                try:
                    parse_key(key)
                except KeyRingError as exc:
                    raise ConfigError(name, str(exc)) from exc
        if "#" in self.node_id:
            raise ConfigError("node_id", "must not contain '#' (it separates a node's lives)")
        if self.accepted_keys and not self.gossip_key:
            raise ConfigError("accepted_keys", "needs a gossip_key to sign with")
        for net in self.allow:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ConfigError("allow", f"{net!r} is not a network: {exc}") from exc
        if not 0 <= self.port <= 65535 or (self.port_max and self.port_max < self.port):
            raise ConfigError("port", f"invalid port or range {self.port}-{self.port_max}")
        if (problem := tags_problem(dict(self.tags))) is not None:
            raise ConfigError("tags", problem)
        split_seeds(self.seeds)  # (ConfigError naming a bad one)
        if not self.dns_refresh > 0:
            raise ConfigError("dns_refresh", f"must be a positive number, not {self.dns_refresh!r}")

    @property
    def id(self) -> str:
        if self.node_id:
            return self.node_id
        host = socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{host}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def address(self) -> str:
        return (self.advertise or f"{self.scheme}://{self.host}:{self.port}").rstrip("/")

    @property
    def discovery_path(self) -> Path | None:
        if self.discovery_dir == "off":
            return None
        if self.discovery_dir:
            return Path(self.discovery_dir)
        return Path(tempfile.gettempdir()) / "fastapi-gossip" / self.config.cluster_id

    def dns_seeds(self) -> DnsSeeds:
        """The seeds given by DNS name, to look up (none resolved yet)."""
        return DnsSeeds(split_seeds(self.seeds)[1], self.scheme, self.address, self.id)

    def keyring(self) -> KeyRing | None:
        if not self.gossip_key:
            return None
        return KeyRing.of(parse_key(self.gossip_key), *map(parse_key, self.accepted_keys))

    def client_tls(self) -> ssl.SSLContext | None:
        """How we reach peers over TLS: trust tls_ca, show our own certificate."""
        if not (self.tls_ca or self.tls_cert):
            return None
        context = ssl.create_default_context(cafile=self.tls_ca or None)
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    def server_tls(self) -> dict[str, object]:
        """uvicorn's TLS arguments: serve HTTPS, and require a certificate signed by
        tls_ca from every client when a CA is given."""
        if not self.tls_cert:
            return {}
        options: dict[str, object] = {"ssl_certfile": self.tls_cert, "ssl_keyfile": self.tls_key}
        if self.tls_ca:
            options.update(ssl_ca_certs=self.tls_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
        return options

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def parse(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Flags, with GOSSIP_* environment variables as their defaults."""
        env = os.environ if env is None else env
        args = _parser(env).parse_args(argv)
        config = Config(
            cluster_id=args.cluster_id,
            gossip_interval=args.interval,
            fanout=args.fanout,
            eager_push=args.eager_push,
            max_offset=args.max_offset,
            replay_window=args.replay_window,
            tombstone_grace=args.tombstone_grace,
            reap_after=args.reap_after,
            phi_dead=args.phi_dead,
            phi_suspect=min(args.phi_suspect, args.phi_dead),
            max_members_per_message=args.members_per_message,
            view_size=args.view_size,
            probe_interval=args.probe_interval,
            probe_timeout=args.probe_timeout or min(Config().probe_timeout, 0.4 * args.probe_interval)
            or Config().probe_timeout,
        )
        lo, _, hi = str(args.port).partition("-")
        return cls(
            host=args.host, port=int(lo), port_max=int(hi or 0), node_id=args.node_id,
            advertise=args.advertise, seeds=_split(args.seeds), dns_refresh=args.dns_refresh,
            allow=_split(args.allow), discovery_dir=args.discovery_dir, gossip_key=args.key,
            accepted_keys=_split(args.accepted_keys), api_token=args.api_token,
            protect_reads=args.protect_reads, tls_cert=args.tls_cert, tls_key=args.tls_key,
            tls_ca=args.tls_ca, data_dir=args.data_dir, config=config, log_level=args.log_level,
            accept_writes_when_refused=args.accept_writes_when_refused,
            tags=parse_tags(args.tags, args.tag),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **changes: object) -> Settings:
        """Settings for a node embedded in an app (one per worker): from GOSSIP_*
        variables, with the gossip listener on any free port unless GOSSIP_PORT says."""
        env = os.environ if env is None else env
        settings = cls.parse([], {"GOSSIP_PORT": "0", **env})
        return settings.replace(**changes)


def parse_tags(listed: str, extra: Sequence[str] = ()) -> tuple[tuple[str, str], ...]:
    """Tags from "zone=a,role=api" (GOSSIP_TAGS) and then each `--tag k=v` (a later one
    wins); ConfigError naming whatever does not parse."""
    tags: dict[str, str] = {}
    for item in [*(t for t in listed.split(",") if t.strip()), *extra]:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError("tags", f"{item!r} is not name=value")
        tags[name.strip()] = value.strip()
    return tuple(sorted(tags.items()))


def _split(value: str) -> tuple[str, ...]:
    return tuple(s.strip().rstrip("/") for s in value.split(",") if s.strip())


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got {value!r}")


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    local = Config()
    p = argparse.ArgumentParser(
        prog="gossip-node",
        description="Run one gossip node. Each flag defaults to the environment variable "
        f"{ENV_PREFIX}<FLAG> (for example {ENV_PREFIX}SEEDS), then to the value shown.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    def opt(name: str, default: object, help: str, type: object = str) -> None:
        var = ENV_PREFIX + name.upper().replace("-", "_")
        p.add_argument(f"--{name}", default=env.get(var, default), type=type, help=help)  # type: ignore[arg-type]

    opt("host", "127.0.0.1", "address to listen on")
    opt("port", "8000", "port to listen on (embedded: a range like 7946-7950 takes the first free)")
    opt("node-id", "", "this node's id (default <host>:<port>)")
    opt("advertise", "", "base URL peers use to reach this node (default http://<host>:<port>)")
    opt("seeds", "", "comma-separated nodes to join through: base URLs (http://10.0.0.4:8000); "
        "dns:<name>:<port>, each A/AAAA record of the name with that port; or dns:<name>, each target "
        "of the SRV records _gossip._tcp.<name> with its port (addresses from DNS get this node's "
        "scheme, http or https)")
    opt("dns-refresh", 30.0, "seconds between lookups of the dns: seeds (every round while no member "
        "is known)", float)
    opt("allow", ",".join(LOOPBACK), "comma-separated networks allowed to send gossip")
    opt("discovery-dir", "", "embedded nodes: per-host directory to find other workers in")
    opt("cluster-id", local.cluster_id, "nodes only gossip within one cluster id")
    opt("interval", local.gossip_interval, "seconds between gossip rounds", float)
    opt("fanout", local.fanout, "peers per round and per eager push", int)
    opt("eager-push", "on", "push each write at once (on/off)", _flag)
    opt("max-offset", local.max_offset, "seconds a peer's timestamp may run ahead", float)
    opt("key", "", "cluster key, 64 hex digits: gossip is signed and verified with it "
        "(prefer the GOSSIP_KEY variable: flags show in ps)")
    opt("accepted-keys", "", "comma-separated further keys that verify (for a rotation)")
    opt("replay-window", local.replay_window, "seconds a signed message stays valid", float)
    opt("api-token", "", "bearer token required by /set, /delete and /admin")
    opt("protect-reads", "off", "require the token for reads too (on/off)", _flag)
    opt("tls-cert", "", "PEM certificate: serve HTTPS")
    opt("tls-key", "", "PEM private key of --tls-cert")
    opt("tls-ca", "", "PEM CA: peers must present a certificate it signed")
    opt("data-dir", "", "keep a snapshot of the state here, to restart with it")
    opt("tombstone-grace", local.tombstone_grace,
        "seconds a delete or expiry is kept past its time (and until every member has it)", float)
    opt("reap-after", local.reap_after,
        "seconds before a dead or departed member is forgotten: the longest outage a node survives "
        "with its state (back later, it is reset)", float)
    opt("phi-suspect", local.phi_suspect, "failure detector: suspicion shown as suspect", float)
    opt("phi-dead", local.phi_dead, "failure detector: suspicion declared dead", float)
    opt("probe-interval", local.probe_interval, "seconds between direct probes of one member each (SWIM "
        "with Lifeguard: a crash seen dead in seconds at any cluster size); 0: off, phi alone judges. Set "
        "it alike on every node", float)
    opt("probe-timeout", 0.0, "seconds a direct probe waits for its ack before others are asked to "
        f"probe, below --probe-interval (0: {local.probe_timeout:g} s, or 0.4 x --probe-interval if that "
        "is less)", float)
    opt("view-size", local.view_size, "member records each gossip message carries: this node, news "
        "(joins, restarts, leaves), then a random sample; at --members-per-message, every member", int)
    opt("members-per-message", local.max_members_per_message, "most member records this node accepts in "
        "one gossip message", int)
    opt("log-level", "warning", "uvicorn and node log level")
    opt("accept-writes-when-refused", "off", "take writes even while our clock is unfit for them: beyond "
        "max_offset ahead of the cluster's, or not yet compared with another host's (on/off; off answers "
        "them 503: the peers would refuse them)", _flag)
    opt("tags", "", "node tags, comma-separated name=value pairs, shown in /members")
    p.add_argument("--tag", action="append", default=[], metavar="NAME=VALUE",
                   help="one more node tag (repeatable)")
    return p
