"""Test data builders that go through the services (so tests see real loans)."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from loans import services
from loans.models import BusinessDate

_counter = itertools.count(1)


def set_business_date(on: date) -> date:
    BusinessDate.objects.update_or_create(pk=1, defaults={"date": on})
    return on


def make_loan(
    *,
    actor=None,
    external_id: str | None = None,
    schedule_engine: str = "DYNAMIC",
    borrower=None,
    **setup,
):
    terms = {
        "loan_amount": Decimal("1000.00"),
        "loan_rate": Decimal("12"),
        "loan_term": Decimal("12"),
        "payment_frequency": "MONTHLY",
        "contract_date": date(2026, 1, 1),
        "first_payment_date": date(2026, 2, 1),
    }
    terms.update(setup)
    n = next(_counter)
    return services.create_loan(
        actor=actor,
        setup=terms,
        borrower=borrower,
        borrower_data=None
        if borrower
        else {
            "first_name": "Ada",
            "last_name": f"Borrower{n}",
            "email": f"ada{n}@example.com",
            "phone": "+15550100",
            "timezone": "America/New_York",
        },
        external_id=external_id or f"EXT-{n:05d}",
        schedule_engine=schedule_engine,
    )


def make_active_loan(*, actor=None, as_of: date | None = None, **kwargs):
    loan = make_loan(actor=actor, **kwargs)
    if as_of is None:
        row = BusinessDate.objects.filter(pk=1).first()
        as_of = row.date if row else max(loan.setup.contract_date, date(2026, 2, 18))
    services.activate_loan(loan=loan, actor=actor, as_of=as_of)
    loan.refresh_from_db()
    return loan


def post_repayment(loan, on: date, amount: str, *, actor, **kwargs):
    """A repayment through the command (``post_transaction``), as another tab or client posts."""
    from loans.models import TransactionType
    from loans.services import post_transaction

    return post_transaction(
        loan=loan,
        type=TransactionType.REPAYMENT,
        on=on,
        amount=Decimal(amount),
        actor=actor,
        **kwargs,
    )
