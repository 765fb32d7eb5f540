"""A sign-in challenge ends once: an attempt on an ended challenge never brings its key back
(without a TTL), concurrent finishes open one session, a partial record is no challenge, and a
password reset since the first factor voids it."""

from __future__ import annotations

import asyncio
import hashlib

import httpx

from services.auth.factors import challenges
from services.auth.factors.challenges import Attempt
from shared.opaque_tokens import decode_token
from tests.auth.factors.helpers import challenge_of, code_at, enrol_totp, second_factor
from tests.auth.helpers import PREFIX, AuthApp, admin, last_token, login, signup


async def _live_challenge(auth: AuthApp, client: httpx.AsyncClient) -> tuple[str, str, list[str], str]:
    """(email, TOTP secret, recovery codes, a live sign-in challenge) of a new account."""
    email, verified = await signup(client, auth.settings)
    secret, codes = await enrol_totp(client, verified.json()["access_token"])
    return email, secret, codes, challenge_of(await login(client, email))["challenge"]


async def test_an_attempt_on_an_ended_challenge_does_not_revive_it(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    _, _, _, token = await _live_challenge(auth, client)
    state = auth.state
    loaded = await challenges.load(state, token)
    assert loaded is not None
    assert await challenges.count_attempt(state, loaded) is Attempt.COUNTED
    assert 0 < await state.redis.ttl(loaded.key) <= auth.settings.second_factor_challenge_ttl_seconds

    # Another request finished it between this one's load and its attempt.
    assert await challenges.consume(state, loaded)
    assert await challenges.count_attempt(state, loaded) is Attempt.GONE
    assert not await state.redis.exists(loaded.key)  # no key left behind without a TTL
    assert not await challenges.consume(state, loaded)  # so nobody can finish it again


async def test_a_partial_record_is_no_challenge(auth: AuthApp, client: httpx.AsyncClient) -> None:
    _, _, _, token = await _live_challenge(auth, client)
    raw = decode_token(token)
    assert raw is not None
    key = challenges._key(auth.state, hashlib.sha256(raw).digest())
    await auth.state.redis.delete(key)
    await auth.state.redis.hset(key, "attempts", "1")  # type: ignore[misc]  # what a stray HINCRBY leaves
    await auth.state.redis.expire(key, 60)
    assert await challenges.load(auth.state, token) is None
    answer = await second_factor(client, token, totp_code="123456")
    assert answer.status_code == 401
    assert answer.json()["type"].endswith("/invalid-second-factor-challenge")


async def test_concurrent_finishes_open_exactly_one_session(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, secret, codes, token = await _live_challenge(auth, client)
    answers = await asyncio.gather(
        second_factor(client, token, totp_code=code_at(secret, 1)),
        second_factor(client, token, recovery_code=codes[0]),
        second_factor(client, token, recovery_code=codes[1]),
    )
    assert sorted(a.status_code for a in answers) == [200, 401, 401], [a.text for a in answers]
    async with admin(admin_dsn) as conn:
        sessions = await conn.fetchval(
            "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id"
            " WHERE u.email = $1 AND s.acr = 'aal2' AND s.revoked_at IS NULL",
            email,
        )
    assert sessions == 2  # the enrolling session and the one sign-in


async def test_a_password_reset_voids_a_pending_challenge(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email, secret, _, token = await _live_challenge(auth, client)
    assert (await client.post(f"{PREFIX}/password/forgot", json={"email": email})).status_code == 202
    reset_token = await last_token(auth.settings, email, "password_reset")
    reset = await client.post(
        f"{PREFIX}/password/reset", json={"token": reset_token, "password": "a brand new password"}
    )
    assert reset.status_code == 204

    stale = await second_factor(client, token, totp_code=code_at(secret, 1))
    assert stale.status_code == 401
    assert stale.json()["type"].endswith("/invalid-second-factor-challenge")
    fresh = challenge_of(await login(client, email, "a brand new password"))["challenge"]
    assert (await second_factor(client, fresh, totp_code=code_at(secret, 1))).status_code == 200
