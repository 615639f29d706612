"""Every admin command URL, posted by a staff user holding every permission but the one its
command needs, answers 403 and writes nothing.

EXTEND THIS TABLE when you add an admin command page (a URL of ``LoanAdmin.get_urls`` or a
per-loan URL through ``register_loan_view``): one ``AdminCommand`` row with the permission it
needs (a tuple when either of several opens it: all are withheld), a ``prepare`` that builds a
loan in a state where the command WOULD run (so the 403 is the permission's, not the state's),
the URL and a body that would otherwise succeed (a dict, or ``body(loan)`` when it depends on
the loan). ``test_every_loan_admin_url_has_a_row`` fails until the new URL has its row; there
is no list of exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission

from loans import selectors
from loans.models import BusinessDate, Loan, LoanEvent, Schedule, Transaction
from loans.services import charge_off, post_transaction, reverse_transaction, terminate_contract
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


def charged_off(operator) -> Loan:
    loan = active(operator)
    charge_off(loan, actor=operator, as_of=AS_OF)
    return loan


def with_draft(operator) -> Loan:
    loan = active(operator)
    create_modification(loan=loan, modification_date=date(2026, 2, 1), actor=operator)
    return loan


def repaid(operator) -> Loan:
    """Active, with a repayment to reverse."""
    loan = active(operator)
    post_transaction(
        loan=loan, type="REPAYMENT", on=AS_OF, amount=Decimal("88.85"), actor=operator, as_of=AS_OF
    )
    return loan


def overpaid(operator) -> Loan:
    """Repaid in full with a 10.00 charge that is then reversed: a credit balance of 10.00."""
    loan = active(operator)
    charge = post_transaction(
        loan=loan, type="CHARGE", on=AS_OF, amount=Decimal("10.00"), actor=operator, as_of=AS_OF
    )
    owed = selectors.loan_summary(loan, as_of=AS_OF).total_outstanding
    post_transaction(
        loan=loan, type="REPAYMENT", on=AS_OF, amount=owed, actor=operator, as_of=AS_OF
    )
    reverse_transaction(loan=loan, transaction_id=charge.pk, actor=operator, as_of=AS_OF)
    assert selectors.credit_balance(loan) == Decimal("10.00")
    return loan


def payoff_body(loan: Loan) -> dict:
    total = selectors.payoff_quotes(loan, on=AS_OF, days=0).quotes[0].total
    return {"transaction_date": "2026-02-18", "amount": str(total)}


def first_repayment(loan: Loan) -> int:
    return loan.transactions.get(type="REPAYMENT").pk


EVERY_LOANS_PERMISSION = (
    *COMMAND_PERMISSIONS,
    *(
        f"{action}_{model._meta.model_name}"
        for model in apps.get_app_config("loans").get_models()
        for action in ("add", "change", "delete", "view")
    ),
)


def per_loan(suffix: str) -> Callable[[Loan], str]:
    return lambda loan: f"/admin/loans/loan/{loan.pk}/{suffix}/"


@dataclass(frozen=True)
class AdminCommand:
    name: str  # the URL name (``loans_loan_<name>``) or a label for a URL outside the loan page
    permission: str | tuple[str, ...]  # a tuple: any of them opens the page; all are withheld
    prepare: Callable
    url: Callable[[Loan], str]
    data: dict | Callable[[Loan], dict] = field(default_factory=dict)
    method: str = "post"

    def withheld(self) -> tuple[str, ...]:
        return (self.permission,) if isinstance(self.permission, str) else self.permission

    def body(self, loan: Loan) -> dict:
        return self.data(loan) if callable(self.data) else self.data


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
        "charge_off",
        "charge_off",
        active,
        per_loan("charge-off"),
        {"note": "x", "reason": "BANKRUPTCY", "business_date": "2026-02-18"},
    ),
    AdminCommand(
        "undo_charge_off",
        "charge_off",
        charged_off,
        per_loan("undo-charge-off"),
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
        "post_charge",
        "post_transaction",
        active,
        per_loan("post-charge"),
        {"transaction_date": "2026-02-18", "amount": "5.00", "note": "x"},
    ),
    AdminCommand(
        "post_credit",
        "post_transaction",
        active,
        per_loan("post-credit"),
        {"transaction_date": "2026-02-18", "amount": "5.00", "note": "x"},
    ),
    AdminCommand(
        "post_advancement",
        "post_transaction",
        active,
        per_loan("post-advancement"),
        {"transaction_date": "2026-02-18", "amount": "100.00", "note": "x"},
    ),
    AdminCommand(
        "reverse_transaction",
        "post_transaction",
        repaid,
        lambda loan: f"/admin/loans/loan/{loan.pk}/transactions/{first_repayment(loan)}/reverse/",
        {"note": "posted twice"},
    ),
    AdminCommand("post_payoff", "post_transaction", active, per_loan("payoff"), payoff_body),
    AdminCommand(
        "credit_balance_refund",
        "post_transaction",
        overpaid,
        per_loan("credit-balance-refund"),
        {"transaction_date": "2026-02-18", "amount": "10.00"},
    ),
    AdminCommand(
        "payoff_quote",
        ("view_loan", "post_transaction"),
        active,
        per_loan("payoff-quote"),
        method="get",
    ),
    AdminCommand(
        "create",
        "post_transaction",
        pending,
        lambda loan: "/admin/loans/loan/create/",
        {
            "first_name": "Grace",
            "last_name": "Hopper",
            "timezone": "America/New_York",
            "loan_amount": "1000.00",
            "loan_rate": "12",
            "loan_term": "12",
            "payment_frequency": "MONTHLY",
            "contract_date": "2026-02-18",
            "first_payment_date": "2026-03-18",
            "calc_type": "EQUAL_INSTALLMENTS",
            "days_in_year": "FREQUENCY",
            "rounding_mode": "HALF_UP",
            "termination_interest": "ALL_OUTSTANDING",
            "schedule_engine": "DYNAMIC",
        },
    ),
    AdminCommand(
        "create_preview",
        "post_transaction",
        pending,
        lambda loan: "/admin/loans/loan/create/preview/?loan_amount=1000&loan_rate=12&loan_term=12",
        method="get",
    ),
    AdminCommand(
        "export_csv",
        EVERY_LOANS_PERMISSION,  # the changelist's own rule: any permission of the app
        active,
        lambda loan: "/admin/loans/loan/export.csv",
        method="get",
    ),
    AdminCommand(
        "business date",
        "set_business_date",
        active,
        lambda loan: "/admin/loans/businessdate/1/change/",
        {"date": "2026-03-01"},
    ),
]


def staff_without(django_user_model, withheld: tuple[str, ...]):
    user = django_user_model.objects.create_user(
        username=f"no-{'-'.join(withheld)}"[:150], password="pass-123-pass", is_staff=True
    )
    user.user_permissions.add(
        *Permission.objects.filter(codename__startswith="view_").exclude(codename__in=withheld),
        *Permission.objects.filter(
            content_type__app_label="loans",
            codename__in=[p for p in COMMAND_PERMISSIONS if p not in withheld],
        ),
    )
    return django_user_model.objects.get(pk=user.pk)


def written(loan: Loan) -> tuple:
    """Everything a command of these pages could write."""
    loan = Loan.objects.get(pk=loan.pk)
    return (
        loan.status,
        loan.sub_status,
        loan.charged_off,
        loan.servicing_status,
        loan.stop_servicing_reason,
        loan.modification_in_progress,
        loan.mod_total,
        loan.setup_id,
        LoanEvent.objects.count(),
        Transaction.objects.count(),
        Transaction.objects.filter(reversed=False).count(),
        Loan.objects.count(),
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
    client.force_login(staff_without(django_user_model, command.withheld()))
    response = getattr(client, command.method)(command.url(loan), command.body(loan))
    assert response.status_code == 403, command.name
    assert written(loan) == before


def loan_admin_url_names() -> set[str]:
    """The loan admin's own URLs (``LoanAdmin.get_urls`` and every ``register_loan_view``),
    without the ModelAdmin's standard ones (changelist, change, history, ...)."""
    model_admin = admin.site._registry[Loan]
    standard = {p.name for p in admin.ModelAdmin.get_urls(model_admin)}
    return {
        p.name.removeprefix("loans_loan_")
        for p in model_admin.get_urls()
        if p.name and p.name not in standard
    }


def test_every_loan_admin_url_has_a_row():
    assert loan_admin_url_names() - {c.name for c in COMMANDS} == set()
