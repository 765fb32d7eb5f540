"""The emails the auth service queues (the worker renders and sends them)."""

from __future__ import annotations

from services.auth.state import AuthState
from shared.email_queue import (
    AccountExistsProps,
    MagicLinkProps,
    PasswordResetProps,
    VerifyEmailProps,
    enqueue_email,
)


def app_link(state: AuthState, path: str, token: str | None = None) -> str:
    """A link to a web-app page; the token goes in the fragment, never seen by servers or logs."""
    base = str(state.settings.app_base_url).rstrip("/")
    return f"{base}{path}" + (f"#token={token}" if token is not None else "")


async def send_verification(state: AuthState, *, to: str, name: str, token: str) -> None:
    await enqueue_email(
        state.redis,
        state.settings,
        to=to,
        props=VerifyEmailProps(
            link=app_link(state, "/auth/verify-email", token),
            expires_in_seconds=state.settings.email_verification_ttl_seconds,
            name=name,
        ),
    )


async def send_account_exists(state: AuthState, *, to: str) -> None:
    await enqueue_email(
        state.redis,
        state.settings,
        to=to,
        props=AccountExistsProps(
            login_link=app_link(state, "/auth/login"),
            reset_link=app_link(state, "/auth/forgot-password"),
        ),
    )


async def send_magic_link(state: AuthState, *, to: str, token: str) -> None:
    await enqueue_email(
        state.redis,
        state.settings,
        to=to,
        props=MagicLinkProps(
            link=app_link(state, "/auth/magic", token),
            expires_in_seconds=state.settings.magic_link_ttl_seconds,
        ),
    )


async def send_password_reset(state: AuthState, *, to: str, token: str) -> None:
    await enqueue_email(
        state.redis,
        state.settings,
        to=to,
        props=PasswordResetProps(
            link=app_link(state, "/auth/reset-password", token),
            expires_in_seconds=state.settings.password_reset_ttl_seconds,
        ),
    )
