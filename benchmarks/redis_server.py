"""A private redis-server on 127.0.0.1 and a free port, for the baselines."""

from __future__ import annotations

import time

import redis

from benchmarks.system import HOST, Process
from node.tools.local_cluster import free_ports


class RedisServer:
    def __init__(self) -> None:
        self.port = free_ports(1)[0]
        self.url = f"redis://{HOST}:{self.port}/0"
        argv = ["redis-server", "--bind", HOST, "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no"]
        self.process = Process("redis", argv)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=1.0)
        while True:
            self.process.check_alive()
            try:
                client.ping()
                client.close()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise TimeoutError("redis-server did not answer PING") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.stop()
