"""Render every email the platform sends: a subject, a plain-text body and an HTML body.

Templates live next to this module (`templates/<name>.txt`, `templates/<name>.html`). The HTML
environment autoescapes, so a name or org name such as `<script>` arrives as text, never markup;
the text environment does not (plain text has nothing to escape). Rendering is deterministic for
a given job (no clock, no randomness), so a retried job sends byte-identical content under the
same idempotency key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from pydantic import ValidationError

from shared.email_queue import PROPS, EmailTemplate

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

# Subjects are plain text templates; each value is a Jinja expression body.
SUBJECTS: dict[EmailTemplate, str] = {
    EmailTemplate.MAGIC_LINK: "Your sign-in link for {{ product_name }}",
    EmailTemplate.VERIFY_EMAIL: "Confirm your email for {{ product_name }}",
    EmailTemplate.PASSWORD_RESET: "Reset your {{ product_name }} password",
    # No user-written text in subjects (names are chosen by whoever signs up or invites).
    EmailTemplate.INVITATION: "You are invited to join an organization on {{ product_name }}",
    EmailTemplate.ACCOUNT_EXISTS: "You already have a {{ product_name }} account",
    EmailTemplate.RECOVERY_CODE_USED: "A recovery code was used to sign in to {{ product_name }}",
    EmailTemplate.SECOND_FACTORS_REMOVED: "Second factors removed from your {{ product_name }} account",
    EmailTemplate.PASSWORD_CHANGED: "Your {{ product_name }} password was changed",
}


class InvalidEmailJob(ValueError):
    """The job cannot be rendered (unknown template, missing or malformed context): never retried.

    The message names the offending key, never its value (a link carries a secret token).
    """


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def human_duration(seconds: int) -> str:
    """`900` -> "15 minutes", `3600` -> "1 hour", `86400` -> "24 hours", `604800` -> "7 days"."""

    def plural(value: int, unit: str) -> str:
        return f"{value} {unit}" if value == 1 else f"{value} {unit}s"

    if seconds < 120:
        return plural(max(seconds, 1), "second")
    if seconds < 2 * 3600 and seconds % 3600:
        return plural(round(seconds / 60), "minute")
    if seconds <= 48 * 3600:
        return plural(round(seconds / 3600), "hour")
    return plural(round(seconds / 86400), "day")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _check_context(template: EmailTemplate, context: object) -> dict[str, Any]:
    if not isinstance(context, dict):
        raise InvalidEmailJob("context must be an object")
    try:
        props = PROPS[template].model_validate(context)
    except ValidationError as error:
        keys = sorted({".".join(str(part) for part in e["loc"]) for e in error.errors()})
        raise InvalidEmailJob(
            f"context {', '.join(map(repr, keys))} missing or invalid for template {template.value!r}"
        ) from None
    return props.model_dump(mode="json")


class TemplateRenderer:
    """Two Jinja environments over the same folder: HTML (autoescaped) and text (verbatim)."""

    def __init__(self, product_name: str, directory: Path = TEMPLATE_DIR) -> None:
        self.product_name = product_name
        loader = FileSystemLoader(str(directory))
        self.html_env = Environment(
            loader=loader, autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True
        )
        # Plain text and subjects: nothing to escape, and escaping would mangle `&` in links.
        self.text_env = Environment(
            loader=loader,
            autoescape=False,  # noqa: S701
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._subjects = {name: self.text_env.from_string(body) for name, body in SUBJECTS.items()}

    def render(self, template: object, context: object) -> RenderedEmail:
        """Subject, text and HTML of one job; `InvalidEmailJob` for anything but a known template
        with a context its props model accepts (job arguments come from Redis: untrusted)."""
        name = next((known for known in EmailTemplate if known.value == template), None)
        if name is None:
            raise InvalidEmailJob(f"unknown template {template!r}")
        values = _check_context(name, context)
        values["product_name"] = self.product_name
        if "expires_in_seconds" in values:
            values["expires_in"] = human_duration(values["expires_in_seconds"])
        if "role" in values:
            values["role_article"] = _article(values["role"])
        try:
            subject = self._subjects[name].render(values)
            text = self.text_env.get_template(f"{name.value}.txt").render(values)
            values["subject"] = subject
            html = self.html_env.get_template(f"{name.value}.html").render(values)
        except TemplateError as error:  # a template bug, not a transient condition
            reason = type(error).__name__
            raise InvalidEmailJob(f"template {name.value!r} failed to render: {reason}") from None
        # A subject is one header line: no CR/LF whatever the context says.
        subject = " ".join(subject.split())
        return RenderedEmail(subject=subject, text=text, html=html)
