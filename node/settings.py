"""A node's settings, from command-line flags with environment variables as defaults."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gossip.config import Config
from gossip.errors import ConfigError

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
    seeds: tuple[str, ...] = ()  # base URLs of nodes to join through
    # Networks allowed to send gossip (CIDR); anyone else gets 403.
    allow: tuple[str, ...] = LOOPBACK
    # Embedded nodes register here so the workers of one host find each other; empty:
    # <tmp>/fastapi-gossip/<cluster_id>; "off" disables it.
    discovery_dir: str = ""
    config: Config = field(default_factory=Config.local)
    log_level: str = "warning"

    def __post_init__(self) -> None:
        for net in self.allow:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ConfigError("allow", f"{net!r} is not a network: {exc}") from exc
        if not 0 <= self.port <= 65535 or (self.port_max and self.port_max < self.port):
            raise ConfigError("port", f"invalid port or range {self.port}-{self.port_max}")

    @property
    def id(self) -> str:
        if self.node_id:
            return self.node_id
        host = socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{host}:{self.port}"

    @property
    def address(self) -> str:
        return (self.advertise or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def discovery_path(self) -> Path | None:
        if self.discovery_dir == "off":
            return None
        if self.discovery_dir:
            return Path(self.discovery_dir)
        return Path(tempfile.gettempdir()) / "fastapi-gossip" / self.config.cluster_id

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def parse(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Flags, with GOSSIP_* environment variables as their defaults."""
        env = os.environ if env is None else env
        args = _parser(env).parse_args(argv)
        config = Config.local(
            cluster_id=args.cluster_id,
            gossip_interval=args.interval,
            fanout=args.fanout,
            eager_push=args.eager_push,
            max_offset=args.max_offset,
        )
        lo, _, hi = str(args.port).partition("-")
        return cls(
            host=args.host, port=int(lo), port_max=int(hi or 0), node_id=args.node_id,
            advertise=args.advertise, seeds=_split(args.seeds), allow=_split(args.allow),
            discovery_dir=args.discovery_dir, config=config, log_level=args.log_level,
        )  # fmt: skip

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **changes: object) -> Settings:
        """Settings for a node embedded in an app (one per worker): from GOSSIP_*
        variables, with the gossip listener on any free port unless GOSSIP_PORT says."""
        env = os.environ if env is None else env
        settings = cls.parse([], {"GOSSIP_PORT": "0", **env})
        return settings.replace(**changes)


def _split(value: str) -> tuple[str, ...]:
    return tuple(s.strip().rstrip("/") for s in value.split(",") if s.strip())


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got {value!r}")


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    local = Config.local()
    p = argparse.ArgumentParser(
        prog="gossip-node",
        description="Run one gossip node. Each flag defaults to the environment variable "
        f"{ENV_PREFIX}<FLAG> (for example {ENV_PREFIX}SEEDS), then to the value shown.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )

    def opt(name: str, default: object, help: str, type: object = str) -> None:
        var = ENV_PREFIX + name.upper().replace("-", "_")
        p.add_argument(f"--{name}", default=env.get(var, default), type=type, help=help)  # type: ignore[arg-type]

    opt("host", "127.0.0.1", "address to listen on")
    opt("port", "8000", "port to listen on (embedded: a range like 7946-7950 takes the first free)")
    opt("node-id", "", "this node's id (default <host>:<port>)")
    opt("advertise", "", "base URL peers use to reach this node (default http://<host>:<port>)")
    opt("seeds", "", "comma-separated base URLs of nodes to join through")
    opt("allow", ",".join(LOOPBACK), "comma-separated networks allowed to send gossip")
    opt("discovery-dir", "", "embedded nodes: per-host directory to find other workers in")
    opt("cluster-id", local.cluster_id, "nodes only gossip within one cluster id")
    opt("interval", local.gossip_interval, "seconds between gossip rounds", float)
    opt("fanout", local.fanout, "peers per round and per eager push", int)
    opt("eager-push", "on", "push each write at once (on/off)", _flag)
    opt("max-offset", local.max_offset, "seconds a peer's timestamp may run ahead", float)
    opt("log-level", "warning", "uvicorn and node log level")
    return p
