"""Bearer tokens: verified with public keys only; expired, forged, revoked tokens are 401."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import REGISTRY

from services.api.keys import KeysUnconfirmed, PublicKeys
from shared.access_tokens import mark_sessions_revoked, public_jwk
from shared.redis import create_redis
from shared.settings import SettingsError
from tests.api.helpers import Minter, add_session


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/unauthorized")


def failures(reason: str) -> float:
    return REGISTRY.get_sample_value("api_auth_failures_total", {"reason": reason}) or 0.0


async def test_missing_and_malformed_authorization(client):
    before = failures("missing")
    assert_401(await client.get("/api/v1/me"))
    assert failures("missing") == before + 1
    for value in ("Basic abc", "Bearer", "Bearer not.a.jwt", "Token abc"):
        assert_401(await client.get("/api/v1/me", headers={"Authorization": value}))


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 3600},
        {"aud": "someone-else"},
        {"iss": "evil"},
        {"role": "superuser"},
        {"org": None},
        {"sid": None},
        {"sub": "not-a-uuid"},
    ],
    ids=["expired", "wrong-audience", "wrong-issuer", "bad-role", "no-org", "no-sid", "bad-sub"],
)
async def test_invalid_claims_are_401(client, minter, make_org, overrides):
    org = await make_org("owner")
    assert_401(await client.get("/api/v1/me", headers=minter.headers(org.owner, **overrides)))


async def test_leeway_accepts_just_expired_token(client, minter, make_org):
    org = await make_org("owner")
    headers = minter.headers(org.owner, exp=int(time.time()) - 5)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200


async def test_token_signed_by_another_key_is_401(client, minter, make_org):
    org = await make_org("owner")
    forger = Minter(minter.settings, Ed25519PrivateKey.generate())
    assert_401(await client.get("/api/v1/me", headers=forger.headers(org.owner)))
    # Same kid as the real key but another key's signature: still refused.
    forger.kid = minter.kid
    assert_401(await client.get("/api/v1/me", headers=forger.headers(org.owner)))


async def test_alg_none_and_hs256_are_refused(client, minter, make_org):
    import jwt

    org = await make_org("owner")
    claims = {
        "iss": minter.settings.jwt_issuer,
        "aud": minter.settings.jwt_audience,
        "sub": str(org.owner.id),
        "org": str(org.id),
        "role": "owner",
        "sid": str(uuid.uuid4()),
        "jti": "x",
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
    }
    none_token = jwt.encode(claims, None, algorithm="none", headers={"kid": minter.kid})  # type: ignore[arg-type]
    assert_401(await client.get("/api/v1/me", headers={"Authorization": f"Bearer {none_token}"}))
    hs_token = jwt.encode(
        claims,
        minter.public_b64 + "-padding-to-32-bytes",
        algorithm="HS256",
        headers={"kid": minter.kid},
    )
    assert_401(await client.get("/api/v1/me", headers={"Authorization": f"Bearer {hs_token}"}))


async def test_revoked_session_marker_is_401(api, minter, make_org, admin):
    org = await make_org("owner")
    sid = await add_session(admin, org.owner)
    headers = minter.headers(org.owner, sid=sid)
    assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200
    redis = create_redis(api.settings)
    try:
        await mark_sessions_revoked(redis, api.settings, [sid])
    finally:
        await redis.aclose()
    before = failures("revoked")
    response = await api.client.get("/api/v1/me", headers=headers)
    assert_401(response)
    assert failures("revoked") == before + 1
    # Another session of the same user is unaffected.
    assert (await api.client.get("/api/v1/me", headers=minter.headers(org.owner))).status_code == 200


async def test_deleted_user_is_401(client, minter, make_org, admin):
    org = await make_org("owner", "member")
    member = org.by_role("member")
    headers = minter.headers(member)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    await admin.execute("DELETE FROM users WHERE id = $1", member.id)
    assert_401(await client.get("/api/v1/me", headers=headers))


async def test_token_org_must_match_user_org(client, minter, make_org):
    """A token naming another org for a user finds no user under that tenant: 401."""
    org_a, org_b = await make_org("owner"), await make_org("owner")
    headers = minter.headers(org_a.owner, org=str(org_b.id))
    assert_401(await client.get("/api/v1/me", headers=headers))


async def test_stale_role_claim_is_not_trusted(client, minter, make_org, admin):
    org = await make_org("owner", "member")
    member = org.by_role("member")
    # A token still claiming "admin" after a demotion: the database role decides.
    headers = minter.headers(member, role="admin")
    response = await client.patch("/api/v1/org", json={"name": "x"}, headers=headers)
    assert response.status_code == 403


def test_api_requires_public_keys(make_settings):
    from services.api.app import create_api_app

    with pytest.raises(SettingsError):
        create_api_app(make_settings("api"))
    with pytest.raises(SettingsError) as caught:
        create_api_app(make_settings("api", jwt_public_keys=["c2VjcmV0LXZhbHVl"]))
    assert "c2VjcmV0LXZhbHVl" not in str(caught.value)


async def test_jwks_fetched_cached_and_refetched_on_unknown_kid(make_settings, monkeypatch):
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    published = [old]
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url)
        return httpx.Response(200, json={"keys": [public_jwk(k.public_key()) for k in published]})

    settings = make_settings("api", jwks_url="http://auth.test/api/v1/auth/.well-known/jwks.json")
    period = settings.jwks_revalidate_seconds
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        keys = PublicKeys(settings, http)
        assert await keys.refresh()
        known = Minter(settings, old)
        rotated = Minter(settings, new)
        member_token = _token(known)
        assert known.kid in await keys.for_token(member_token)
        assert len(calls) == 1  # cached
        # Rotation: a token with an unknown kid triggers one refetch...
        published.append(new)
        clock[0] += period + 1
        assert rotated.kid in await keys.for_token(_token(rotated))
        assert len(calls) == 2
        # ...but garbage kids cannot make it refetch more than once per revalidation period.
        stranger = Minter(settings, Ed25519PrivateKey.generate())
        clock[0] += 1
        for _ in range(5):
            assert stranger.kid not in await keys.for_token(_token(stranger))
        assert len(calls) == 2
        clock[0] += period
        await keys.for_token(_token(stranger))
        assert len(calls) == 3
        # A copy due for revalidation is refreshed even for a known kid.
        clock[0] += period + 1
        await keys.for_token(_token(known))
        assert len(calls) == 4


async def test_a_key_no_longer_published_stops_verifying_within_seconds(make_settings, monkeypatch):
    """Second security review, finding 3: a retired key stops verifying within seconds, not minutes."""
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    published = [old, new]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": [public_jwk(k.public_key()) for k in published]})

    settings = make_settings("api", jwks_url="http://auth.test/jwks.json")
    assert settings.jwks_revalidate_seconds <= 10
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        keys = PublicKeys(settings, http)
        assert await keys.refresh()
        retired = Minter(settings, old)
        assert retired.kid in await keys.for_token(_token(retired))
        published.remove(old)  # `rotate-key retire` (or the emergency rotation) and an auth restart
        clock[0] += settings.jwks_revalidate_seconds + 0.001
        assert retired.kid not in await keys.for_token(_token(retired))


async def test_a_failed_jwks_fetch_never_extends_trust_beyond_its_bound(make_settings, monkeypatch):
    """Second security review, finding 3: a failed refetch must not keep the previous keys for
    ever: a key no successful fetch confirmed for JWKS_TRUST_SECONDS is a 503, never a pass."""
    key = Ed25519PrivateKey.generate()
    auth_up = [True]

    def handler(request: httpx.Request) -> httpx.Response:
        if not auth_up[0]:
            return httpx.Response(503)
        return httpx.Response(200, json={"keys": [public_jwk(key.public_key())]})

    settings = make_settings("api", jwks_url="http://auth.test/jwks.json")
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        keys = PublicKeys(settings, http)
        assert await keys.refresh()
        minter = Minter(settings, key)
        auth_up[0] = False
        # Within the trust period the cached key still verifies (auth restarting is no outage)...
        clock[0] += settings.jwks_trust_seconds - 1
        assert minter.kid in await keys.for_token(_token(minter))
        # ...beyond it, fail closed.
        clock[0] += 2
        with pytest.raises(KeysUnconfirmed) as refused:
            await keys.for_token(_token(minter))
        assert refused.value.status == 503
        clock[0] += settings.jwks_revalidate_seconds + 1
        with pytest.raises(KeysUnconfirmed):
            await keys.for_token(_token(minter))
        # Once the auth service answers again, its keys verify again.
        auth_up[0] = True
        clock[0] += settings.jwks_revalidate_seconds + 1
        assert minter.kid in await keys.for_token(_token(minter))


def _token(minter: Minter) -> str:
    from tests.api.helpers import Member

    member = Member(uuid.uuid4(), uuid.uuid4(), "a@example.com", "A", "member")
    return minter.token(member)


async def test_jwks_failure_keeps_previous_keys(make_settings):
    key = Ed25519PrivateKey.generate()
    responses = [httpx.Response(200, json={"keys": [public_jwk(key.public_key())]}), httpx.Response(503)]

    def handler(request: httpx.Request) -> httpx.Response:
        return responses.pop(0)

    settings = make_settings("api", jwks_url="http://auth.test/jwks.json")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        keys = PublicKeys(settings, http)
        assert await keys.refresh()
        assert not await keys.refresh()
        assert Minter(settings, key).kid in keys.current()


async def test_failed_start_up_fetch_is_retried_within_a_second_not_after_30(make_settings, monkeypatch):
    # The api often starts before auth: its first JWKS fetch fails. The first token must not be
    # refused for the 30 s throttle that protects an already-populated cache.

    key = Ed25519PrivateKey.generate()
    auth_up = [False]
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url)
        if not auth_up[0]:
            return httpx.Response(503)
        return httpx.Response(200, json={"keys": [public_jwk(key.public_key())]})

    settings = make_settings("api", jwks_url="http://auth.test/jwks.json")
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        keys = PublicKeys(settings, http)
        assert not await keys.refresh()  # start-up: auth not ready
        token = _token(Minter(settings, key))
        assert await keys.for_token(token) == {}  # within the second: no hammering
        assert len(calls) == 1
        auth_up[0] = True
        clock[0] += 1.5
        assert Minter(settings, key).kid in await keys.for_token(token)
        assert len(calls) == 2


async def test_one_redis_round_trip_per_authenticated_request(api, minter, make_org, admin):
    """The rate-limit windows and the revoked-session marker are read in one Lua call."""
    org = await make_org("owner")
    sid = await add_session(admin, org.owner)
    headers = minter.headers(org.owner, sid=sid)
    redis = api.app.state.resources.redis
    commands: list[str] = []
    original = redis.execute_command

    async def counting(*args, **kwargs):
        commands.append(str(args[0]))
        return await original(*args, **kwargs)

    redis.execute_command = counting
    try:
        assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200
        assert commands == ["EVALSHA"]
        setter = create_redis(api.settings)
        try:
            await mark_sessions_revoked(setter, api.settings, [sid])
        finally:
            await setter.aclose()
        commands.clear()
        response = await api.client.get("/api/v1/me", headers=headers)
        assert_401(response)
        assert commands == ["EVALSHA"]
        assert "ratelimit-remaining" in response.headers  # a decision was made: headers on the 401
    finally:
        del redis.execute_command


async def test_a_start_up_fetch_before_auth_is_up_is_not_a_warning(make_settings, caplog):
    """make run starts api and auth together: no cache yet is not a fault; losing a cache is."""
    key = Ed25519PrivateKey.generate()
    responses = [
        httpx.Response(503),
        httpx.Response(200, json={"keys": [public_jwk(key.public_key())]}),
        httpx.Response(503),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return responses.pop(0)

    settings = make_settings("api", jwks_url="http://auth.test/jwks.json")
    caplog.set_level(logging.INFO, logger="blockbot")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        keys = PublicKeys(settings, http)
        assert not await keys.refresh()
        first = [r for r in caplog.records if "JWKS" in r.getMessage()]
        assert [r.levelno for r in first] == [logging.INFO], first
        caplog.clear()
        assert await keys.refresh()
        assert not await keys.refresh()
        later = [r for r in caplog.records if "JWKS" in r.getMessage()]
        assert [r.levelno for r in later] == [logging.WARNING], later


async def test_the_first_token_right_after_a_failed_start_up_fetch_is_verified(make_settings):
    """auth answers moments after the api's start-up fetch failed: its first token must pass.

    The api once throttled fetches for a second even with no keys, so `make run`'s first /me
    (issued within that second) was a 401 on a fast machine.
    """
    key = Ed25519PrivateKey.generate()
    jwk = public_jwk(key.public_key())
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json={"keys": [jwk]}) if len(calls) > 1 else httpx.Response(503)

    settings = make_settings("api", jwks_url="http://auth.test/jwks.json")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        keys = PublicKeys(settings, http)
        assert not await keys.refresh()  # start-up: auth not up yet
        found = await asyncio.gather(*(keys.for_kid(jwk["kid"]) for _ in range(20)))
    assert all(jwk["kid"] in k for k in found)
    assert len(calls) == 2  # the twenty waiting requests shared one fetch
