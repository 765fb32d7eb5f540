"""The emails the auth service queues (the worker renders and sends them)."""

from __future__ import annotations

from typing import Protocol

from services.auth.state import AuthState
from shared.email_queue import (
    AccountExistsProps,
    EmailProps,
    MagicLinkProps,
    PasswordChangedProps,
    PasswordResetProps,
    RecoveryCodeUsedProps,
    VerifyEmailProps,
    enqueue_email,
)


class LinkMail(Protocol):
    """Queue a mail carrying a one-time token's link to `to`."""

    async def __call__(self, state: AuthState, *, to: str, token: str) -> None: ...


def app_link(state: AuthState, path: str, token: str | None = None) -> str:
    """A link to a web-app page; the token goes in the fragment, never seen by servers or logs."""
    base = str(state.settings.app_base_url).rstrip("/")
    return f"{base}{path}" + (f"#token={token}" if token is not None else "")


async def _queue(state: AuthState, to: str, props: EmailProps) -> None:
    await enqueue_email(state.redis, state.settings, to=to, props=props)


async def send_verification(state: AuthState, *, to: str, name: str, token: str) -> None:
    """Queue the link that activates a sign-up attempt."""
    link = app_link(state, "/auth/verify-email", token)
    ttl = state.settings.email_verification_ttl_seconds
    await _queue(state, to, VerifyEmailProps(link=link, expires_in_seconds=ttl, name=name))


async def send_account_exists(state: AuthState, *, to: str) -> None:
    """Tell the owner of an address that signed up again that they have an account."""
    login, reset = app_link(state, "/auth/login"), app_link(state, "/auth/forgot-password")
    await _queue(state, to, AccountExistsProps(login_link=login, reset_link=reset))


async def send_magic_link(state: AuthState, *, to: str, token: str) -> None:
    """Queue a sign-in link."""
    link = app_link(state, "/auth/magic", token)
    ttl = state.settings.magic_link_ttl_seconds
    await _queue(state, to, MagicLinkProps(link=link, expires_in_seconds=ttl))


async def send_password_reset(state: AuthState, *, to: str, token: str) -> None:
    """Queue a password-reset link."""
    link = app_link(state, "/auth/reset-password", token)
    ttl = state.settings.password_reset_ttl_seconds
    await _queue(state, to, PasswordResetProps(link=link, expires_in_seconds=ttl))


ACCOUNT_PAGE = "/account#second-factors"


async def send_recovery_code_used(state: AuthState, *, to: str, remaining: int) -> None:
    """Tell the user a recovery code of theirs signed someone in."""
    link = app_link(state, ACCOUNT_PAGE)
    await _queue(state, to, RecoveryCodeUsedProps(remaining=remaining, account_link=link))


async def send_password_changed(state: AuthState, *, to: str) -> None:
    """Tell the user their password was changed (if it was not them: reset it at once)."""
    await _queue(state, to, PasswordChangedProps(reset_link=app_link(state, "/auth/forgot-password")))
