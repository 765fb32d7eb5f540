"""Rate limits of the unauthenticated auth endpoints: per client network, per address and network.

Checked before any user lookup, fail closed (Redis down is a 503). Windows are per endpoint so
that, say, a burst of sign-ups does not lock a person out of logging in.

Limits must not become a lockout weapon: an address's window is keyed by the address AND the
client network (IPv4 address, IPv6 /64), so failures from one network never refuse a correct
password from another; each network also has its own window across addresses. IPv6 clients are
keyed by /64 because one subscriber usually holds a whole /64: per address it would be 2^64
fresh budgets.

Email-sending endpoints also budget the mails an address receives (`MailBudget`; the answer
stays 202 either way, so the budget says nothing about the account). Only mails actually sent
are counted, per address AND network, plus a global per-address cap that only bounds volume:
a site (IPv4 address, IPv6 /48) that has sent the address nothing in the last hour always gets
its one mail, so requests from an abusing network never keep the owner, elsewhere, from a
reset or magic link.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_network

from fastapi import Request, params

from services.auth.state import AuthDep, AuthState, Client, ClientInfo
from shared.ratelimit import Decision, Window, client_network, hash_identifier, raise_if_limited
from shared.ratelimit_headers import remember
from shared.settings import Settings


async def _decide(
    state: AuthState, request: Request, windows: list[Window], *, report_first: bool = False
) -> Decision:
    """Check and record `windows` (503 when Redis is down); the response carries the decision's
    RateLimit-* headers; 429 when refused."""
    decision = await state.limiter.check_fail_closed(windows, report_first=report_first)
    remember(request, decision)
    raise_if_limited(decision)
    return decision


async def enforce(
    state: AuthState, request: Request, endpoint: str, client: ClientInfo, email: str | None
) -> Decision:
    """Check and record the windows for one request (its response gets the RateLimit-* headers);
    raise 429 (or 503) when refused."""
    settings = state.settings
    network = client_network(client.ip)
    windows = [
        Window("auth_ip", f"{endpoint}:{network}", settings.ratelimit_auth_ip_per_minute, 60),
    ]
    if email is not None:
        windows.append(
            Window(
                "auth_email",
                f"{endpoint}:{hash_identifier(email)}:{network}",
                settings.ratelimit_auth_email_per_hour,
                3600,
            )
        )
    # Headers describe the network's window only: the address's would tell this caller about
    # requests for the address (a refusal by it still says when to retry).
    return await _decide(state, request, windows, report_first=True)


# The first-mail exception is per site: an IPv4 address, but an IPv6 /48 rather than a /64,
# because one site holds a whole /48 (per /64 it would be 65,536 exceptions for one attacker).
IPV6_SITE_PREFIX = 48
UNBOUNDED = 2**31


def client_site(ip: str | None) -> str:
    """The key of a network's first-mail exception: an IPv4 address, or an IPv6 /48."""
    network = client_network(ip)
    if ":" not in network:
        return network
    return str(ip_network(network, strict=False).supernet(new_prefix=IPV6_SITE_PREFIX))


@dataclass(frozen=True)
class MailBudget:
    """The mails one request may send to `email` (its caller's network), taken one at a time.

    A mail goes when the address-and-network window (`RATELIMIT_AUTH_MAILS_PER_ADDRESS_NETWORK_PER_HOUR`)
    and the address's global window (`RATELIMIT_AUTH_MAILS_PER_ADDRESS_PER_HOUR`) both allow it,
    or, once the global window is full, when the caller's site (IPv4 address, IPv6 /48) has
    sent the address nothing within the last hour: the global cap limits how much mail others
    can cause, never whether the owner, from a network of their own, gets their link.
    """

    state: AuthState
    email: str
    network: str
    site: str

    async def take(self) -> bool:
        """Count one mail about to be sent; False (count nothing) when the budget refuses it."""
        settings = self.state.settings
        address = hash_identifier(self.email)
        per_network = Window(
            "auth_mail_net",
            f"{address}:{self.network}",
            settings.ratelimit_auth_mails_per_address_network_per_hour,
            3600,
        )
        limiter = self.state.limiter
        decision = await limiter.check_fail_closed(
            [
                per_network,
                Window("auth_mail", address, settings.ratelimit_auth_mails_per_address_per_hour, 3600),
                # Never refuses: it records that the site has had a mail this hour.
                Window("auth_mail_site", f"{address}:{self.site}", UNBOUNDED, 3600),
            ]
        )
        if decision.allowed:
            return True
        if decision.scope != "auth_mail":
            return False
        # The site's window with a limit of one: allowed (and counted) only when it is empty.
        first = Window("auth_mail_site", f"{address}:{self.site}", 1, 3600)
        return (await limiter.check_fail_closed([per_network, first])).allowed


def mail_budget(state: AuthState, email: str, client: ClientInfo) -> MailBudget:
    """The mail budget of a request from `client` about `email`."""
    return MailBudget(state, email, client_network(client.ip), client_site(client.ip))


def _auth_ip_per_minute(settings: Settings) -> int:
    return settings.ratelimit_auth_ip_per_minute


def _refresh_ip_per_minute(settings: Settings) -> int:
    return settings.ratelimit_auth_refresh_ip_per_minute


def ip_limit(endpoint: str, per_minute: Callable[[Settings], int] = _auth_ip_per_minute) -> params.Depends:
    """The per-client-network window of an endpoint that takes no address (a token to verify, a
    ceremony to start), as a route dependency: `dependencies=[ip_limit("magic_link_verify")]`.

    Each request costs database work (Argon2 for reset and invitation acceptance), or writes a
    ceremony to Redis, so they are bounded too, before anything is looked up. 429 (or 503, Redis
    down) when refused; the response carries the window's RateLimit-* headers.
    """

    async def check(request: Request, state: AuthDep, client: Client) -> None:
        window = Window("auth_ip", f"{endpoint}:{client_network(client.ip)}", per_minute(state.settings), 60)
        await _decide(state, request, [window])

    return params.Depends(check)


# Refresh has a higher window of its own (RATELIMIT_AUTH_REFRESH_IP_PER_MINUTE): many people may
# share one NAT address, and each of their tabs refreshes.
REFRESH_LIMIT = ip_limit("refresh", _refresh_ip_per_minute)


# --- second factors ------------------------------------------------------------------------------


async def enforce_second_factor(
    state: AuthState, request: Request, account: str, client: ClientInfo, *, guessable: bool
) -> Decision | None:
    """Windows of an account's second-factor attempts (codes, assertions, reauthentication).

    Guessable proofs (TOTP codes, passwords) count per account AND network per hour, so that
    failures from one network never lock the owner out from another, and per account per day
    across networks: the daily window bounds TOTP guessing (README). Recovery codes (50 random
    bits) and passkey assertions (signatures) cannot be guessed: they count in no account
    window, so an attacker filling those windows never keeps the owner from them (each
    challenge and each network's endpoint window still bound them).
    """
    if not guessable:
        return None
    settings = state.settings
    network = client_network(client.ip)
    windows = [
        Window(
            "auth_2fa_hour",
            f"{account}:{network}",
            settings.ratelimit_second_factor_per_account_network_per_hour,
            3600,
        ),
        Window("auth_2fa_day", account, settings.ratelimit_second_factor_per_account_per_day, 86400),
    ]
    return await _decide(state, request, windows)
