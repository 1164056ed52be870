"""Seeds by DNS name, as an orchestrator publishes a fleet (a Kubernetes headless Service):

- `dns:<name>:<port>`: every A and AAAA record of <name>, each with that port;
- `dns:<name>`: the SRV records of `_gossip._tcp.<name>`, each target's addresses with
  the record's port.

The node looks its DNS seeds up before it starts (a node whose names give only itself
founds the cluster) and then again now and then. A name's latest answer replaces its
last one, so the addresses of pods long gone do not pile up; a name whose lookup fails
keeps its last answer, and /health names it until it resolves again.

dnspython is imported on the first lookup: a node without DNS seeds never loads it (some
2.4 MB of its memory).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio

from gossip.errors import ConfigError

if TYPE_CHECKING:
    from dns.asyncresolver import Resolver

PREFIX = "dns:"
SRV_PREFIX = "_gossip._tcp."
LOOKUP_TIMEOUT = 5.0  # seconds one name's lookup may take, all its queries together
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
log = logging.getLogger("gossip.dns")


class LookupFailed(Exception):
    """A DNS seed gave no address: the DNS error, in words."""


@dataclass(frozen=True, slots=True)
class DnsSeed:
    name: str
    port: int | None = None  # None: the ports come with the SRV records

    def __str__(self) -> str:
        return PREFIX + self.name + ("" if self.port is None else f":{self.port}")

    @property
    def query(self) -> str:
        """The name looked up: the name itself, or the SRV name under it."""
        return self.name if self.port is not None else SRV_PREFIX + self.name

    @property
    def what_to_check(self) -> str:
        records = (f"A or AAAA records of {self.name}" if self.port is not None else
                   f"SRV records of {self.query} (in Kubernetes: a Service port named gossip)")
        server = "the DNS server in /etc/resolv.conf"
        return f"check the name, that {server} answers, and that the {records} exist"


def parse_seed(spec: str) -> str | DnsSeed:
    """A seed as given to --seeds: a base URL (http or https), or a DnsSeed. ConfigError
    saying what is wrong otherwise."""
    if spec[: len(PREFIX)].lower() == PREFIX:
        return _parse_dns(spec, spec[len(PREFIX) :])
    try:
        parts = urlsplit(spec)
        port = parts.port
    except ValueError as exc:
        raise _bad(spec, f"not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise _bad(spec, "the scheme must be http, https or dns (as in http://10.0.0.4:8000 or "
                   f"dns:gossip.example:8000), not {parts.scheme!r}")
    if not parts.hostname:
        raise _bad(spec, "names no host")
    if port == 0:
        raise _bad(spec, "port 0 cannot be reached")
    return spec


def _parse_dns(spec: str, rest: str) -> DnsSeed:
    name, colon, port_text = rest.partition(":")
    port = None
    if colon:
        if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
            raise _bad(spec, f"the port must be a number from 1 to 65535, not {port_text!r}")
        port = int(port_text)
    if not name:
        raise _bad(spec, "the name is empty (dns:<name>:<port> or dns:<name>)")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise _bad(spec, f"{name} is an address, not a name: give it as http://{name}:<port>")
    labels = name.removesuffix(".").split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _bad(spec, f"{name!r} is not a DNS name (dot-separated labels of 1 to 63 letters, digits, "
                   "'-' and '_')")
    return DnsSeed(name, port)


def _bad(spec: str, problem: str) -> ConfigError:
    return ConfigError("seeds", f"{spec!r}: {problem}")


def split_seeds(seeds: Iterable[str]) -> tuple[tuple[str, ...], tuple[DnsSeed, ...]]:
    """The base URLs and the DNS seeds among `seeds` (ConfigError for a bad one)."""
    urls, names = [], []
    for spec in seeds:
        seed = parse_seed(spec)
        if isinstance(seed, DnsSeed):
            names.append(seed)
        else:
            urls.append(seed)
    return tuple(urls), tuple(dict.fromkeys(names))


def base_url(scheme: str, address: str, port: int) -> str:
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    return f"{scheme}://{host}:{port}"


def replace_derived(
    seeds: Sequence[str], before: Collection[str], after: Sequence[str], keep: Collection[str]
) -> tuple[str, ...]:
    """`seeds` with the DNS-derived ones of `before` replaced by those of `after`; the
    seeds in `keep` (given as URLs) and any not derived from DNS stay."""
    kept = [s for s in seeds if s not in before or s in keep]
    return (*kept, *(s for s in after if s not in kept))


async def lookup(seed: DnsSeed, resolver: Resolver, timeout: float) -> list[tuple[str, int]]:
    """(address, port) of each node `seed` names; LookupFailed with the DNS error."""
    import dns.exception
    import dns.rdtypes.IN.SRV

    try:
        if seed.port is not None:
            return [(a, seed.port) for a in await _addresses(resolver, seed.name, timeout)]
        answer = await resolver.resolve(seed.query, "SRV", search=True, lifetime=timeout)
    except (dns.exception.DNSException, OSError) as exc:
        raise LookupFailed(str(exc) or type(exc).__name__) from exc
    targets = sorted({(r.target.to_text(), r.port) for r in answer
                      if isinstance(r, dns.rdtypes.IN.SRV.SRV) and r.target.to_text() != "."})
    found: list[tuple[str, int]] = []
    errors: list[str] = []

    async def resolve_target(target: str, port: int) -> None:
        try:
            found.extend((a, port) for a in await _addresses(resolver, target, timeout))
        except (dns.exception.DNSException, OSError) as exc:
            errors.append(f"{target}: {exc}")

    async with anyio.create_task_group() as tg:
        for target, port in targets:
            tg.start_soon(resolve_target, target, port)
    if not found:  # (a target gone between the two queries is skipped, all of them is a failure)
        raise LookupFailed(f"the targets of {seed.query} give no address: {'; '.join(errors)}" if errors
                           else f"{seed.query} has no SRV record with a target")
    return sorted(found)


async def _addresses(resolver: Resolver, name: str, timeout: float) -> list[str]:
    answers = await resolver.resolve_name(name, search=True, lifetime=timeout)
    return sorted(set(answers.addresses()))


@dataclass
class DnsSeeds:
    """What a node's DNS seeds give now, as base URLs of peers (the node's own left out)."""

    seeds: tuple[DnsSeed, ...]
    scheme: str  # the node's own: peers serve what it serves
    me: str  # the node's own base URL
    node_id: str = ""  # (for the log)
    timeout: float = LOOKUP_TIMEOUT
    found: dict[DnsSeed, tuple[str, ...]] = field(default_factory=dict)  # each name's last answer
    failed: dict[DnsSeed, str] = field(default_factory=dict)  # why each name failing now fails

    def addresses(self) -> tuple[str, ...]:
        every = (url for seed in self.seeds for url in self.found.get(seed, ()))
        return tuple(dict.fromkeys(url for url in every if url != self.me))

    async def resolve(self) -> None:
        """Look every name up once (together), and log what changed."""
        import dns.asyncresolver
        import dns.exception

        try:
            resolver = dns.asyncresolver.Resolver()  # reads /etc/resolv.conf (again: it may change)
        except (dns.exception.DNSException, OSError) as exc:
            self.failed = {seed: f"no DNS resolver: {exc}" for seed in self.seeds}
            return
        async with anyio.create_task_group() as tg:
            for seed in self.seeds:
                tg.start_soon(self._resolve, resolver, seed)

    async def _resolve(self, resolver: Resolver, seed: DnsSeed) -> None:
        try:
            found = await lookup(seed, resolver, self.timeout)
        except LookupFailed as exc:
            self.failed[seed] = str(exc)
            return
        self.failed.pop(seed, None)
        urls = tuple(sorted({base_url(self.scheme, address, port) for address, port in found}))
        before = self.found.get(seed, ())
        if urls != before:
            came, went = sorted(set(urls) - set(before)), sorted(set(before) - set(urls))
            log.info("%s: DNS seed %s: came %s; went %s (%d in all)", self.node_id, seed,
                     ", ".join(came) or "none", ", ".join(went) or "none", len(urls))
        self.found[seed] = urls
