"""TOTP: enrolment, codes accepted once within ±1 step, wrong codes limited, secrets sealed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pyotp
import pytest
from pydantic import SecretStr

from services.auth.factors.crypto import SecretBox, key_id, load_secret_box
from shared.access_tokens import b64url_encode
from shared.settings import SettingsError, load_settings
from tests.auth.factors.helpers import (
    audit_actions,
    auth_header,
    challenge_of,
    claims_of,
    code_at,
    enrol_totp,
    second_factor,
)
from tests.auth.helpers import PREFIX, AuthApp, admin, login, signup


async def test_enrolment_is_enabled_only_by_a_correct_code(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, verified = await signup(client, auth.settings)
    token = verified.json()["access_token"]
    started = await client.post(f"{PREFIX}/factors/totp", headers=auth_header(token))
    assert started.status_code == 200
    body = started.json()
    assert started.headers["cache-control"] == "no-store"
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert body["qr_svg"].startswith("<svg")
    secret = body["secret"]

    # Not enabled yet: a password alone still signs in, and a wrong code enables nothing.
    assert (await login(client, email)).status_code == 200
    wrong = await client.post(
        f"{PREFIX}/factors/totp/enable", json={"code": "000000"}, headers=auth_header(token)
    )
    if wrong.status_code != 400:  # 000000 may be the real code once in a million
        assert code_at(secret) == "000000"
    factors = await client.get(f"{PREFIX}/factors", headers=auth_header(token))
    assert factors.json()["totp_enabled"] is False

    enabled = await client.post(
        f"{PREFIX}/factors/totp/enable", json={"code": code_at(secret)}, headers=auth_header(token)
    )
    assert enabled.status_code == 200, enabled.text
    codes = enabled.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    factors = await client.get(f"{PREFIX}/factors", headers=auth_header(token))
    assert factors.json() == {
        "totp_enabled": True,
        "passkeys": [],
        "recovery_codes_remaining": 10,
        "org_requires_second_factor": False,
    }
    # A second enrolment is refused while one is enabled.
    again = await client.post(f"{PREFIX}/factors/totp", headers=auth_header(token))
    assert again.status_code == 409
    user_id = verified.json()["user"]["id"]
    assert "second_factor.totp_enabled" in await audit_actions(admin_dsn, user_id)


async def test_code_valid_once_then_replay_refused_and_skew_of_one_step(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    email, verified = await signup(client, auth.settings)
    # Enabled with the previous step's code: one step of skew behind is accepted.
    secret, _ = await enrol_totp(client, verified.json()["access_token"], offset_steps=-1)

    first = challenge_of(await login(client, email))
    assert first["methods"] == ["totp", "recovery_code"]
    # The enabling code (step -1) is spent: a replay of it is refused.
    replayed = await second_factor(client, first["challenge"], totp_code=code_at(secret, -1))
    assert replayed.status_code == 401
    assert replayed.json()["type"].endswith("/invalid-second-factor")
    # Two steps ahead is outside the skew.
    far = await second_factor(client, first["challenge"], totp_code=code_at(secret, 3))
    assert far.status_code == 401
    ok = await second_factor(client, first["challenge"], totp_code=code_at(secret, 1))
    assert ok.status_code == 200, ok.text
    claims = claims_of(ok.json()["access_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "aal2"

    # The challenge was single use, and the code just accepted is not accepted again.
    assert (await second_factor(client, first["challenge"], totp_code=code_at(secret, 1))).status_code == 401
    second = challenge_of(await login(client, email))
    replay = await second_factor(client, second["challenge"], totp_code=code_at(secret, 1))
    assert replay.status_code == 401
    assert replay.json()["type"].endswith("/invalid-second-factor")


async def test_wrong_codes_are_limited_per_challenge(start_auth: Callable[..., Any]) -> None:
    async with (
        start_auth(
            ratelimit_second_factor_per_account_network_per_hour=1000,
            ratelimit_second_factor_per_account_per_day=1000,
        ) as auth,
        auth.client() as client,
    ):
        email, verified = await signup(client, auth.settings)
        secret, _ = await enrol_totp(client, verified.json()["access_token"])
        challenge = challenge_of(await login(client, email))["challenge"]
        wrong = "".join(str((int(d) + 5) % 10) for d in code_at(secret, 1))
        for _ in range(auth.settings.second_factor_attempts_per_challenge):
            assert (await second_factor(client, challenge, totp_code=wrong)).status_code == 401
        # Out of attempts: even the right code no longer finishes this challenge.
        spent = await second_factor(client, challenge, totp_code=code_at(secret, 1))
        assert spent.status_code == 401
        assert spent.json()["type"].endswith("/invalid-second-factor-challenge")
        # A new sign-in gets a new challenge.
        fresh = challenge_of(await login(client, email))["challenge"]
        assert (await second_factor(client, fresh, totp_code=code_at(secret, 1))).status_code == 200


async def test_wrong_codes_are_limited_per_account_across_challenges(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, verified = await signup(client, auth.settings)
    secret, _ = await enrol_totp(client, verified.json()["access_token"])
    wrong = "".join(str((int(d) + 5) % 10) for d in code_at(secret, 1))
    budget = auth.settings.ratelimit_second_factor_per_account_network_per_hour
    used = 0
    while used < budget:  # bounded: at most `budget` attempts over fresh challenges
        challenge = challenge_of(await login(client, email))["challenge"]
        for _ in range(min(2, budget - used)):
            assert (await second_factor(client, challenge, totp_code=wrong)).status_code == 401
            used += 1
    challenge = challenge_of(await login(client, email))["challenge"]
    limited = await second_factor(client, challenge, totp_code=code_at(secret, 1))
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    failed = await audit_actions(admin_dsn, verified.json()["user"]["id"])
    assert failed.count("auth.second_factor_failed") == budget


async def test_secret_is_sealed_at_rest_and_follows_key_rotation(
    start_auth: Callable[..., Any], auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, verified = await signup(client, auth.settings)
    secret, _ = await enrol_totp(client, verified.json()["access_token"])
    user_id = verified.json()["user"]["id"]
    async with admin(admin_dsn) as conn:
        row = await conn.fetchrow(
            "SELECT secret_ciphertext, key_id FROM totp_factors WHERE user_id = $1", user_id
        )
    assert row is not None
    assert secret.encode() not in bytes(row["secret_ciphertext"])
    old_kid = row["key_id"]
    assert old_kid == load_secret_box(auth.settings).current_kid

    new_key = b64url_encode(bytes(range(32)))
    old_keys = [k.get_secret_value() for k in auth.settings.totp_encryption_keys]
    rotated_keys = [*old_keys, new_key] if old_keys else None
    overrides: dict[str, Any] = {"totp_encryption_keys": rotated_keys or _development_then(new_key)}
    async with start_auth(**overrides) as rotated, rotated.client() as rotated_client:
        challenge = challenge_of(await login(rotated_client, email))["challenge"]
        ok = await second_factor(rotated_client, challenge, totp_code=code_at(secret, 1))
        assert ok.status_code == 200, ok.text
    async with admin(admin_dsn) as conn:
        resealed = await conn.fetchval("SELECT key_id FROM totp_factors WHERE user_id = $1", user_id)
    assert resealed == key_id(bytes(range(32))) != old_kid


def _development_then(new_key: str) -> list[str]:
    from services.auth.factors.crypto import DEVELOPMENT_KEY

    return [b64url_encode(DEVELOPMENT_KEY), new_key]


def test_secret_box_opens_only_its_own_user_and_known_keys() -> None:
    box = SecretBox((bytes(32),))
    kid, sealed = box.seal(b"JBSWY3DPEHPK3PXP", b"user-a")
    assert box.open(kid, sealed, b"user-a") == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(Exception, match=kid):
        box.open(kid, sealed, b"user-b")
    with pytest.raises(Exception, match="nope"):
        box.open("nope", sealed, b"user-a")


def test_production_refuses_missing_malformed_or_placeholder_keys() -> None:
    production: dict[str, Any] = {
        "env": "production",
        "app_base_url": "https://app.example.org",
        "email_from": "BlockBot <no-reply@blockbot.dev>",
        "_env_file": None,
    }
    settings = load_settings(**production)
    with pytest.raises(SettingsError, match="TOTP_ENCRYPTION_KEYS"):
        load_secret_box(settings)
    with pytest.raises(SettingsError, match="TOTP_ENCRYPTION_KEYS"):
        load_settings(**production, totp_encryption_keys="change-me-generate-with-make-env")
    short = settings.model_copy(update={"totp_encryption_keys": [SecretStr("c2hvcnQ")]})
    with pytest.raises(SettingsError, match="TOTP_ENCRYPTION_KEYS"):
        load_secret_box(short)
    good = settings.model_copy(update={"totp_encryption_keys": [SecretStr(b64url_encode(bytes(32)))]})
    assert load_secret_box(good).current_kid == key_id(bytes(32))


def test_matching_step_window() -> None:
    from services.auth.factors.totp import matching_step

    secret = pyotp.random_base32()
    now = 1_700_000_015
    totp = pyotp.TOTP(secret)
    current = int(now // 30)
    assert matching_step(secret, totp.at(now), after=0, now=now) == current
    assert matching_step(secret, totp.at(now - 30), after=0, now=now) == current - 1
    assert matching_step(secret, totp.at(now + 30), after=0, now=now) == current + 1
    assert matching_step(secret, totp.at(now + 60), after=0, now=now) is None
    assert matching_step(secret, totp.at(now), after=current, now=now) is None
    assert matching_step(secret, "12345", after=0, now=now) is None


async def test_an_unconfirmed_enrolment_does_not_finish_a_sign_in(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    from tests.auth.factors.authenticator import SoftAuthenticator
    from tests.auth.factors.helpers import enrol_passkey

    email, verified = await signup(client, auth.settings)
    token = verified.json()["access_token"]
    assert (await enrol_passkey(client, token, SoftAuthenticator())).status_code == 201
    started = await client.post(f"{PREFIX}/factors/totp", headers=auth_header(token))
    pending_secret = started.json()["secret"]

    body = challenge_of(await login(client, email))
    assert "totp" not in body["methods"]
    refused = await second_factor(client, body["challenge"], totp_code=code_at(pending_secret))
    assert refused.status_code == 401


async def test_a_secret_under_a_dropped_key_is_a_clear_503(
    start_auth: Callable[..., Any], auth: AuthApp, client: httpx.AsyncClient
) -> None:
    email, verified = await signup(client, auth.settings)
    secret, _ = await enrol_totp(client, verified.json()["access_token"])
    # The operator dropped the key the secret is sealed under.
    async with (
        start_auth(totp_encryption_keys=[b64url_encode(bytes(range(1, 33)))]) as dropped,
        dropped.client() as dropped_client,
    ):
        challenge = challenge_of(await login(dropped_client, email))["challenge"]
        answer = await second_factor(dropped_client, challenge, totp_code=code_at(secret, 1))
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("/totp-key-unavailable")
