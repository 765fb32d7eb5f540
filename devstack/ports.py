"""The local stack's ports, and free loopback ports for servers the tests start."""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on the port."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


@dataclass
class Ports:
    """Every port the stack listens on (all bound to 127.0.0.1)."""

    http: int = 8080  # Traefik, the only public entry point
    ping: int = 8081  # Traefik's /ping and /metrics, on its own entry point, never routed publicly
    auth: int = 8001
    api: int = 8002
    worker_metrics: int = 9102
    postgres: int = 55432
    redis: int = 56379

    @classmethod
    def free(cls) -> Ports:
        """Fresh free ports for everything (tests, several stacks side by side)."""
        return cls(*(free_port() for _ in range(7)))

    def as_args(self) -> list[str]:
        return [
            arg
            for name, value in asdict(self).items()
            for arg in (f"--{name.replace('_', '-')}-port", str(value))
        ]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
