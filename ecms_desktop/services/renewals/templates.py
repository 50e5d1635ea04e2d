"""The renewal e-mails' wording: the built-in Jinja2 templates shipped with the program, a company's
own templates (kept by :class:`~ecms_desktop.services.renewals.service.RenewalService`), rendering
them safely (sandboxed, the HTML autoescaped) and sample values to preview them with."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ecms_desktop import paths
from ecms_desktop.services.core.errors import ValidationError

TEMPLATE_KINDS = ("request", "reminder", "escalation")
#: The token shown in previews, where a real message has its request's token.
PREVIEW_TOKEN = "RQ-PREVIEW00"


@dataclass(frozen=True)
class TemplateSource:
    """The Jinja2 text of one e-mail kind; ``custom`` when the company has its own."""

    kind: str
    subject: str
    text: str
    html: str
    custom: bool


def _template_dir() -> Path:
    return paths.resource_path("templates", "renewal")


def _environments() -> tuple[jinja2.Environment, jinja2.Environment]:
    loader = jinja2.FileSystemLoader(str(_template_dir()))
    html = ImmutableSandboxedEnvironment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    text = ImmutableSandboxedEnvironment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined)
    return html, text


_HTML_ENV, _TEXT_ENV = _environments()


@functools.lru_cache(maxsize=64)
def _compiled(html: bool, body: str) -> jinja2.Template:
    """Compiled once per template text (compiling cost ~60 ms per message in a batch)."""
    return (_HTML_ENV if html else _TEXT_ENV).from_string(body)


def builtin_template(kind: str) -> TemplateSource:
    """The template shipped with the program for ``kind``."""
    if kind not in TEMPLATE_KINDS:
        raise ValidationError(f"Unknown e-mail kind {kind!r}; one of {', '.join(TEMPLATE_KINDS)}.")
    folder = _template_dir()
    return TemplateSource(kind, (folder / f"{kind}.subject.j2").read_text("utf-8").strip(),
                          (folder / f"{kind}.txt.j2").read_text("utf-8"),
                          (folder / f"{kind}.html.j2").read_text("utf-8"), False)


def render_template(source: TemplateSource, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) rendered; the HTML autoescapes every value. ValidationError names the
    part and line of a template mistake."""
    out = []
    for part, env, body in (("subject", _TEXT_ENV, source.subject), ("text", _TEXT_ENV, source.text),
                            ("html", _HTML_ENV, source.html)):
        try:
            out.append(_compiled(env is _HTML_ENV, body).render(**context))
        except jinja2.TemplateSyntaxError as exc:
            raise ValidationError(f"The {source.kind} e-mail's {part} template has a mistake on line "
                                  f"{exc.lineno}: {exc.message}") from exc
        except jinja2.UndefinedError as exc:
            raise ValidationError(f"The {source.kind} e-mail's {part} template uses an unknown value: "
                                  f"{exc.message}") from exc
        except jinja2.TemplateError as exc:
            raise ValidationError(f"The {source.kind} e-mail's {part} template cannot be rendered: {exc}") from exc
    subject = " ".join(out[0].split())
    return subject, out[1], out[2]


def sample_context(kind: str = "request") -> dict[str, Any]:
    """Values to preview a template with, when no real message is at hand."""
    return {
        "company": {"name": "Acme Supply", "legal_name": "Acme Supply Company LLC",
                    "address": "100 Main St\nAustin, TX 78701", "address_one_line": "100 Main St, Austin, TX 78701",
                    "reply_to": "tax@acme.example", "brand_color": "#1F4E79", "logo_cid": None},
        "customer": {"name": "Blue Widgets Inc", "number": "C-1001", "email": "ap@bluewidgets.example"},
        "state": "TX", "state_name": "Texas", "expiry": "2026-03-31", "expired": False,
        "token": PREVIEW_TOKEN, "form_code": "TX-01-339", "form_file": "TX-01-339-C-1001.pdf",
        "certificate_id": 42, "certificate_number": "", "first_request": False, "requested_on": "2026-01-31",
        "state_document": None,
        "reminder_number": 1 if kind == "reminder" else 0, "days_open": 21, "reminders_sent": 2,
        "subject": "",
    }
