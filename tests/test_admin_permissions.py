"""Every admin command URL, posted by a staff user holding every permission but the one its
command needs, answers 403 and writes nothing.

EXTEND THIS TABLE when you add an admin command page (or a per-loan URL through
``register_loan_view``): one ``AdminCommand`` row with the permission it needs, a ``prepare``
that builds a loan in a state where the command WOULD run (so the 403 is the permission's, not
the state's), the URL and a body that would otherwise succeed. ``test_every_registered_loan_view
_has_a_row`` fails until the new URL has its row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from loans.admin import registered_loan_view_names
from loans.models import BusinessDate, Loan, LoanEvent, Schedule, Transaction
from loans.services import terminate_contract
from modifications.models import Modification
from modifications.services import create_modification
from servicing.models import ScheduledPayment, ServicingEvent
from servicing.services import cancel_servicing, schedule_payment
from tests.conftest import COMMAND_PERMISSIONS
from tests.factories import make_active_loan, make_loan, set_business_date

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 2, 18)


def active(operator) -> Loan:
    loan = make_active_loan(actor=operator, as_of=AS_OF)
    schedule_payment(
        loan=loan, scheduled_date=AS_OF, amount=Decimal("10.00"), actor=operator, as_of=AS_OF
    )
    return loan


def pending(operator) -> Loan:
    return make_loan(actor=operator)


def terminated(operator) -> Loan:
    loan = active(operator)
    terminate_contract(loan=loan, actor=operator, as_of=AS_OF)
    return loan


def not_servicing(operator) -> Loan:
    loan = active(operator)
    cancel_servicing(loan=loan.pk, actor=operator, as_of=AS_OF)
    return loan


def with_draft(operator) -> Loan:
    loan = active(operator)
    create_modification(loan=loan, modification_date=date(2026, 2, 1), actor=operator)
    return loan


def per_loan(suffix: str) -> Callable[[Loan], str]:
    return lambda loan: f"/admin/loans/loan/{loan.pk}/{suffix}/"


@dataclass(frozen=True)
class AdminCommand:
    name: str  # the URL name (``loans_loan_<name>``) or a label for a URL outside the loan page
    permission: str
    prepare: Callable
    url: Callable[[Loan], str]
    data: dict = field(default_factory=dict)


COMMANDS = [
    AdminCommand(
        "terminate_contract",
        "terminate_contract",
        active,
        per_loan("terminate-contract"),
        {"note": "x", "business_date": "2026-02-18"},
    ),
    AdminCommand(
        "undo_contract_termination",
        "terminate_contract",
        terminated,
        per_loan("undo-contract-termination"),
        {"note": "x", "business_date": "2026-02-18"},
    ),
    AdminCommand(
        "cancel_servicing",
        "cancel_servicing",
        active,
        per_loan("cancel-servicing"),
        {"reason": "LMS_CLOSED"},
    ),
    AdminCommand(
        "resume_servicing", "resume_servicing", not_servicing, per_loan("resume-servicing")
    ),
    AdminCommand(
        "modify",
        "modify_loan",
        active,
        per_loan("modify"),
        {"date-modification_date": "2026-02-01"},
    ),
    AdminCommand("modify_preview", "modify_loan", with_draft, per_loan("modify/preview")),
    AdminCommand("cancel_modification", "modify_loan", with_draft, per_loan("cancel-modification")),
    AdminCommand(
        "post_repayment",
        "post_transaction",
        active,
        per_loan("post-repayment"),
        {"transaction_date": "2026-02-01", "amount": "88.85"},
    ),
    AdminCommand("activate", "post_transaction", pending, per_loan("activate")),
    AdminCommand("activate (draft modification)", "modify_loan", with_draft, per_loan("activate")),
    AdminCommand(
        "activate_modification", "modify_loan", with_draft, per_loan("activate-modification")
    ),
    AdminCommand(
        "business date",
        "set_business_date",
        active,
        lambda loan: "/admin/loans/businessdate/1/change/",
        {"date": "2026-03-01"},
    ),
]


def staff_without(django_user_model, permission: str):
    user = django_user_model.objects.create_user(
        username=f"no-{permission}", password="pass-123-pass", is_staff=True
    )
    user.user_permissions.add(
        *Permission.objects.filter(codename__startswith="view_"),
        *Permission.objects.filter(
            content_type__app_label="loans",
            codename__in=[p for p in COMMAND_PERMISSIONS if p != permission],
        ),
    )
    return django_user_model.objects.get(pk=user.pk)


def written(loan: Loan) -> tuple:
    """Everything a command of these pages could write."""
    loan = Loan.objects.get(pk=loan.pk)
    return (
        loan.status,
        loan.sub_status,
        loan.servicing_status,
        loan.stop_servicing_reason,
        loan.modification_in_progress,
        loan.mod_total,
        loan.setup_id,
        LoanEvent.objects.count(),
        Transaction.objects.filter(reversed=False).count(),
        Schedule.objects.count(),
        sorted(Modification.objects.values_list("pk", "status")),
        ServicingEvent.objects.count(),
        sorted(ScheduledPayment.objects.values_list("pk", "status")),
        list(BusinessDate.objects.values_list("date", flat=True)),
    )


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_a_user_lacking_the_permission_gets_403_and_nothing_is_written(
    client, django_user_model, operator, command
):
    set_business_date(AS_OF)
    loan = command.prepare(operator)
    before = written(loan)
    client.force_login(staff_without(django_user_model, command.permission))
    response = client.post(command.url(loan), command.data)
    assert response.status_code == 403, command.name
    assert written(loan) == before


# Pages that landed on main alongside this table and still need their row (their owners: add
# the row, then remove the name here). Nothing may be added to this set.
WITHOUT_A_ROW_YET = {
    "payoff_quote",
    "post_payoff",
    "credit_balance_refund",
    "post_charge",
    "post_credit",
    "post_advancement",
    "reverse_transaction",
}


def test_every_registered_loan_view_has_a_row():
    covered = {c.name for c in COMMANDS} | WITHOUT_A_ROW_YET
    assert set(registered_loan_view_names()) - covered == set()
