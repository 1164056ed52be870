"""Direct probes (R23) over HTTP: the probe messages peers POST to /probe (node.web.peer_api),
handled by the core, and the loop that ticks the core's probes when they are due and sends
what they, and the messages we were sent, ask for: each message on its own, one-way,
never waited on (`Transport.send_probe`). Runs only with --probe-interval set.

Every touch of the protocol holds the local state's lock (node.server.local_state), never
across an await."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping

import anyio
import anyio.abc

from gossip.codec import Codec
from gossip.errors import PeerError
from gossip.probe_messages import ProbeOut
from node.server.inbox import Signatures
from node.server.local_state import LocalState
from node.wire.traffic import Traffic
from node.wire.transport import Transport, wall_ms

log = logging.getLogger("gossip.node")


class ProbeLoop:
    def __init__(self, local: LocalState, signatures: Signatures, codec: Codec, traffic: Traffic,
                 sender: Transport, rejected: Counter[str]) -> None:
        """`rejected`: where refused messages are counted, by error type (the inbox's)."""
        self.local, self.protocol = local, local.protocol
        self.signatures, self.codec, self.traffic, self.sender = signatures, codec, traffic, sender
        self.rejected = rejected
        self._ready = anyio.Event()  # a probe message came: what it asks goes out at once
        self._out: list[ProbeOut] = []

    @property
    def on(self) -> bool:
        return self.protocol.probes is not None

    def receive(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Handle a probe message; what it asks for (an ack, a relayed ping) goes out from
        the loop at once. False if this node does not probe. Raises PeerError having
        applied nothing."""
        probes = self.protocol.probes
        if probes is None:
            return False
        try:
            self.signatures.verify(headers, body)
            message = self.codec.decode_probe(body)
            with self.local.lock:
                self._out.extend(probes.handle(message, wall_ms()))
        except PeerError as exc:
            self.rejected[type(exc).__name__] += 1
            log.warning("%s: rejected a probe: %s", self.local.id, exc)
            raise
        self.traffic.count("probe", "received", len(body))
        if self._out:
            self._ready.set()
        return True

    async def run(self) -> None:
        """Tick the probes when they are due, and send what they and the probe messages
        we were sent ask for, each in a task of its own."""
        probes = self.protocol.probes
        if probes is None:
            return
        async with anyio.create_task_group() as tg:
            while True:
                with self.local.lock:
                    outgoing = [*self._out, *probes.tick(wall_ms())]
                    self._out.clear()
                    due = probes.next_due()
                for out in outgoing:
                    tg.start_soon(self.sender.send_probe, out.address, out.message)
                with anyio.move_on_after(max(0.0, (due - wall_ms()) / 1000)):
                    await self._ready.wait()
                self._ready = anyio.Event()
