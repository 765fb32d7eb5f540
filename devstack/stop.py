"""`make stop`: stop a local stack left behind (a killed `make run`, a closed terminal).

    python -m devstack.stop [--root .dev]

Asks the `make run` process to stop (SIGTERM: it stops everything in order). What outlives it,
or runs without it, is stopped here: the services and Redis from `<root>/devstack.pids`
(only processes whose command line looks like ours), PostgreSQL with `pg_ctl stop`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from devstack.paths import add_root_argument
from devstack.postgres import EmbeddedPostgres, _run_as

# A pid is only signalled if its command line contains one of these (pids get reused).
OURS = ("devstack", "uvicorn", "services.", "traefik", "redis-server")


def read_pids(path: Path) -> dict[str, int]:
    pids: dict[str, int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, pid = line.partition(" ")
            if pid.strip().isdigit():
                pids[name] = int(pid)
    return pids


def is_ours(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return any(mark in cmdline for mark in OURS)


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [pid for pid in pids if is_ours(pid)]
        if not pids:
            return []
        time.sleep(0.2)
    return pids


def stop(root: Path, grace: float = 30.0) -> list[str]:
    """Stop whatever the stack under `root` left running; return what was done."""
    done: list[str] = []
    pids = read_pids(root / "devstack.pids")
    runner = pids.pop("devstack", None)
    if runner is not None and is_ours(runner):
        os.kill(runner, signal.SIGTERM)
        done.append(f"asked make run ({runner}) to stop")
        wait_gone([runner], grace + 30)
    left = {name: pid for name, pid in pids.items() if is_ours(pid)}
    for name, pid in left.items():
        os.kill(pid, signal.SIGTERM)
        done.append(f"stopped {name} ({pid})")
    for pid in wait_gone(list(left.values()), grace):
        os.kill(pid, signal.SIGKILL)
    server = EmbeddedPostgres(root / "postgres")
    if (server.data_dir / "postmaster.pid").exists():
        server.user = _run_as()
        server.stop()
        done.append("stopped PostgreSQL")
    (root / "devstack.pids").unlink(missing_ok=True)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.stop", description=__doc__.split("\n\n")[0])
    add_root_argument(parser, "the stack's data directory (.dev/ or $DEVSTACK_ROOT)")
    args = parser.parse_args(argv)
    done = stop(args.root.resolve())
    print("devstack | " + ("; ".join(done) if done else "nothing was running"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
