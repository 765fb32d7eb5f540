"""No job arguments or results stay in Redis once an email is done (security review finding 12).

The job's arguments carry the emailed link, whose token is a credential. While the email is in
flight they are in Redis (and in its AOF); once the job ends, sent or dead-lettered, nothing of
it may remain.
"""

from __future__ import annotations

import pytest

from devstack.fake_resend import FakeResend
from tests.worker.helpers import drain
from tests.worker.test_send import TOKEN, queue_magic_link


async def _traces_of(redis, message_id: str) -> list[bytes]:
    """Keys naming the job, and any arq key whose value still holds the token."""
    found = [key async for key in redis.scan_iter(match=f"*email-{message_id}*")]
    async for key in redis.scan_iter(match="arq:*"):
        if await redis.type(key) == b"string" and TOKEN.encode() in (await redis.get(key) or b""):
            found.append(key)
    return found


@pytest.mark.parametrize("fail_status", [None, 422])
async def test_nothing_of_a_finished_job_stays_in_redis(
    worker_settings, producer, fake_resend: FakeResend, fail_status: int | None
) -> None:
    settings = worker_settings()
    if fail_status is not None:
        fake_resend.fail_next(1, fail_status)  # a permanent failure: dead-lettered
    message_id = await queue_magic_link(producer, settings)
    redis = producer(settings)
    assert await _traces_of(redis, message_id)  # in flight: the job is there
    await drain(settings)
    assert await _traces_of(redis, message_id) == []
