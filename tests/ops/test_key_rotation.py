"""Signing-key rotation without logging anyone out: add (published, not signing) -> promote
(new tokens carry its kid) -> retire. The auth service runs as a real process restarted on the
edited env file after each step, as an operator would; the api (in-process) is never restarted
and fetches the JWKS from that process over HTTP.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt
import pytest

from devstack.ports import free_port
from devstack.run import read_env_file
from services.auth import key_rotation
from services.auth.key_rotation import EnvFile, RotationError
from services.auth.keys import generate_seed, load_keyring, parse_private_key
from tests.api.helpers import Member, Minter
from tests.helpers import uvicorn_process
from tests.ops.helpers import FAST_HASHING, ROOT, AdminCli

pytestmark = pytest.mark.slow

OWNER_PASSWORD = "rotation owner passphrase"
PREFIX = "/api/v1/auth"


@contextmanager
def auth_process(env_file: Path, database, redis_url: str, redis_prefix: str, port: int) -> Iterator[str]:
    """The auth service as `uvicorn` on `port`, with JWT_PRIVATE_KEYS from the env file."""
    env = {
        **os.environ,
        **FAST_HASHING,
        "ENV": "test",
        "SERVICE_NAME": "auth",
        "DATABASE_URL": database.auth_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": redis_prefix,
        "COOKIE_SECURE": "false",
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_AUTH_IP_PER_MINUTE": "100000",
        "RATELIMIT_AUTH_EMAIL_PER_HOUR": "100000",
        "JWT_PRIVATE_KEYS": EnvFile.read(env_file).get("JWT_PRIVATE_KEYS") or "",
    }
    with uvicorn_process("services.auth.main:app", env, port, env_file.with_name("auth.log")):
        yield f"http://127.0.0.1:{port}"


def rotate(step: str, env_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`make rotate-key STEP=...` runs exactly this."""
    return subprocess.run(
        [sys.executable, "-m", "services.auth.key_rotation", step, "--env-file", str(env_file), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def published(base: str) -> set[str]:
    document = httpx.get(f"{base}{PREFIX}/.well-known/jwks.json", timeout=10).json()
    return {key["kid"] for key in document["keys"]}


def login(base: str, email: str) -> httpx.Response:
    response = httpx.post(
        f"{base}{PREFIX}/login", json={"email": email, "password": OWNER_PASSWORD}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response


async def test_rotation_keeps_everyone_logged_in_and_retired_keys_are_refused(
    tmp_path,
    admin_cli: AdminCli,
    start_api,
    database,
    redis_url,
    redis_prefix,
):
    env_file = tmp_path / ".env"
    env_file.write_text(f'# operator file\nPOSTGRES_PASSWORD="kept"\nJWT_PRIVATE_KEYS="{generate_seed()}"\n')
    email = f"rotation-{os.urandom(4).hex()}@example.com"
    created = await admin_cli(
        "create-org",
        "--name",
        "Rotation",
        "--owner-email",
        email,
        "--owner-name",
        "Rita",
        "--password-stdin",
        stdin=OWNER_PASSWORD,
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    jwks_url = f"http://127.0.0.1:{port}{PREFIX}/.well-known/jwks.json"

    async def me(token: str) -> int:
        response = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        return int(response.status_code)

    with auth_process(env_file, database, redis_url, redis_prefix, port) as base:
        first = login(base, email)
        old_token, cookie = first.json()["access_token"], first.cookies["bb_refresh"]
        old_kid = kid(old_token)
        assert published(base) == {old_kid}

    # The api revalidates its JWKS every few seconds; the test does not wait that long.
    async with start_api(jwks_url=jwks_url, jwt_public_keys=[], jwks_revalidate_seconds=0.001) as api:
        # 1. add: published at once, not signing.
        added = rotate("add", env_file)
        assert added.returncode == 0, added.stderr
        with auth_process(env_file, database, redis_url, redis_prefix, port) as base:
            keys = published(base)
            new_kid = next(iter(keys - {old_kid}))
            assert keys == {old_kid, new_kid}
            assert kid(login(base, email).json()["access_token"]) == old_kid
            assert await me(old_token) == 200

        # 2. promote: new tokens carry the new kid; the api, never restarted, accepts them, and
        # tokens and refresh cookies from before the promotion keep working.
        promoted = rotate("promote", env_file)
        assert promoted.returncode == 0, promoted.stderr
        with auth_process(env_file, database, redis_url, redis_prefix, port) as base:
            assert published(base) == {old_kid, new_kid}
            new_token = login(base, email).json()["access_token"]
            assert kid(new_token) == new_kid
            assert await me(new_token) == 200
            assert await me(old_token) == 200
            refreshed = httpx.post(f"{base}{PREFIX}/refresh", cookies={"bb_refresh": cookie}, timeout=30)
            assert refreshed.status_code == 200, refreshed.text
            assert kid(refreshed.json()["access_token"]) == new_kid

            # 3. retire refuses while old tokens may still be valid.
            early = rotate("retire", env_file)
            assert early.returncode == 1 and "retire in" in early.stderr

        # ...and goes through once the access-token lifetime has passed since the promotion.
        env = EnvFile.read(env_file)
        env.set("JWT_KEYS_PROMOTED_AT", str(int(time.time()) - 3600))
        env.write()
        retired = rotate("retire", env_file)
        assert retired.returncode == 0, retired.stderr
        assert f"retired {old_kid}" in retired.stdout
        with auth_process(env_file, database, redis_url, redis_prefix, port) as base:
            assert published(base) == {new_kid}
            # The api drops the retired key at its next JWKS revalidation (seconds).
            assert await me(old_token) == 401
            assert await me(new_token) == 200
            own = httpx.get(
                f"{base}{PREFIX}/sessions", headers={"Authorization": f"Bearer {old_token}"}, timeout=30
            )
            assert own.status_code == 401

    # The file stays the operator's: other lines kept, owner-only, readable by `make run`.
    assert read_env_file(env_file)["POSTGRES_PASSWORD"] == "kept"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "# operator file" in env_file.read_text()


async def test_emergency_procedure_for_a_compromised_key(
    tmp_path, admin_cli: AdminCli, start_api, database, redis_url, redis_prefix
):
    """README, "Signing key compromised", step by step: whoever stole the key mints tokens for
    anyone; after `make rotate-key STEP=emergency` and a restart of auth, the api (never
    restarted) refuses them, and every other token signed before, within JWKS_REVALIDATE_SECONDS
    (tiny here, so the very next request shows it), while people refresh with their cookies."""
    stolen = generate_seed()
    env_file = tmp_path / ".env"
    env_file.write_text(f'JWT_PRIVATE_KEYS="{stolen}"\n')
    email = f"compromised-{os.urandom(4).hex()}@example.com"
    created = await admin_cli(
        "create-org",
        "--name",
        "Stolen",
        "--owner-email",
        email,
        "--owner-name",
        "Sam",
        "--password-stdin",
        stdin=OWNER_PASSWORD,
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    jwks_url = f"http://127.0.0.1:{port}{PREFIX}/.well-known/jwks.json"

    async with start_api(jwks_url=jwks_url, jwt_public_keys=[], jwks_revalidate_seconds=0.001) as api:

        async def me(token: str) -> int:
            response = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            return int(response.status_code)

        with auth_process(env_file, database, redis_url, redis_prefix, port) as base:
            first = login(base, email)
            signed_in, cookie = first.json(), first.cookies["bb_refresh"]
            token = signed_in["access_token"]
            victim = Member(
                uuid.UUID(signed_in["user"]["id"]), uuid.UUID(signed_in["org"]["id"]), email, "Sam", "owner"
            )
            forged = Minter(api.settings, parse_private_key(stolen)).token(victim)
            assert await me(token) == 200
            assert await me(forged) == 200  # what the thief can do until the procedure

        # The procedure: 1. replace every key at once, 2. restart auth.
        rotated = rotate("emergency", env_file)
        assert rotated.returncode == 0, rotated.stderr
        assert f"retired {kid(token)}" in rotated.stdout
        assert stolen not in rotated.stdout + env_file.read_text()
        with auth_process(env_file, database, redis_url, redis_prefix, port) as base:
            # 3. The api refuses the stolen key's tokens, forged or genuine, without a restart.
            assert await me(forged) == 401
            assert await me(token) == 401
            # People refresh with their (unsigned) cookie and carry on with the new key.
            refreshed = httpx.post(f"{base}{PREFIX}/refresh", cookies={"bb_refresh": cookie}, timeout=30)
            assert refreshed.status_code == 200, refreshed.text
            fresh = refreshed.json()["access_token"]
            assert kid(fresh) != kid(token)
            assert await me(fresh) == 200


def test_steps_refuse_out_of_order_and_never_print_keys(tmp_path):
    seed = generate_seed()
    env_file = tmp_path / "secrets.env"
    env_file.write_text(f"JWT_PRIVATE_KEYS={seed}\n")
    with pytest.raises(RotationError, match="run `add` first"):
        key_rotation.run("promote", env_file)
    with pytest.raises(RotationError, match="nothing to retire"):
        key_rotation.run("retire", env_file)
    output = key_rotation.run("add", env_file)
    with pytest.raises(RotationError, match="promote it first"):
        key_rotation.run("add", env_file)
    output += key_rotation.run("status", env_file)
    output += key_rotation.run("promote", env_file, now=1_000_000)
    with pytest.raises(RotationError, match="retire in 930 s"):
        key_rotation.run("retire", env_file, now=1_000_000)
    output += key_rotation.run("retire", env_file, now=1_000_000 + 930)
    keys = EnvFile.read(env_file).get("JWT_PRIVATE_KEYS") or ""
    assert "," not in keys and not keys.startswith("next:") and keys != seed
    text = "\n".join(output)
    assert seed not in text and keys not in text
    assert "staged (published, not signing)" in text and "signing" in text


def test_keyring_publishes_a_staged_key_without_signing_with_it(make_settings):
    old, new = generate_seed(), generate_seed()
    ring = load_keyring(make_settings("auth", jwt_private_keys=[old, f"next:{new}"]))
    staged_kid = key_rotation.kid_of(new)
    assert ring.signing.kid == key_rotation.kid_of(old)
    assert staged_kid in ring.public_keys
    assert staged_kid in {key["kid"] for key in ring.jwks()["keys"]}
    from shared.settings import SettingsError

    with pytest.raises(SettingsError, match="every key is staged"):
        load_keyring(make_settings("auth", jwt_private_keys=[f"next:{new}"]))
