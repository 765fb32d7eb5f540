"""Is the local stack ready: each service's /ready, the worker, Traefik and its two routes."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from devstack.ports import Ports


def http_get(url: str, timeout: float = 2.0) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


PARTS = ("auth", "api", "worker", "traefik", "route auth", "route api")


def readiness(ports: Ports, parts: Sequence[str] = PARTS) -> dict[str, bool]:
    """Which of the parts answer as ready right now."""

    def ok(url: str, check: Callable[[int, dict[str, str]], bool] | None = None) -> bool:
        try:
            status, headers, _ = http_get(url)
        except OSError:
            return False
        return bool(check(status, headers)) if check else status == 200

    def routed(status: int, headers: dict[str, str]) -> bool:
        # An unknown path under a route is the service's own problem+json 404, while a path
        # Traefik does not route is its plain-text 404: this proves the routes are loaded.
        return "problem+json" in headers.get("content-type", headers.get("Content-Type", ""))

    gateway = f"http://127.0.0.1:{ports.http}"
    probes: dict[str, Callable[[], bool]] = {
        "auth": lambda: ok(f"http://127.0.0.1:{ports.auth}/ready"),
        "api": lambda: ok(f"http://127.0.0.1:{ports.api}/ready"),
        "worker": lambda: (
            ok(f"http://127.0.0.1:{ports.worker_metrics}/health")
            or ok(f"http://127.0.0.1:{ports.worker_metrics}/metrics")
        ),
        "traefik": lambda: ok(f"http://127.0.0.1:{ports.ping}/ping"),
        "route auth": lambda: ok(f"{gateway}/api/v1/auth/__devstack_probe__", routed),
        "route api": lambda: ok(f"{gateway}/api/v1/__devstack_probe__", routed),
    }
    state: dict[str, bool] = {}
    for part in parts:
        backend = part.removeprefix("route ")
        # A route is probed only once its service and Traefik answer: no stream of 502 lines in
        # Traefik's access log while the services start.
        if backend != part and not (state.get(backend, True) and state.get("traefik", True)):
            state[part] = False
            continue
        state[part] = probes[part]()
    return state


def wait_ready(
    ports: Ports,
    timeout: float = 90.0,
    alive: Callable[[], bool] | None = None,
    parts: Sequence[str] = PARTS,
) -> None:
    """Poll until every part is ready; `alive()` returning False aborts early."""
    deadline = time.monotonic() + timeout
    state: dict[str, bool] = {}
    done: set[str] = set()
    while time.monotonic() < deadline:
        # A part that answered once is not asked again (each probe is an access log line).
        state = readiness(ports, [part for part in parts if part not in done])
        done |= {part for part, ready in state.items() if ready}
        if done >= set(parts):
            return
        if alive is not None and not alive():
            raise RuntimeError("the stack exited before it was ready")
        time.sleep(0.2)
    waiting = ", ".join(name for name, ready in state.items() if not ready)
    raise TimeoutError(f"not ready after {timeout:.0f}s: {waiting}")
