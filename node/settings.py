"""A node's settings, from command-line flags with environment variables as defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gossip.config import Config

ENV_PREFIX = "GOSSIP_"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    node_id: str = ""  # empty: "<host>:<port>"
    advertise: str = ""  # base URL peers reach us at; empty: "http://<host>:<port>"
    seeds: tuple[str, ...] = ()  # base URLs of nodes to join through
    config: Config = field(default_factory=Config.local)
    log_level: str = "warning"

    @property
    def id(self) -> str:
        return self.node_id or f"{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return (self.advertise or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def parse(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        args = _parser(env).parse_args(argv)
        config = Config.local(
            cluster_id=args.cluster_id,
            gossip_interval=args.interval,
            fanout=args.fanout,
            eager_push=args.eager_push,
            max_offset=args.max_offset,
        )
        seeds = tuple(s.strip().rstrip("/") for s in args.seeds.split(",") if s.strip())
        return cls(args.host, args.port, args.node_id, args.advertise, seeds, config, args.log_level)


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
    opt("port", 8000, "port to listen on", int)
    opt("node-id", "", "this node's id (default <host>:<port>)")
    opt("advertise", "", "base URL peers use to reach this node (default http://<host>:<port>)")
    opt("seeds", "", "comma-separated base URLs of nodes to join through")
    opt("cluster-id", local.cluster_id, "nodes only gossip within one cluster id")
    opt("interval", local.gossip_interval, "seconds between gossip rounds", float)
    opt("fanout", local.fanout, "peers per round and per eager push", int)
    opt("eager-push", "on", "push each write at once (on/off)", _flag)
    opt("max-offset", local.max_offset, "seconds a peer's timestamp may run ahead", float)
    opt("log-level", "warning", "uvicorn and node log level")
    return p
