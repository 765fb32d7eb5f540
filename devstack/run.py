"""`make run`: the whole BlockBot core stack on this machine, no Docker.

    python -m devstack.run            # http://localhost:8080, data under .dev/

Starts (or reuses `DATABASE_URL` / `REDIS_URL` when given) an embedded PostgreSQL and a local
Redis, runs the migrate job, generates development secrets once (kept in `.dev/secrets.env`),
then runs auth, api, worker and a real Traefik, supervised. The pieces:

* `devstack.stack.StackRunner` does the work in this process (what `make run` executes);
* `devstack.traefik` is Traefik's static configuration, `devstack.readiness` the probes;
* `LocalStack` (here) is a handle that starts `python -m devstack.run` as a separate process on
  the ports and directory it is given, waits until everything is ready and stops it with
  SIGTERM: the end-to-end tests use it, so they exercise exactly what `make run` does.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devstack.env_file import read_env_file, write_env_file
from devstack.paths import ROOT, add_root_argument
from devstack.ports import Ports, port_in_use
from devstack.readiness import PARTS, http_get, readiness, wait_ready
from devstack.stack import (
    DATABASE_NAME,
    DEFAULT_DB_ROLE_PREFIX,
    MANAGED_VARIABLES,
    SERVICE_MODULES,
    StackRunner,
    graceful_stop_seconds,
    module_exists,
    shown_url,
)
from devstack.supervisor import ProcessSpec
from devstack.traefik import TRAEFIK_DYNAMIC_DIR, traefik_binary, traefik_command, traefik_tracing_flags

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

# Re-exported: tests, scripts and other modules import these from here.
__all__ = [
    "DATABASE_NAME",
    "DEFAULT_DB_ROLE_PREFIX",
    "MANAGED_VARIABLES",
    "PARTS",
    "ROOT",
    "SERVICE_MODULES",
    "TRAEFIK_DYNAMIC_DIR",
    "LocalStack",
    "Ports",
    "ProcessSpec",
    "StackRunner",
    "graceful_stop_seconds",
    "http_get",
    "main",
    "module_exists",
    "port_in_use",
    "read_env_file",
    "readiness",
    "shown_url",
    "traefik_binary",
    "traefik_command",
    "traefik_tracing_flags",
    "wait_ready",
    "write_env_file",
]


@dataclass
class LocalStack:
    """`python -m devstack.run` as a separate process on given ports and data directory."""

    root: Path
    ports: Ports = field(default_factory=Ports.free)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def log_path(self) -> Path:
        return self.root / "stack.log"

    def start(self) -> LocalStack:
        self.root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "BLOCKBOT_PG_DURABLE": "0", **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack.run", "--root", str(self.root), *self.ports.as_args()],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 120.0, parts: Sequence[str] = PARTS) -> None:
        try:
            wait_ready(self.ports, timeout=timeout, alive=self.alive, parts=parts)
        except (TimeoutError, RuntimeError) as error:
            raise RuntimeError(f"{error}\n--- stack log ---\n{self.log_tail()}") from None

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 45.0) -> int | None:
        """SIGTERM, as Ctrl-C would; SIGKILL the whole group only if it does not stop."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.run", description=__doc__.split("\n\n")[0])
    add_root_argument(parser, "where data, secrets, logs and the outbox live (.dev/ or $DEVSTACK_ROOT)")
    defaults = Ports()
    for name, value in asdict(defaults).items():
        env_name = f"DEVSTACK_{name.upper()}_PORT"
        parser.add_argument(
            f"--{name.replace('_', '-')}-port",
            type=int,
            dest=f"port_{name}",
            default=int(os.environ.get(env_name, value)),
            help=f"default {value} (or ${env_name})",
        )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ports = Ports(**{name: getattr(args, f"port_{name}") for name in asdict(Ports())})
    runner = StackRunner(
        root=args.root.resolve(),
        ports=ports,
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
    )
    try:
        return runner.run()
    except KeyboardInterrupt:
        runner.say("interrupted")
        return 130
    except RuntimeError as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
