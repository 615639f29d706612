"""Messages are sentences: an enum value reads as words with the right article ("only a
pending one", "an active loan"), never a raw name such as ``ACTIVE`` or "a ACTIVE"."""

from __future__ import annotations

import ast
import re
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.db import models

from loans import charge_off, selectors
from loans import models as loan_models
from loans.exceptions import ConflictError
from loans.formatting import article, words
from modifications import models as modification_models
from servicing import models as servicing_models
from servicing.services import cancel_scheduled_payment, schedule_payment
from tests.factories import make_active_loan, make_loan, set_business_date

ROOT = Path(__file__).resolve().parent.parent


def test_words_and_article():
    assert words("CONTRACT_TERMINATION") == "contract termination"
    assert words("CHARGE_OFF") == "charge-off"
    assert words("PENDING") == "pending"
    assert article(words("ACTIVE")) == "an active"
    assert article(words("OVERPAID")) == "an overpaid"
    assert article(words("PENDING")) == "a pending"
    assert article(words("ADVANCEMENT")) == "an advancement"


@pytest.mark.django_db
def test_refusals_on_a_pending_loan_read_as_sentences():
    loan = make_loan()
    as_of = set_business_date(date(2026, 2, 18))
    assert selectors.termination_refusals(loan, as_of=as_of)[0]["detail"] == (
        "The loan is pending; only an active loan can be terminated."
    )
    assert charge_off.charge_off_refusals(loan, as_of=as_of)[0]["detail"] == (
        "The loan is pending; only an active loan can be charged off."
    )
    assert selectors.undo_termination_state(loan)[1][0]["detail"] == (
        "The loan is pending; only an active loan can have its termination undone."
    )


@pytest.mark.django_db
def test_cancelling_a_cancelled_payment_says_a_pending_one(operator):
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan()
    payment = schedule_payment(
        loan=loan, amount=D("50.00"), scheduled_date=date(2026, 3, 1), actor=operator
    )
    cancel_scheduled_payment(payment_id=payment.pk, actor=operator)
    with pytest.raises(ConflictError) as exc:
        cancel_scheduled_payment(payment_id=payment.pk, actor=operator)
    assert exc.value.message == (
        f"Scheduled payment {payment.pk} is cancelled; only a pending one can be cancelled."
    )
    assert exc.value.code == "not_pending"


def _enum_values() -> set[str]:
    values = set()
    for module in (loan_models, servicing_models, modification_models):
        for item in vars(module).values():
            if isinstance(item, type) and issubclass(item, models.TextChoices):
                values.update(item.values)
    return values


def _bad_pattern() -> re.Pattern:
    """ "a ACTIVE", "an PENDING", "a {tx.type}", "only an ACTIVE", "is {loan.status};"."""
    names = "|".join(sorted(_enum_values(), key=len, reverse=True))
    return re.compile(
        rf"\b(a|an) (?:(?:{names})\b|\{{[a-z_.]*(?:status|type|engine|pending)\}})"
        r"|\bis \{[a-z_.]*status\}[;.,]"
    )


def _strings(tree: ast.AST):
    """Every string literal but docstrings; an f-string with its fields as ``{expression}``."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    inner = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inner.update(id(part) for part in node.values)
            yield (
                node.lineno,
                "".join(
                    part.value
                    if isinstance(part, ast.Constant)
                    else "{" + ast.unparse(part.value) + "}"
                    for part in node.values
                ),
            )
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and id(node) not in inner
        ):
            yield node.lineno, node.value


def test_no_message_writes_a_raw_enum_after_an_article():
    bad, found = _bad_pattern(), []
    for app in ("loans", "modifications", "servicing"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for number, text in _strings(ast.parse(path.read_text())):
                if bad.search(text):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {text}")
    assert found == []
