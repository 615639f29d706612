"""A command's refusal in the admin and the wizard is one page message from
``loans.admin_messages.message_for``: a conflict with the loan's state (409) at WARNING, invalid
input (400) at ERROR with the field named in words; never a raw code nor ``None: ...``. And
nothing is written."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from django.contrib import messages
from django.contrib.messages import get_messages

from loans.exceptions import InvalidRequestError, field_error
from loans.models import LoanEvent, LoanSetup, Transaction, TransactionType
from loans.services import post_payoff
from modifications.models import Modification, ModificationStatus
from modifications.services import activate_modification, create_modification
from servicing import services as servicing_services
from servicing.models import ScheduledPayment, ScheduledPaymentStatus
from servicing.services import schedule_payment
from tests.factories import make_active_loan, set_business_date
from tests.loans.test_payoff_admin import loan  # noqa: F401 - Loan L of issue 10
from tests.modifications.conftest import MOD_DATE, modifiable  # noqa: F401 - the wizard's loan

pytestmark = pytest.mark.django_db


def shown(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


def counts() -> tuple[int, int]:
    return Transaction.objects.count(), LoanEvent.objects.count()


# ------------------------------------------------------------------ the payoff page


def test_payoff_page_400_is_an_error_naming_the_field(client, operator, loan):  # noqa: F811
    client.force_login(operator)
    before = counts()
    response = client.post(
        f"/admin/loans/loan/{loan.pk}/payoff/",
        {"transaction_date": "2024-02-14", "amount": "83.00"},
    )
    assert response.status_code == 200
    assert shown(response) == [
        (messages.ERROR, "The payoff on 2024-02-14 is 83.79, not 83.00. Amount: Must be 83.79.")
    ]
    assert response.context["form"].errors["amount"] == ["Must be 83.79."]
    assert counts() == before
    assert not Transaction.objects.filter(type=TransactionType.PAYOFF).exists()


def test_payoff_page_409_is_a_warning(client, operator, loan):  # noqa: F811
    client.force_login(operator)
    post_payoff(loan=loan, on=date(2024, 2, 14), amount=D("83.79"), actor=operator)
    before = counts()
    response = client.post(
        f"/admin/loans/loan/{loan.pk}/payoff/",
        {"transaction_date": "2024-02-14", "amount": "83.79"},
    )
    assert response.status_code == 200  # the page again, the form as it was posted
    assert shown(response) == [(messages.WARNING, "The loan is closed (paid off).")]
    assert response.context["form"].errors == {}
    assert counts() == before
    assert Transaction.objects.filter(type=TransactionType.PAYOFF).count() == 1


# ------------------------------------------------------------------ the scheduled-item cancel


@pytest.fixture
def payment(operator):
    set_business_date(date(2026, 2, 18))
    active = make_active_loan(actor=operator, as_of=date(2026, 2, 18))
    return schedule_payment(
        loan=active,
        scheduled_date=date(2026, 2, 20),
        amount=D("10.00"),
        actor=operator,
        as_of=date(2026, 2, 18),
    )


def cancel(client, payment):
    return client.post(
        "/admin/servicing/scheduledpayment/",
        {
            "action": "cancel_selected_payments",
            "_selected_action": [payment.pk],
            "post": "yes",
            "reason": "borrower paid by phone",
        },
    )


def test_scheduled_item_cancel_409_is_a_warning(client, operator, payment):
    client.force_login(operator)
    servicing_services.cancel_scheduled_payment(payment_id=payment.pk, actor=operator)
    before = counts()
    response = cancel(client, payment)
    assert shown(response) == [
        (messages.WARNING, "0 scheduled payments cancelled; 1 refused."),
        (
            messages.WARNING,
            f"Scheduled payment {payment.pk} ({payment.loan}): Scheduled payment {payment.pk} is "
            "cancelled; only a pending one can be cancelled.",
        ),
    ]
    assert counts() == before


def test_scheduled_item_cancel_400_is_an_error(client, operator, payment, monkeypatch):
    def refuse(**kwargs):
        raise InvalidRequestError(
            "The reason is too long.",
            code="invalid_reason",
            errors=[field_error("cancelReason", "At most 500 characters.", "max_length")],
        )

    monkeypatch.setattr(servicing_services, "cancel_scheduled_payment", refuse)
    client.force_login(operator)
    before = counts()
    response = cancel(client, payment)
    assert shown(response) == [
        (messages.WARNING, "0 scheduled payments cancelled; 1 refused."),
        (
            messages.ERROR,
            f"Scheduled payment {payment.pk} ({payment.loan}): The reason is too long. "
            "Cancel reason: At most 500 characters.",
        ),
    ]
    assert counts() == before
    assert ScheduledPayment.objects.get(pk=payment.pk).status == ScheduledPaymentStatus.PENDING


# ------------------------------------------------------------------ the wizard


def post_date(client, modified, on: str):
    return client.post(
        f"/admin/loans/loan/{modified.pk}/modify/",
        {f"modify_loan_{modified.pk}-current_step": "date", "date-modification_date": on},
    )


def assert_date_refused(client, modified, on: str, level: int, message: str):
    """The date step refuses ``on``: the wizard stays on it with one message at ``level``."""
    response = post_date(client, modified, on)
    assert response.context["wizard"]["steps"].current == "date"
    assert shown(response) == [(level, message)]
    return response


def test_wizard_dates_out_of_range_are_errors(client, operator, modifiable):  # noqa: F811
    client.force_login(operator)
    client.get(f"/admin/loans/loan/{modifiable.pk}/modify/")
    before = counts()
    # Before the contract date is invalid input (400, as for a transaction): an ERROR.
    early = assert_date_refused(
        client,
        modifiable,
        "2024-12-01",
        messages.ERROR,
        "The modification date 2024-12-01 is before the loan's contract date 2025-01-01. "
        "Modification date: Before the contract date.",
    )
    assert early.context["form"].errors["modification_date"] == ["Before the contract date."]
    assert_date_refused(
        client,
        modifiable,
        "2099-01-01",
        messages.ERROR,
        "The modification date 2099-01-01 is after the business date 2025-08-10. "
        "Modification date: After the business date.",
    )
    assert counts() == before
    assert not Modification.objects.exists()
    # On or before an activated modification is a date out of range too (400, as a
    # transaction's date_before_modification): an ERROR on the field.
    create_modification(loan=modifiable, modification_date=MOD_DATE, actor=operator)
    activate_modification(loan=modifiable, actor=operator)
    client.get(f"/admin/loans/loan/{modifiable.pk}/modify/")
    before = counts()
    assert_date_refused(
        client,
        modifiable,
        "2025-07-10",
        messages.ERROR,
        "The modification date 2025-07-10 is on or before the latest modification's date "
        "2025-07-15. Modification date: On or before the latest modification.",
    )
    assert counts() == before
    assert Modification.objects.count() == 1


def done(client, modified):
    """The wizard's ``done()``: the activation, as the last step's post reaches it."""
    from modifications.views import ModificationWizard

    view = ModificationWizard(loan=modified, model_admin=None)
    view.request = client.get("/admin/").wsgi_request
    return view, view.done([])


def test_wizard_activation_409_is_a_warning_and_400_an_error(client, operator, modifiable):  # noqa: F811
    client.force_login(operator)
    modification = create_modification(loan=modifiable, modification_date=MOD_DATE, actor=operator)
    before = counts()
    LoanSetup.objects.filter(pk=modification.setup_id).update(contract_date=date(2025, 7, 16))
    view, response = done(client, modifiable)
    assert response["Location"] == f"/admin/loans/loan/{modifiable.pk}/modify/"
    assert [(m.level, str(m)) for m in get_messages(view.request)] == [
        (
            messages.WARNING,
            "The draft's contract date 2025-07-16 must stay the modification date 2025-07-15. "
            "Contract date: Must be 2025-07-15.",
        )
    ]
    LoanSetup.objects.filter(pk=modification.setup_id).update(contract_date=MOD_DATE)
    set_business_date(date(2025, 7, 1))
    view, response = done(client, modifiable)
    assert response["Location"] == f"/admin/loans/loan/{modifiable.pk}/modify/"
    assert [(m.level, str(m)) for m in get_messages(view.request)] == [
        (messages.ERROR, "The modification date 2025-07-15 is after the business date 2025-07-01.")
    ]
    assert counts() == before
    assert Modification.objects.get().status == ModificationStatus.DRAFT
