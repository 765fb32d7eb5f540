"""The API key format, its keyed hash and its redaction from logs (no database, no Redis)."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from shared.api_keys import (
    KEY_PATTERN,
    generate_key,
    hashes_match,
    hashing_key,
    is_api_key,
    key_env,
    parse_key,
    secret_hash,
)
from shared.logging import JsonFormatter, redact_text
from shared.settings import Environment, Settings, SettingsError

HASH_KEY = b"k" * 32


def test_a_new_key_has_the_documented_shape_and_parses_back() -> None:
    new = generate_key("live", HASH_KEY)
    prefix, secret = new.prefix, new.token[len(new.prefix) + 1 :]
    assert new.token == f"{prefix}_{secret}"
    assert new.prefix == f"bb_live_{new.public_id}"
    assert len(new.public_id) == 16 and int(new.public_id, 16) >= 0
    assert len(secret) == 43  # 32 random bytes, base64url without padding
    parsed = parse_key(new.token)
    assert parsed is not None
    assert (parsed.env, parsed.public_id, parsed.secret) == ("live", new.public_id, secret)
    assert hashes_match(new.secret_hash, secret_hash(HASH_KEY, parsed.public_id, parsed.secret))
    assert KEY_PATTERN.search(f"leaked: {new.token}.")
    assert secret not in repr(new) and secret not in repr(parsed)


def test_keys_are_unique_and_hashes_are_keyed_and_bound_to_the_public_id() -> None:
    a, b = generate_key("test", HASH_KEY), generate_key("test", HASH_KEY)
    assert a.token != b.token and a.public_id != b.public_id
    secret = a.token[len(a.prefix) + 1 :]
    assert secret_hash(b"x" * 32, a.public_id, secret) != a.secret_hash  # another server secret
    assert secret_hash(HASH_KEY, b.public_id, secret) != a.secret_hash  # another row
    assert not hashes_match(a.secret_hash, b.secret_hash)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "bb_",
        "bb_live_0123456789abcdef_",
        "bb_live_0123456789ABCDEF_" + "a" * 43,
        "bb_live_0123456789abcdef_" + "a" * 42,
        "bb_live_0123456789abcdef_" + "a" * 44,
        "bb_LIVE_0123456789abcdef_" + "a" * 43,
        "xx_live_0123456789abcdef_" + "a" * 43,
        "bb_live_0123456789abcdef_" + "a" * 42 + "\x00",
        "eyJhbGciOiJFZERTQSJ9.e30.sig",
    ],
)
def test_malformed_keys_do_not_parse(token: str) -> None:
    assert parse_key(token) is None


def test_is_api_key_tells_keys_from_jwts() -> None:
    assert is_api_key(generate_key("live", HASH_KEY).token)
    assert not is_api_key("eyJhbGciOiJFZERTQSJ9.e30.sig")


def test_env_label_and_hash_secret_from_settings() -> None:
    development = Settings(redis_url="redis://127.0.0.1:1/0")
    assert key_env(development) == "test"
    assert len(hashing_key(development)) >= 32
    production = development.model_copy(update={"env": Environment.PRODUCTION})
    assert key_env(production) == "live"
    with pytest.raises(SettingsError, match="API_KEY_HASH_SECRET"):
        hashing_key(production)
    short = production.model_copy(update={"api_key_hash_secret": SecretStr("too-short")})
    with pytest.raises(SettingsError) as info:
        hashing_key(short)
    assert "too-short" not in str(info.value)
    good = production.model_copy(update={"api_key_hash_secret": SecretStr("s" * 40), "api_key_env": "eu1"})
    assert hashing_key(good) == b"s" * 40 and key_env(good) == "eu1"


def test_keys_are_redacted_from_log_text_and_fields() -> None:
    new = generate_key("live", HASH_KEY)
    secret = new.token[len(new.prefix) + 1 :]
    for text in (
        f"GET /x?key={new.token}",
        f'{{"api_key": "{new.token}"}}',
        f"Bearer {new.token}",
        f"key {new.token[:-5]} truncated",
    ):
        redacted = redact_text(text)
        assert secret[:20] not in redacted, redacted
    assert new.prefix in redact_text(f"presented {new.token}")  # the public part helps debugging
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "key %s", (new.token,), None)
    record.note = f"k={new.token}"
    line = JsonFormatter("test").format(record)
    assert secret[:20] not in line
