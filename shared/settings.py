"""The one settings object: every service reads its configuration from the environment here.

Sections below group fields by the part that uses them; every process loads the same class so a
deployment has one list of variables (see .env.example). Validation failures stop the process
with one message naming every bad variable, never echoing a value.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    PostgresDsn,
    RedisDsn,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def _split_csv(value: Any) -> Any:
    """Accept `a,b,c` as well as JSON lists for list-valued variables."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            import json

            return json.loads(stripped)
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return value


# `.env.example`'s secrets all start with this: a deployment that copied it unchanged.
PLACEHOLDER_MARK = "change-me"


# --- external identity providers (services/auth/providers) --------------------------------------
class ProviderPreset(StrEnum):
    """What a provider speaks: OpenID Connect by issuer URL, a preset of it, or GitHub's OAuth2."""

    OIDC = "oidc"
    GOOGLE = "google"
    MICROSOFT = "microsoft"
    GITLAB = "gitlab"
    GITHUB = "github"


class ProviderSettings(BaseModel):
    """One entry of AUTH_PROVIDERS (JSON): a provider people may sign in with.

    `id` names it in URLs and in the identities table (default: the preset's name); `issuer` is
    required for a generic `oidc` provider and moves a `gitlab` preset to a self-managed instance;
    `tenant` is Microsoft's (a tenant id, or `common` / `organizations` / `consumers`); `url` and
    `api_url` move the `github` preset to GitHub Enterprise Server. `trust_mfa` lets the
    provider's own `amr` claim count as a second factor (off unless the operator opts in).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,31}$")
    preset: ProviderPreset = ProviderPreset.OIDC
    name: str | None = Field(default=None, min_length=1, max_length=60)
    issuer: AnyHttpUrl | None = None
    tenant: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]{1,100}$")
    url: AnyHttpUrl | None = None
    api_url: AnyHttpUrl | None = None
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: SecretStr
    scopes: list[str] | None = None
    trust_mfa: bool = False

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.preset is ProviderPreset.OIDC and self.issuer is None:
            raise ValueError("issuer is required for a generic oidc provider")
        if self.preset is ProviderPreset.OIDC and self.id is None:
            raise ValueError("id is required for a generic oidc provider")
        if self.preset is not ProviderPreset.MICROSOFT and self.tenant is not None:
            raise ValueError("tenant is for the microsoft preset only")
        if self.preset is not ProviderPreset.GITHUB and (self.url or self.api_url):
            raise ValueError("url and api_url are for the github preset only")
        if self.preset in (ProviderPreset.GOOGLE, ProviderPreset.MICROSOFT, ProviderPreset.GITHUB) and (
            self.issuer is not None
        ):
            raise ValueError(f"issuer is fixed for the {self.preset} preset")
        if self.preset is ProviderPreset.GITHUB and self.trust_mfa:
            raise ValueError("trust_mfa needs an amr claim, which github does not send")
        if not self.client_secret.get_secret_value():
            raise ValueError("client_secret must not be empty")
        return self

    @property
    def key(self) -> str:
        """The provider's id: as configured, else the preset's name."""
        return self.id or str(self.preset)


def _parse_providers(value: Any) -> list[ProviderSettings]:
    """AUTH_PROVIDERS: a JSON list of provider objects, each checked with its id named."""
    import json

    if value in (None, ""):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("must be a JSON list of provider objects") from None
    if not isinstance(value, list):
        raise ValueError("must be a JSON list of provider objects")
    providers: list[ProviderSettings] = []
    problems: list[str] = []
    for position, entry in enumerate(value, start=1):
        label = f"provider {position}"
        if isinstance(entry, dict) and isinstance(entry.get("id") or entry.get("preset"), str):
            label += f" ({entry.get('id') or entry.get('preset')})"
        if isinstance(entry, ProviderSettings):
            providers.append(entry)
            continue
        try:
            providers.append(ProviderSettings.model_validate(entry))
        except ValidationError as error:
            for item in error.errors(include_input=False, include_url=False):
                where = ".".join(str(part) for part in item["loc"])
                message = item["msg"].removeprefix("Value error, ")
                problems.append(f"{label}: {where + ': ' if where else ''}{message}")
    keys = [p.key for p in providers]
    problems += [f"provider id {k!r} is used twice" for k in sorted({k for k in keys if keys.count(k) > 1})]
    if problems:
        raise ValueError("; ".join(problems))
    return providers


class Settings(BaseSettings):
    """All configuration for all BlockBot core processes."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- core -----------------------------------------------------------------------------
    env: Environment = Environment.DEVELOPMENT
    service_name: str = Field(default="blockbot", description="Names this process in logs")
    log_level: str = "INFO"

    # --- database ---------------------------------------------------------------------------
    # Each process connects as its own role: the migrate job as an administrator, auth and api
    # as the least-privilege roles the migrate job creates.
    # Required by auth, api and the migrate job (checked when they create their engine); the
    # worker never touches the database and runs without it.
    database_url: PostgresDsn | None = None
    # A pool that never churns: overflow connections are closed when checked in, so under a
    # steady concurrency above the pool size they would be opened and closed all the time
    # (authentication, backend start) at several times the cost of the requests themselves. A
    # request beyond the pool waits for a connection (at most the pool timeout) instead.
    # 20 per process keeps auth + api with two workers each within PostgreSQL's default 100.
    database_pool_size: int = Field(default=20, ge=1, le=200)
    database_max_overflow: int = Field(default=0, ge=0, le=200)
    database_statement_timeout_ms: int = Field(default=15_000, ge=100)
    # Outage bounds (see shared/db_outage.py): a request that cannot get a connection within
    # the pool or connect timeout, or whose statement gets no answer within the command
    # timeout, is answered 503 instead of hanging for the length of the outage.
    database_pool_timeout_seconds: float = Field(default=2.0, gt=0, le=300)
    database_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=300)
    database_command_timeout_seconds: float = Field(default=5.0, gt=0, le=3600)
    # Migrate job only: role names are `<prefix>_owner`, `<prefix>_auth`, `<prefix>_api`.
    db_role_prefix: str = Field(default="blockbot", pattern=r"^[a-z][a-z0-9_]{0,40}$")
    auth_db_password: SecretStr | None = None
    api_db_password: SecretStr | None = None
    # Used by the monitoring profile only; read here so production refuses its placeholder too.
    grafana_admin_password: SecretStr | None = None

    # --- redis ------------------------------------------------------------------------------
    # Required by the processes that use Redis (auth, api, worker), not by the migrate job.
    redis_url: RedisDsn | None = None
    # Every key this deployment writes starts with this prefix (tests use one per run).
    redis_key_prefix: str = Field(default="bb:", pattern=r"^[A-Za-z0-9:_\-]{1,64}$")
    # Bounded, reused connections; a caller waits for a free one (see shared/redis.py).
    redis_max_connections: int = Field(default=32, ge=2, le=1000)
    # The bound of one request-path call; a call past it while the breaker is closed is shed
    # (503). The breaker opens after this many consecutive failures with no success between
    # them (see shared/redis.py), then skips Redis for `redis_breaker_seconds`.
    redis_call_timeout_ms: int = Field(default=150, ge=10, le=10_000)
    redis_breaker_failures: int = Field(default=3, ge=1, le=100)
    redis_breaker_seconds: float = Field(default=2.0, ge=0.1, le=60)

    # --- overload (shared/overload.py) ------------------------------------------------------
    # Requests a process serves at once; beyond, a 503 at the edge before any work (0: no bound).
    max_requests_in_flight: int = Field(default=512, ge=0, le=100_000)

    # --- http -------------------------------------------------------------------------------
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Peers whose X-Forwarded-For is believed (Traefik); anything else is the client itself.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=lambda: [ip_network("127.0.0.1/32"), ip_network("::1/128")]
    )
    app_base_url: AnyHttpUrl = AnyHttpUrl("http://localhost:8080")
    # uvicorn worker processes of an HTTP service (auth, api). uvicorn itself reads this variable
    # as the default of --workers, so the service's command needs no flag; it is declared here
    # to be validated and documented with the rest. Metrics are aggregated across the workers
    # (shared/multiprocess_metrics.py); each worker holds its own DATABASE_POOL_SIZE connections.
    web_concurrency: int = Field(default=1, ge=1, le=64)
    # Request bodies over these are a 413 before they are read (auth bodies are a few fields).
    auth_max_body_bytes: int = Field(default=16 * 1024, ge=1024, le=16 * 1024 * 1024)
    api_max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)

    # --- tokens and sessions (auth signs, api verifies) -------------------------------------
    jwt_issuer: str = "blockbot-auth"
    jwt_audience: str = "blockbot-api"
    # Auth only: Ed25519 private keys (base64url 32-byte seeds from `python -m services.auth.keys`,
    # or PKCS#8 PEM), comma-separated, newest last; the newest signs, all are published.
    jwt_private_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Api only: where to fetch the public keys (JWKS), or the public keys themselves in PEM.
    jwks_url: AnyHttpUrl | None = None
    jwt_public_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=3600)
    refresh_reuse_grace_seconds: int = Field(default=10, ge=0, le=120)
    cookie_secure: bool = True
    magic_link_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    email_verification_ttl_seconds: int = Field(default=24 * 3600, ge=300)
    password_reset_ttl_seconds: int = Field(default=3600, ge=300)
    invitation_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=3600)
    unverified_signup_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=3600)

    # --- API keys (api only) ----------------------------------------------------------------
    # Key of the HMAC-SHA256 that stores API key secrets (at least 32 characters; required in
    # production). `API_KEY_ENV` is the `<env>` of `bb_<env>_<id>_<secret>`: a key's origin
    # is visible at a glance, and a key of another deployment is refused.
    api_key_hash_secret: SecretStr | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[a-z0-9]{1,16}$")

    # --- passwords --------------------------------------------------------------------------
    argon2_memory_kib: int = Field(default=65_536, ge=8_192)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_parallelism: int = Field(default=4, ge=1)
    # --- password-hashing backlog (services/auth/passwords.py) ---------------------------------
    # Concurrent hashes per process; each holds argon2_memory_kib, so this bounds the memory of
    # a login storm. Unset: one Argon2 lane thread per usable core over the uvicorn workers,
    # usable CPUs // (web_concurrency * argon2_parallelism), at least 1.
    password_hash_concurrency: int | None = Field(default=None, ge=1, le=64)
    # Operations that may wait for a hashing slot per process (beyond them: 503 with
    # Retry-After); hashes of new passwords (sign-up, reset) may fill only half of it, so they
    # never crowd out logins. Unset: 16 per concurrent hash.
    password_hash_queue: int | None = Field(default=None, ge=0, le=100_000)

    @field_validator("password_hash_concurrency", "password_hash_queue", mode="before")
    @classmethod
    def _derived_when_empty(cls, value: object) -> object:
        # `PASSWORD_HASH_QUEUE=` (an .env line left empty, passed on by Compose) means unset.
        return None if value == "" else value

    # --- rate limits ------------------------------------------------------------------------
    ratelimit_org_per_hour: int = Field(default=10_000, ge=1)
    ratelimit_user_per_hour: int = Field(default=1_000, ge=1)
    ratelimit_user_endpoint_per_minute: int = Field(default=100, ge=1)
    ratelimit_auth_ip_per_minute: int = Field(default=30, ge=1)
    # Per address AND client network (IPv4 address, IPv6 /64): never a lockout of other networks.
    ratelimit_auth_email_per_hour: int = Field(default=10, ge=1)
    # Mails one address receives per hour from register, verify-request, magic-link and
    # password/forgot together (only mails sent count); beyond it the answer is still 202 and
    # nothing is sent, except each site's first mail of the hour (services/auth/limits.py).
    ratelimit_auth_mails_per_address_per_hour: int = Field(default=10, ge=1)
    # Invitation mails per organization and per recipient address, per day (the api; 429 beyond).
    invitations_per_org_per_day: int = Field(default=200, ge=1)
    invitations_per_recipient_per_day: int = Field(default=3, ge=1)
    # Auth /refresh per client IP: higher than the rest (many users may share one NAT address).
    ratelimit_auth_refresh_ip_per_minute: int = Field(default=120, ge=1)

    # --- email ------------------------------------------------------------------------------
    resend_api_key: SecretStr | None = None
    resend_api_url: AnyHttpUrl = AnyHttpUrl("https://api.resend.com")
    email_from: str = "BlockBot <no-reply@example.com>"
    dev_outbox_dir: Path = Path(".dev/outbox")
    email_max_tries: int = Field(default=8, ge=1, le=50)
    email_send_timeout_seconds: float = Field(default=10.0, gt=0)
    worker_metrics_port: int = Field(default=9102, ge=1, le=65535)
    # All interfaces for a container (Prometheus scrapes it over the network); `make run` binds
    # 127.0.0.1 like every other port of the local stack.
    worker_metrics_host: str = "0.0.0.0"
    worker_concurrency: int = Field(default=10, ge=1, le=500)
    product_name: str = "BlockBot"

    # --- second factors (auth; the api reads the step-up age) ---------------------------------
    # AES-256-GCM keys of the TOTP secrets at rest: base64url of 32 random bytes each,
    # comma-separated, newest last (it encrypts; every listed key decrypts, and a secret is
    # re-encrypted under the newest when it is next used). Required by auth in production
    # (`make secrets`); development and tests fall back to a fixed, public key.
    totp_encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # The challenge a first factor yields for an account with a second factor: its lifetime and
    # how many codes or assertions it takes before it dies.
    second_factor_challenge_ttl_seconds: int = Field(default=300, ge=60, le=900)
    second_factor_attempts_per_challenge: int = Field(default=5, ge=1, le=20)
    # Guessable second-factor attempts (TOTP codes, reauthentication passwords), over all the
    # account's challenges: per account and network per hour, per account per day across
    # networks (the TOTP guessing bound in the README follows from the daily one).
    ratelimit_second_factor_per_account_network_per_hour: int = Field(default=5, ge=1)
    ratelimit_second_factor_per_account_per_day: int = Field(default=20, ge=1)
    # Step-up: how recent an authentication the sensitive actions need.
    reauthentication_max_age_seconds: int = Field(default=600, ge=60, le=3600)
    # --- external identity providers (services/auth/providers) ------------------------------
    # JSON list of ProviderSettings (README "Sign in with external providers"); empty: none.
    auth_providers: Annotated[list[ProviderSettings], NoDecode] = Field(default_factory=list)
    # How long a started sign-in may take at the provider (the attempt, single use, in Redis).
    auth_provider_attempt_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    # Bound of each call to a provider (discovery, keys, token, user endpoints).
    auth_provider_http_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # --- mail budgets, API-key lookups, signing-key trust --------------------------------------
    # Mails one address receives per hour from one client network (only mails sent count).
    ratelimit_auth_mails_per_address_network_per_hour: int = Field(default=3, ge=1)
    # The api: failed API-key lookups per client network per minute; beyond, key requests from
    # that network are a 429 before any database work.
    ratelimit_api_key_failures_per_minute: int = Field(default=20, ge=1)
    # The api: how old its JWKS copy may get before it is revalidated, and how long a key may go
    # unconfirmed by a successful fetch before it is no longer trusted (fail closed, 503).
    jwks_revalidate_seconds: float = Field(default=10.0, gt=0)
    jwks_trust_seconds: float = Field(default=600.0, gt=0)
    # --- account pages (auth serves them; services/pages) -----------------------------------
    # The sign-up, sign-in, account and org pages at APP_BASE_URL's /auth/*, /account and /org.
    # False for an operator whose own web app serves those paths (README: "Account pages").
    pages_enabled: bool = True

    # --- validators -------------------------------------------------------------------------
    @field_validator(
        "cors_origins", "jwt_public_keys", "jwt_private_keys", "totp_encryption_keys", mode="before"
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("auth_providers", mode="before")
    @classmethod
    def _providers(cls, value: Any) -> Any:
        return _parse_providers(value)

    @field_validator("email_from")
    @classmethod
    def _email_from(cls, value: str) -> str:
        from email.utils import parseaddr

        _, address = parseaddr(value)
        if not address:
            raise ValueError("must be an address or 'Name <address>'")
        from email_validator import EmailNotValidError, validate_email

        try:
            validate_email(
                address,
                check_deliverability=False,
                globally_deliverable=False,
                test_environment=True,
            )
        except EmailNotValidError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _explicit_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*":
                continue  # refused in production below, tolerated in development
            if not origin.startswith(("http://", "https://")) or origin.endswith("/"):
                raise ValueError(f"origin {origin!r} must look like https://host[:port]")
        return value

    @model_validator(mode="after")
    def _production_refuses_development_defaults(self) -> Self:
        if self.env is not Environment.PRODUCTION:
            return self
        problems: list[str] = []
        if not self.cookie_secure:
            problems.append("COOKIE_SECURE must be true in production")
        if "*" in self.cors_origins:
            problems.append("CORS_ORIGINS must list explicit origins in production")
        if self.app_base_url.scheme != "https":
            problems.append("APP_BASE_URL must be https in production")
        if self.email_from.endswith("@example.com>") or self.email_from.endswith("@example.com"):
            problems.append("EMAIL_FROM must be a real sender address in production")
        problems += [
            f"{name} still holds a placeholder from .env.example (change-me-...)"
            for name, value in self._secret_values().items()
            if PLACEHOLDER_MARK in value.lower()
        ]
        problems += [
            f"AUTH_PROVIDERS: provider {p.key!r} needs an https issuer/url in production"
            for p in self.auth_providers
            if any(u is not None and u.scheme != "https" for u in (p.issuer, p.url, p.api_url))
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _secret_values(self) -> dict[str, str]:
        """Every credential this process can see, by variable name (for placeholder checks)."""

        def reveal(value: SecretStr | None) -> str:
            return value.get_secret_value() if value is not None else ""

        return {
            # The database and Redis passwords reach the services inside their URLs.
            "DATABASE_URL": str(self.database_url or ""),
            "REDIS_URL": str(self.redis_url),
            "AUTH_DB_PASSWORD": reveal(self.auth_db_password),
            "API_DB_PASSWORD": reveal(self.api_db_password),
            "GRAFANA_ADMIN_PASSWORD": reveal(self.grafana_admin_password),
            "RESEND_API_KEY": reveal(self.resend_api_key),
            "JWT_PRIVATE_KEYS": ",".join(reveal(k) for k in self.jwt_private_keys),
            "TOTP_ENCRYPTION_KEYS": ",".join(reveal(k) for k in self.totp_encryption_keys),
            "AUTH_PROVIDERS": ",".join(reveal(p.client_secret) for p in self.auth_providers),
        }

    @property
    def is_development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    def require(self, *names: str) -> None:
        """Fail start-up unless the named optional fields are set (per-service requirements)."""
        missing = [n.upper() for n in names if getattr(self, n) in (None, [], "")]
        if missing:
            raise SettingsError([f"{n}: required for {self.service_name}" for n in missing])


class SettingsError(Exception):
    """Raised with one line per bad variable; the text never contains a value."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {line}" for line in lines))


def describe_validation_error(error: ValidationError) -> list[str]:
    """Name each bad variable and what is wrong, omitting the offending input (it may be secret)."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        loc = "_".join(str(part) for part in item["loc"] if not isinstance(part, int))
        name = loc.upper() if loc else "(settings)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {message}")
    return lines


# Which dotenv file to read (default `.env`; empty: none). `make run` empties it: the root `.env`
# is written for Docker Compose, and its production secrets (RESEND_API_KEY: real mail) must not
# reach the local stack.
ENV_FILE_VARIABLE = "BLOCKBOT_ENV_FILE"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, raising SettingsError with a readable message."""
    overrides.setdefault("_env_file", os.environ.get(ENV_FILE_VARIABLE, ".env") or None)
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; on a bad configuration print the reasons and exit with status 2."""
    try:
        return load_settings()
    except SettingsError as error:
        print(str(error), file=sys.stderr)
        raise SystemExit(2) from None
