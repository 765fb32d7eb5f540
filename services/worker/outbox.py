"""Development delivery: one JSON file per message in `DEV_OUTBOX_DIR` (default `.dev/outbox/`).

Used when `RESEND_API_KEY` is unset. Each file holds `to`, `subject`, `text`, `html` plus the
message id, template and creation time, so a person can open the newest file and click the link.
Files are written atomically (temporary file in the same folder, then rename): a reader never
sees half a message. A retried job with the same message id rewrites the same file rather than
adding a second one, mirroring the provider's idempotency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import orjson

from services.worker.sender import OUTBOX_MODE, OutgoingEmail


def _write_atomically(directory: Path, name: str, payload: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)  # the links inside are credentials
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return target


class OutboxSender:
    """Write messages to a folder instead of sending them."""

    mode = OUTBOX_MODE

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def start(self) -> None:
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)

    def _existing(self, message_id: str) -> Path | None:
        return next(iter(self.directory.glob(f"*-{message_id}.json")), None)

    def _write(self, email: OutgoingEmail) -> Path:
        existing = self._existing(email.message_id)
        now = datetime.now(UTC)
        stamp = f"{now:%Y%m%dT%H%M%S%fZ}"
        name = existing.name if existing else f"{stamp}-{email.template}-{email.message_id}.json"
        document = {
            "id": email.message_id,
            "template": email.template,
            "created_at": now.isoformat().replace("+00:00", "Z"),
            "from": email.sender,
            "to": email.to,
            "subject": email.subject,
            "text": email.text,
            "html": email.html,
        }
        return _write_atomically(self.directory, name, orjson.dumps(document, option=orjson.OPT_INDENT_2))

    async def send(self, email: OutgoingEmail) -> str:
        path = await asyncio.to_thread(self._write, email)
        return f"outbox:{path.name}"

    async def close(self) -> None:
        return None
