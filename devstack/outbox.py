"""Read the local outbox of `make run`: print the token of the newest email's link.

`python -m devstack.outbox --to ada@example.com` waits (up to `--wait` seconds) for a message to
that address and prints the `#token=` of its link, which the web app page would POST;
`--link` prints the whole link instead, to open in a browser (the account pages).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r"#token=([A-Za-z0-9_\-.~%]+)")
LINK = re.compile(r"https?://[^\s\"'<>]+#token=[A-Za-z0-9_\-.~%]+")


def default_outbox() -> Path:
    """`$DEVSTACK_ROOT/outbox` (the stack's data directory), `.dev/outbox` by default."""
    return Path(os.environ.get("DEVSTACK_ROOT") or ROOT / ".dev") / "outbox"


def newest_message(outbox: Path, to: str | None) -> dict[str, Any] | None:
    """The newest message (to `to`, when given); None when there is none yet."""
    for path in sorted(outbox.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True):
        try:
            message: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being written, or removed meanwhile
        recipients = message.get("to") or []
        recipients = recipients if isinstance(recipients, list) else [recipients]
        if to is None or to.lower() in (r.lower() for r in recipients):
            return message
    return None


def link_token(message: dict[str, Any]) -> str | None:
    match = TOKEN.search(str(message.get("text", "")))
    return match.group(1) if match else None


def link_url(message: dict[str, Any]) -> str | None:
    match = LINK.search(str(message.get("text", "")))
    return match.group(0) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.outbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--to", help="only messages to this address")
    parser.add_argument(
        "--outbox", type=Path, default=None, help="default $DEVSTACK_ROOT/outbox, or .dev/outbox"
    )
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for a message (default 30)")
    parser.add_argument("--link", action="store_true", help="print the whole link, not only its token")
    args = parser.parse_args(argv)
    outbox = args.outbox or default_outbox()
    deadline = time.monotonic() + args.wait
    while True:
        message = newest_message(outbox, args.to)
        if message is not None:
            token = link_url(message) if args.link else link_token(message)
            if token is None:
                print(
                    f"outbox: the newest message has no #token= link: {message.get('subject')!r}",
                    file=sys.stderr,
                )
                return 1
            print(token)
            return 0
        if time.monotonic() >= deadline:
            who = f" to {args.to}" if args.to else ""
            print(f"outbox: no message{who} in {outbox} after {args.wait:.0f} s", file=sys.stderr)
            return 1
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
