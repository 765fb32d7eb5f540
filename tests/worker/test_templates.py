"""Templates: every email renders, HTML escapes context values, subjects stay one line."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.worker.templates import InvalidEmailJob, TemplateRenderer, human_duration
from shared.email_queue import PROPS, EmailTemplate, InvitationProps, MagicLinkProps

renderer = TemplateRenderer("BlockBot")
LINK = "https://app.example.com/auth/accept-invitation#token=abc&x=1"
CONTEXTS: dict[EmailTemplate, dict[str, Any]] = {
    EmailTemplate.MAGIC_LINK: {"link": LINK, "expires_in_seconds": 900},
    EmailTemplate.VERIFY_EMAIL: {"link": LINK, "expires_in_seconds": 86400, "name": "Ada"},
    EmailTemplate.PASSWORD_RESET: {"link": LINK, "expires_in_seconds": 3600},
    EmailTemplate.INVITATION: {
        "link": LINK,
        "expires_in_seconds": 604800,
        "org_name": "Acme",
        "inviter_name": "Grace",
        "role": "admin",
    },
    EmailTemplate.ACCOUNT_EXISTS: {"login_link": LINK, "reset_link": LINK + "2"},
    EmailTemplate.RECOVERY_CODE_USED: {"remaining": 9, "account_link": LINK},
    EmailTemplate.SECOND_FACTORS_REMOVED: {"account_link": LINK},
    EmailTemplate.PASSWORD_CHANGED: {"reset_link": LINK},
}
# Security notices: their "not you" line says to act at once, never to ignore them.
NOTICES = {
    EmailTemplate.RECOVERY_CODE_USED,
    EmailTemplate.SECOND_FACTORS_REMOVED,
    EmailTemplate.PASSWORD_CHANGED,
}


@pytest.mark.parametrize("template", list(EmailTemplate))
def test_every_template_renders_product_link_expiry_and_a_not_you_line(template: EmailTemplate) -> None:
    email = renderer.render(template.value, CONTEXTS[template])
    assert "BlockBot" in email.subject
    for body in (email.text, email.html):
        assert "BlockBot" in body
        if template in NOTICES:
            assert "at once" in body and "ignore" not in body
        else:
            assert "ignore this email" in body
    assert LINK in email.text  # verbatim in text
    assert LINK.replace("&", "&amp;") in email.html  # escaped in HTML, as an attribute must be
    if "expires_in_seconds" in CONTEXTS[template]:
        expected = human_duration(CONTEXTS[template]["expires_in_seconds"])
        assert f"expires in {expected}" in email.text
        assert f"expires in {expected}" in email.html


def test_html_escapes_context_values() -> None:
    email = renderer.render(
        "invitation",
        {
            **CONTEXTS[EmailTemplate.INVITATION],
            "org_name": "<script>alert(1)</script>",
            "inviter_name": 'Eve" onmouseover="x',
        },
    )
    assert "<script>alert(1)</script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert 'Eve" onmouseover' not in email.html
    assert "<script>alert(1)</script>" in email.text  # plain text has nothing to escape


def test_subject_is_a_single_line_whatever_the_context() -> None:
    email = renderer.render(
        "invitation",
        {**CONTEXTS[EmailTemplate.INVITATION], "inviter_name": "Mallory\r\nBcc: victim@example.com"},
    )
    assert "\n" not in email.subject and "\r" not in email.subject


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (30, "30 seconds"),
        (60, "60 seconds"),
        (900, "15 minutes"),
        (3600, "1 hour"),
        (5400, "90 minutes"),
        (86400, "24 hours"),
        (604800, "7 days"),
    ],
)
def test_human_duration(seconds: int, words: str) -> None:
    assert human_duration(seconds) == words


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("nope", {}),
        ("magic_link", {"expires_in_seconds": 900}),
        ("magic_link", {"link": "javascript:alert(1)", "expires_in_seconds": 900}),
        ("magic_link", {"link": "/relative", "expires_in_seconds": 900}),
        ("magic_link", {"link": LINK, "expires_in_seconds": "soon"}),
        ("verify_email", {"link": LINK, "expires_in_seconds": 60, "name": ""}),
    ],
)
def test_invalid_jobs_are_refused_without_echoing_values(template: str, context: dict[str, Any]) -> None:
    with pytest.raises(InvalidEmailJob) as info:
        renderer.render(template, context)
    assert "token" not in str(info.value)


def test_production_refuses_to_start_without_a_resend_key(worker_settings) -> None:
    from services.worker.main import check_settings
    from shared.settings import SettingsError

    settings = worker_settings(
        env="production", resend_api_key=None, app_base_url="https://app.example.com", cookie_secure=True
    )
    with pytest.raises(SettingsError, match="RESEND_API_KEY"):
        check_settings(settings)


@pytest.mark.parametrize(
    ("props", "values"),
    [
        (MagicLinkProps, {"link": "javascript:alert('token=abc')", "expires_in_seconds": 900}),
        (MagicLinkProps, {"link": "/auth/magic#token=abc", "expires_in_seconds": 900}),
        (MagicLinkProps, {"link": LINK, "expires_in_seconds": True}),
        (InvitationProps, {**CONTEXTS[EmailTemplate.INVITATION], "role": "emperor"}),
        (InvitationProps, {**CONTEXTS[EmailTemplate.INVITATION], "org_name": "   "}),
    ],
)
def test_props_are_checked_when_the_job_is_built_without_echoing_values(props, values) -> None:
    with pytest.raises(ValidationError) as info:
        props(**values)
    assert "token" not in str(info.value)


def test_every_template_has_props_that_accept_its_context() -> None:
    for template in EmailTemplate:
        assert PROPS[template].template is template
        assert (
            PROPS[template].model_validate(CONTEXTS[template]).model_dump(mode="json") == CONTEXTS[template]
        )


def test_user_written_names_stay_out_of_subjects_and_are_quoted_in_bodies() -> None:
    """Security review finding 6: user-written names never go into the platform's subjects."""
    context = {**CONTEXTS[EmailTemplate.INVITATION], "inviter_name": "IT desk", "org_name": "Payroll"}
    email = renderer.render("invitation", context)
    assert "IT desk" not in email.subject and "Payroll" not in email.subject
    assert '"IT desk"' in email.text and '"Payroll"' in email.text
    verify = renderer.render("verify_email", {**CONTEXTS[EmailTemplate.VERIFY_EMAIL], "name": "Support"})
    assert "Support" not in verify.subject and '"Support"' in verify.text
