"""`python -m services.admin`: the operator's command line, connected as the administrator.

It uses the migrate job's environment: DATABASE_URL is the administrator URL (a role that sees
every tenant), REDIS_URL and REDIS_KEY_PREFIX those of the services (revocation markers).

    python -m services.admin orgs
    python -m services.admin users [--org ORG_ID]
    python -m services.admin create-org --name NAME --owner-email EMAIL --owner-name NAME
                                        [--password-stdin]
    python -m services.admin verify-email USER        # USER: an id or an email address
    python -m services.admin revoke-sessions USER
    python -m services.admin disable USER | enable USER
    python -m services.admin remove-second-factors USER   # lost device: verify identity first

Every change is written to the org's audit log with the operator's name (`--operator`, default
$BLOCKBOT_OPERATOR or the login name). Exit status: 0 done, 1 refused (no such user, email
taken, wrong database role), 2 bad input, 3 PostgreSQL or Redis unreachable. Nothing secret is
printed: no password, hash, token or connection password.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, TextIO

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from services.admin import service
from services.admin.queries import OrgRow, UserRow
from services.admin.second_factors import service as second_factors
from services.admin.service import Admin
from shared.db import create_engine, create_sessionmaker
from shared.errors import AppError, ServiceUnavailable, ValidationFailed
from shared.redis import create_redis
from shared.settings import Settings, SettingsError, load_settings

EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_UNAVAILABLE = 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.admin",
        description="BlockBot operator commands (connects with the migrate job's administrator URL).",
    )
    parser.add_argument(
        "--operator",
        default=None,
        help="name recorded in the audit log (default: $BLOCKBOT_OPERATOR or login)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("orgs", help="list organizations")
    users = commands.add_parser("users", help="list users")
    users.add_argument("--org", help="only this organization's users (its id)")
    create = commands.add_parser("create-org", help="create an org and its owner (verified email)")
    create.add_argument("--name", required=True, help="organization name")
    create.add_argument("--owner-email", required=True)
    create.add_argument("--owner-name", required=True)
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the owner's password from standard input (else prompt)",
    )
    for name, text in (
        ("verify-email", "mark a user's email address verified"),
        ("revoke-sessions", "revoke every session of a user (access tokens stop at once)"),
        ("disable", "disable a user: no login, no refresh, sessions revoked at once"),
        ("enable", "re-enable a disabled user"),
        ("remove-second-factors", "remove TOTP, passkeys and recovery codes (verify identity first)"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("user", metavar="USER", help="user id or email address")
    return parser


def operator_name(given: str | None) -> str:
    name = given or os.environ.get("BLOCKBOT_OPERATOR") or _login_name()
    return name.strip()[:100] or "operator"


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def read_password(from_stdin: bool, stdin: TextIO) -> str:
    """The owner's password from standard input (one line) or a prompt typed twice."""
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    if not stdin.isatty():
        raise ValidationFailed("no terminal to prompt for the password: use --password-stdin")
    first = getpass.getpass("Owner password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise ValidationFailed("the two passwords differ")
    return first


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _print_rows(rows: Sequence[OrgRow | UserRow], columns: Sequence[str], as_json: bool, out: TextIO) -> None:
    if as_json:
        for row in rows:
            print(
                json.dumps({k: _cell(v) if not isinstance(v, int) else v for k, v in asdict(row).items()}),
                file=out,
            )
        return
    table = [list(columns)] + [[_cell(getattr(row, c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip(), file=out
        )


def _say(out: TextIO, as_json: bool, message: str, **fields: Any) -> None:
    if as_json:
        print(json.dumps({"result": message, **{k: _cell(v) for k, v in fields.items()}}), file=out)
    else:
        print(message, file=out)


async def run(args: argparse.Namespace, settings: Settings, stdin: TextIO, out: TextIO) -> None:
    """Execute one parsed command."""
    new_org = None
    if args.command == "create-org":
        password = read_password(args.password_stdin, stdin)
        new_org = service.parse_new_org(
            org_name=args.name,
            owner_email=args.owner_email,
            owner_name=args.owner_name,
            password=password,
        )
    engine = create_engine(settings)
    redis = create_redis(settings)
    admin = Admin(settings, create_sessionmaker(engine), redis, operator_name(args.operator))
    try:
        await _dispatch(admin, args, new_org, out)
    finally:
        await redis.aclose()
        await engine.dispose()


async def _dispatch(
    admin: Admin, args: argparse.Namespace, new_org: service.NewOrg | None, out: TextIO
) -> None:
    command, as_json = args.command, args.json
    if command == "orgs":
        _print_rows(await service.list_orgs(admin), ("id", "name", "users", "created_at"), as_json, out)
    elif command == "users":
        _print_rows(
            await service.list_users(admin, args.org),
            (
                "id",
                "email",
                "role",
                "org_id",
                "org_name",
                "email_verified_at",
                "disabled_at",
                "live_sessions",
            ),
            as_json,
            out,
        )
    elif command == "create-org":
        assert new_org is not None
        owner = await service.create_org(admin, new_org)
        _say(
            out,
            as_json,
            f"created organization {owner.org_id} with owner {owner.id}",
            org_id=owner.org_id,
            user_id=owner.id,
        )
    elif command == "verify-email":
        user, changed = await service.verify_email(admin, args.user)
        _say(
            out,
            as_json,
            f"email of {user.id} {'verified' if changed else 'was already verified'}",
            user_id=user.id,
            changed=changed,
        )
    elif command == "revoke-sessions":
        user, count = await service.revoke_sessions(admin, args.user)
        _say(
            out, as_json, f"revoked {count} session(s) of {user.id}", user_id=user.id, sessions_revoked=count
        )
    elif command == "remove-second-factors":
        user, removed = await second_factors.remove_second_factors(admin, args.user)
        _say(
            out,
            as_json,
            f"removed from {user.id}: {removed.totp} authenticator app(s), {removed.passkeys} passkey(s),"
            f" {removed.recovery_codes} recovery code(s)",
            user_id=user.id,
            totp=removed.totp,
            passkeys=removed.passkeys,
            recovery_codes=removed.recovery_codes,
        )
    elif command in ("disable", "enable"):
        disabled = command == "disable"
        user, changed, count = await service.set_disabled(admin, args.user, disabled=disabled)
        state = "disabled" if disabled else "enabled"
        _say(
            out,
            as_json,
            f"user {user.id} {state if changed else 'was already ' + state}"
            + (f"; revoked {count} session(s)" if disabled else ""),
            user_id=user.id,
            changed=changed,
            sessions_revoked=count,
        )


def main(
    argv: Sequence[str] | None = None,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Parse, run, and map every failure to a message on stderr and an exit status."""
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(service_name="admin")
        settings.require("database_url")
    except SettingsError as error:
        print(f"admin: {error}", file=err)
        return EXIT_BAD_INPUT
    try:
        asyncio.run(run(args, settings, stdin, out))
    except ServiceUnavailable as error:
        print(f"admin: {error.detail}", file=err)
        return EXIT_UNAVAILABLE
    except AppError as error:
        print(f"admin: {error.detail}", file=err)
        return EXIT_BAD_INPUT if error.status in (400, 422) else EXIT_REFUSED
    except (OSError, OperationalError, InterfaceError, DBAPIError) as error:
        # The driver's message may quote the URL; name only the server.
        where = str(settings.database_url).rsplit("@", 1)[-1]
        print(
            f"admin: PostgreSQL at {where} is unreachable or refused the connection "
            f"({type(getattr(error, 'orig', error)).__name__})",
            file=err,
        )
        return EXIT_UNAVAILABLE
    return 0
