"""One way to show an error in the admin and the wizard: ``message_for(exc) -> (level, text)``.

A conflict with the loan's state (409) is a WARNING (the request was fine, the loan is not in a
state that allows it); invalid input (400) and a missing object (404) are an ERROR. Field
errors name the field in words ("First payment date: Must be after the contract date."),
never as a raw code or a camelCase API name, and an error without a field is shown as its
sentence alone (never "None: ...").

``show_error(request, exc, form=...)`` is how a page shows one: the text at its level as a page
message (a form page names the fields by its own labels and marks each field it is about).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.contrib import messages
from django.core.exceptions import ValidationError

from loans.exceptions import DomainError
from loans.forms import form_labels, mark_fields

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def field_words(field: str) -> str:
    """``"borrower.firstName"`` -> ``"Borrower first name"``; ``"loan_term"`` -> ``"Loan
    term"``; list indexes are dropped (``"items[2].amount"`` -> ``"Items amount"``)."""
    parts = [p for p in re.split(r"[.\[\]_]+", field) if p and not p.isdigit()]
    words = " ".join(_CAMEL.sub(" ", p) for p in parts).lower()
    return words[:1].upper() + words[1:]


def _details(errors, labels: Mapping[str, str]) -> list[str]:
    out = []
    for error in errors:
        detail = (error.get("detail") or "").strip()
        if not detail:
            continue
        field = error.get("field")
        out.append(f"{labels.get(field) or field_words(field)}: {detail}" if field else detail)
    return out


def message_for(exc: Exception, *, labels: Mapping[str, str] | None = None) -> tuple[int, str]:
    """The message level and text for a domain error (or a Django ``ValidationError``).
    ``labels`` names fields (by their API name) in a page's own words, e.g. a form's labels."""
    if isinstance(exc, DomainError):
        level = messages.WARNING if exc.status == 409 else messages.ERROR
        text = exc.message.strip()
        extra = [d for d in _details(exc.errors, labels or {}) if d.split(": ", 1)[-1] not in text]
        if extra:
            text = f"{text} {' '.join(d if d.endswith('.') else d + '.' for d in extra)}"
        return level, text
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            parts = [
                f"{field_words(field)}: {' '.join(msgs)}" if field != "__all__" else " ".join(msgs)
                for field, msgs in exc.message_dict.items()
            ]
        else:
            parts = list(exc.messages)
        return messages.ERROR, " ".join(parts)
    raise TypeError(f"message_for() takes a DomainError or ValidationError, not {exc!r}")


def show_error(request, exc: Exception, *, form=None) -> None:
    """Show a command's refusal on the page being rendered or redirected to: ``message_for``'s
    text at its level. On a form page (``form``) the fields are named by the form's labels and
    each field error is also put under the field it is about."""
    level, text = message_for(exc, labels=form_labels(form) if form is not None else None)
    messages.add_message(request, level, text)
    if form is not None:
        mark_fields(form, exc)
