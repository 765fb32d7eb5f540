"""`make run` keeps the Compose `.env` out of its processes and never prints a password."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from devstack.run import Ports, StackRunner, shown_url
from shared.settings import ENV_FILE_VARIABLE, load_settings

pytestmark = [pytest.mark.deploy, pytest.mark.slow]


def test_every_process_of_the_local_stack_ignores_the_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = StackRunner(root=tmp_path, ports=Ports.free(), out=io.StringIO())
    env = runner.base_env()
    assert env[ENV_FILE_VARIABLE] == ""
    # What a service started with that environment reads, in a directory with a Compose .env.
    (tmp_path / ".env").write_text("RESEND_API_KEY=re_production_key\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_FILE_VARIABLE, env[ENV_FILE_VARIABLE])
    monkeypatch.delenv("RESEND_API_KEY", raising=False)
    assert load_settings(database_url="postgresql://u@127.0.0.1/db").resend_api_key is None


def test_the_banner_url_hides_a_password() -> None:
    assert shown_url("postgresql://postgres@127.0.0.1:55432/blockbot") == (
        "postgresql://postgres@127.0.0.1:55432/blockbot"
    )
    assert shown_url("postgresql://admin:s3cret@db.internal:5432/blockbot") == (
        "postgresql://admin:***@db.internal:5432/blockbot"
    )
