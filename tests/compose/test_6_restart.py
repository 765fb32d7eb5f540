"""Part 6: `down` then `up --wait`: users, sessions and queued emails are still there. Then
issue 17's operator tasks, once against this Compose stack, with the Makefile's own targets:
backup, destroy the data volume, restore; signing-key rotation add, promote, retire.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.compose.accounts import login, register
from tests.compose.stack import PROJECT, ComposeStack
from tests.compose.timings import FACTS, part_timer, timed
from tests.e2e.helpers import PASSWORD, REFRESH_COOKIE, account_from, assert_problem

pytestmark = [pytest.mark.compose, pytest.mark.slow]
_part = part_timer("part 6: down + up persistence (total)")


def test_users_sessions_and_queued_emails_survive_down_and_up(
    stack: ComposeStack, client: httpx.Client
) -> None:
    account = register(client, stack, "durable")
    stack.run("stop", "worker")
    queued = client.post("/api/v1/auth/magic-link", json={"email": account.email})
    assert queued.status_code == 202, queued.text  # the job waits in Redis: no worker

    started = time.monotonic()
    stack.down(volumes=False)
    stack.up()
    timed("part 6: down, then up --wait", started)

    assert login(client, account.email).user_id == account.user_id  # the user
    rotated = client.post("/api/v1/auth/refresh", headers={"Cookie": f"{REFRESH_COOKIE}={account.refresh}"})
    assert account_from(rotated, account.email).user_id == account.user_id  # the session
    assert stack.wait_for_email(account.email, "/auth/magic#token=")  # the queued email


def audit_rows(stack: ComposeStack, org_id: str) -> list[str]:
    return stack.psql(
        f"SELECT id, action, coalesce(target_id, ''), created_at FROM audit_log "
        f"WHERE org_id = '{org_id}' ORDER BY id"
    ).stdout.splitlines()


def forced_rls(stack: ComposeStack) -> str:
    return stack.psql(
        "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relrowsecurity AND relforcerowsecurity"
    ).stdout.strip()


def test_backup_destroy_the_volume_restore(stack: ComposeStack, client: httpx.Client, tmp_path: Path) -> None:
    """make backup-compose; down; `docker volume rm <project>_pgdata`; make restore-compose."""
    account = register(client, stack, "backup")
    audit = audit_rows(stack, account.org_id)
    rls = forced_rls(stack)
    assert audit and "sessions" in rls.split(","), (audit, rls)
    dump = tmp_path / "blockbot.dump"
    started = time.monotonic()
    assert "backup written to" in stack.make("backup-compose", f"FILE={dump}").stdout
    timed("part 6: make backup-compose", started)
    FACTS["part 6: backup file"] = f"{dump.stat().st_size / 1024:.0f} KiB"
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    later = register(client, stack, "after-backup")  # gone after the restore

    stack.down(volumes=False)
    removed = subprocess.run(
        ["docker", "volume", "rm", f"{PROJECT}_pgdata"], capture_output=True, text=True, check=False
    )
    assert removed.returncode == 0, removed.stderr
    started = time.monotonic()
    stack.make("restore-compose", f"FILE={dump}")
    timed("part 6: make restore-compose (empty volume, roles, restore, migrate, Redis, up)", started)

    assert login(client, account.email).user_id == account.user_id  # the same user logs in
    # The refresh cookie issued before the backup still rotates.
    rotated = client.post("/api/v1/auth/refresh", headers={"Cookie": f"{REFRESH_COOKIE}={account.refresh}"})
    assert account_from(rotated, account.email).user_id == account.user_id
    assert audit_rows(stack, account.org_id)[: len(audit)] == audit  # the audit log intact
    update = stack.psql("UPDATE audit_log SET action = 'x'", check=False)
    assert update.returncode != 0 and "append-only" in update.stderr, update  # still append-only
    assert forced_rls(stack) == rls  # RLS still forced on the same tables
    refused = client.post("/api/v1/auth/login", json={"email": later.email, "password": PASSWORD})
    assert_problem(refused, 401)  # an account made after the backup is gone
    orgs = [json.loads(line) for line in stack.make("admin-compose", "ARGS=--json orgs").stdout.splitlines()]
    assert account.org_id in {org["id"] for org in orgs} and later.org_id not in {o["id"] for o in orgs}


def kid(token: str) -> str:
    header = token.split(".", 1)[0]
    decoded: dict[str, str] = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    return decoded["kid"]


def jwks_kids(client: httpx.Client) -> set[str]:
    response = client.get("/api/v1/auth/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    return {key["kid"] for key in response.json()["keys"]}


def test_signing_key_rotation_add_promote_retire(stack: ComposeStack, client: httpx.Client) -> None:
    """make rotate-key STEP=add|promote|retire, each followed by `up -d --wait auth`."""
    started = time.monotonic()
    account = register(client, stack, "rotation")
    old = kid(account.access)
    assert jwks_kids(client) == {old}

    def step(name: str, *variables: str) -> None:
        stack.make("rotate-key", f"STEP={name}", *variables)
        stack.up("auth")

    step("add")
    staged = jwks_kids(client) - {old}
    assert len(staged) == 1, staged  # published at once...
    assert kid(login(client, account.email).access) == old  # ...not signing
    # The procedure waits 5 minutes here, until every JWKS cache holds the staged key; the
    # api's start-up fetch stands in for that wait.
    stack.up("--force-recreate", "--no-deps", "api")

    step("promote")
    new = login(client, account.email)
    assert kid(new.access) in staged  # new tokens carry the new kid
    assert client.get("/api/v1/me", headers=account.auth).status_code == 200  # signed before it
    assert client.get("/api/v1/me", headers=new.auth).status_code == 200

    step("retire", "FORCE=1")  # FORCE: the access-token lifetime has not passed yet
    assert jwks_kids(client) == staged
    # The api drops the retired key at its next JWKS revalidation (JWKS_REVALIDATE_SECONDS);
    # restarting it here keeps the test off the clock.
    stack.up("--force-recreate", "--no-deps", "api")
    assert_problem(client.get("/api/v1/me", headers=account.auth), 401)  # the old key's token
    assert client.get("/api/v1/me", headers=new.auth).status_code == 200
    # Refresh cookies are not signed: one issued under the old key still rotates, to the new kid.
    rotated = client.post("/api/v1/auth/refresh", headers={"Cookie": f"{REFRESH_COOKIE}={account.refresh}"})
    assert kid(account_from(rotated, account.email).access) in staged
    timed("part 6: key rotation add, promote, retire (3 auth and 2 api restarts)", started)
