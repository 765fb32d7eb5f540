"""The local stack (`python -m devstack.run`) as separate processes behind the real Traefik.

One stack per test session, on free ports in a temporary directory, started exactly as
`make run` starts it; the tests talk to it through Traefik's URL only (plus each service's own
port where the contract says so: /metrics). Stopping it with SIGTERM must leave no process.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.run import LocalStack
from tests.e2e.helpers import Account, mailbox, register
from tests.e2e.processes import running_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    with running_stack() as local:
        yield local


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Iterator[httpx.Client]:
    # No cookie jar: refresh cookies are handled explicitly, as a browser would per path.
    with httpx.Client(base_url=stack.url, timeout=15.0, cookies=None) as http:
        yield http


@pytest.fixture(scope="module")
def alice(client: httpx.Client, stack: LocalStack) -> Account:
    return register(client, mailbox(stack), "alice")


@pytest.fixture(scope="module")
def bob(client: httpx.Client, stack: LocalStack) -> Account:
    return register(client, mailbox(stack), "bob")
