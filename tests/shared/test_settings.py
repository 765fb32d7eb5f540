"""Settings fail fast with one readable message naming every bad variable, never a value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.settings import SettingsError, load_settings

BASE = {"database_url": "postgresql://u@127.0.0.1/db", "redis_url": "redis://127.0.0.1:6379/0"}


def test_every_bad_variable_is_named_in_one_message():
    with pytest.raises(SettingsError) as info:
        load_settings(
            database_url="mysql://nope",
            redis_url="not a url",
            argon2_time_cost=0,
            cors_origins="https://ok.example,ftp://bad",
            env="staging",
        )
    text = str(info.value)
    for name in ("DATABASE_URL", "REDIS_URL", "ARGON2_TIME_COST", "CORS_ORIGINS", "ENV"):
        assert name in text
    assert len(info.value.lines) == 5


def test_secret_values_never_appear_in_the_message():
    secret = "sup3r-s3cret-value-do-not-print"
    with pytest.raises(SettingsError) as info:
        load_settings(**BASE, resend_api_key=["not", "a", "string", secret], auth_db_password={"x": secret})
    assert secret not in str(info.value)
    assert "RESEND_API_KEY" in str(info.value)


def test_production_refuses_development_defaults():
    with pytest.raises(SettingsError) as info:
        load_settings(**BASE, env="production", cookie_secure=False, cors_origins="*")
    text = str(info.value)
    assert "COOKIE_SECURE" in text
    assert "CORS_ORIGINS" in text
    assert "APP_BASE_URL" in text
    assert "EMAIL_FROM" in text


def test_production_with_real_values_is_accepted():
    settings = load_settings(
        **BASE,
        env="production",
        app_base_url="https://app.example.org",
        email_from="BlockBot <no-reply@mail.example.org>",
        cors_origins="https://app.example.org",
    )
    assert settings.cookie_secure is True
    assert settings.cors_origins == ["https://app.example.org"]


def test_lists_accept_csv_and_json():
    a = load_settings(**BASE, trusted_proxies="10.0.0.0/8, 172.16.0.0/12")
    b = load_settings(**BASE, trusted_proxies='["10.0.0.0/8", "172.16.0.0/12"]')
    assert a.trusted_proxies == b.trusted_proxies
    assert len(a.trusted_proxies) == 2


def test_a_process_with_bad_variables_exits_2_with_the_names_and_no_traceback():
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "REDIS_URL": "not a url"}
    code = "from shared.settings import get_settings; get_settings()"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    assert result.returncode == 2
    assert "REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # starts each service as a process
def test_services_that_need_the_database_refuse_to_start_without_it():
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "REDIS_URL": "redis://127.0.0.1:1/0"}
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    for module in ("services.migrate", "services.api.main", "services.auth.main"):
        result = subprocess.run(
            [sys.executable, "-c", f"import runpy; runpy.run_module('{module}', run_name='__main__')"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            cwd=root,
        )
        assert result.returncode == 2, (module, result.stderr)
        assert "DATABASE_URL" in result.stderr
        assert "Traceback" not in result.stderr


def test_the_dotenv_file_can_be_switched_off(tmp_path, monkeypatch):
    """`make run` sets BLOCKBOT_ENV_FILE empty: the Compose `.env` never reaches the local stack."""
    (tmp_path / ".env").write_text("RESEND_API_KEY=re_from_the_compose_env_file\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESEND_API_KEY", raising=False)
    monkeypatch.delenv("BLOCKBOT_ENV_FILE", raising=False)
    read = load_settings(**BASE)
    assert read.resend_api_key is not None
    assert read.resend_api_key.get_secret_value() == "re_from_the_compose_env_file"
    monkeypatch.setenv("BLOCKBOT_ENV_FILE", "")
    assert load_settings(**BASE).resend_api_key is None


PRODUCTION = {
    "env": "production",
    "app_base_url": "https://app.example.org",
    "email_from": "BlockBot <no-reply@mail.example.org>",
}


@pytest.mark.parametrize(
    ("variable", "overrides"),
    [
        ("DATABASE_URL", {"database_url": "postgresql://u:change-me-postgres@db/blockbot"}),
        ("REDIS_URL", {"redis_url": "redis://:change-me-redis@redis:6379/0"}),
        ("AUTH_DB_PASSWORD", {"auth_db_password": "change-me-auth-db"}),
        ("API_DB_PASSWORD", {"api_db_password": "change-me-api-db"}),
        ("GRAFANA_ADMIN_PASSWORD", {"grafana_admin_password": "change-me-grafana"}),
    ],
)
def test_production_refuses_env_example_placeholders(variable, overrides):
    """Security review finding 13: `.env.example`'s change-me-* passwords were accepted."""
    with pytest.raises(SettingsError) as info:
        load_settings(**{**BASE, **PRODUCTION, **overrides})
    assert variable in str(info.value)
    assert "change-me-" not in str(info.value).replace("(change-me-...)", "")
    load_settings(**{**BASE, **overrides})  # development: a placeholder is fine


def test_the_migrate_job_refuses_placeholders_in_production():
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "ENV": "production",
        "SERVICE_NAME": "migrate",
        "DATABASE_URL": "postgresql://admin:change-me-postgres@127.0.0.1:1/blockbot",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "APP_BASE_URL": "https://app.example.org",
        "EMAIL_FROM": "BlockBot <no-reply@mail.example.org>",
        "AUTH_DB_PASSWORD": "a-real-password-1",
        "API_DB_PASSWORD": "a-real-password-2",
    }
    result = subprocess.run(
        [sys.executable, "-m", "services.migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "DATABASE_URL" in result.stderr and "placeholder" in result.stderr
    assert "change-me-postgres" not in result.stderr
