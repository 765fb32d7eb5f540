"""Development mode: no Resend key, messages land in the outbox folder as readable JSON."""

from __future__ import annotations

import orjson

from services.worker.outbox import OutboxSender
from services.worker.sender import OutgoingEmail
from shared.email_queue import PasswordResetProps, enqueue_email
from tests.worker.helpers import drain, sample


async def test_outbox_mode_writes_one_readable_json_file_per_message(
    worker_settings, producer, fake_resend, tmp_path
) -> None:
    outbox = tmp_path / "dev-outbox"
    settings = worker_settings(resend_api_key=None, dev_outbox_dir=outbox)
    sent = sample("email_jobs_total", template="password_reset", result="sent")
    link = "http://localhost:8080/auth/reset-password#token=abc123"

    message_id = await enqueue_email(
        producer(settings),
        settings,
        to="ada@example.org",
        props=PasswordResetProps(link=link, expires_in_seconds=3600),
    )
    await drain(settings)

    assert fake_resend.requests == []  # nothing left the machine
    [path] = list(outbox.glob("*.json"))
    assert message_id in path.name
    message = orjson.loads(path.read_bytes())
    assert message["to"] == "ada@example.org"
    assert message["subject"] == "Reset your BlockBot password"
    assert link in message["text"]
    assert "<html" in message["html"]
    assert (message["id"], message["template"]) == (message_id, "password_reset")
    assert message["created_at"].endswith("Z")
    assert not list(outbox.glob(".tmp-*"))  # atomic: no temporary leftovers
    assert sample("email_jobs_total", template="password_reset", result="sent") == sent + 1


async def test_outbox_rewrites_the_same_file_for_a_retried_message(tmp_path) -> None:
    sender = OutboxSender(tmp_path)
    await sender.start()
    email = OutgoingEmail(
        message_id="m1",
        idempotency_key="email-m1",
        template="magic_link",
        sender="a@b.test",
        to="c@d.test",
        subject="s",
        text="t",
        html="<p>h</p>",
    )
    first = await sender.send(email)
    second = await sender.send(email)
    assert first == second
    assert len(list(tmp_path.glob("*.json"))) == 1
