"""The loan of the modification tests: 10,000.00 at 15 %, 60 monthly, contract 2025-01-01, first
payment 2025-02-01 (payment 237.90), repaid 237.90 on each of its first six due dates, then
237.90 on 2025-07-20 and 100.00 on 2025-07-25; business date 2025-08-10."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from loans.models import TransactionType
from loans.services import post_transaction
from tests.factories import make_active_loan, set_business_date

MOD_DATE = date(2025, 7, 15)


@pytest.fixture
def modifiable(db, operator):
    set_business_date(date(2025, 8, 10))
    loan = make_active_loan(
        actor=operator,
        external_id="MOD-LOAN",
        loan_amount=Decimal("10000.00"),
        loan_rate=Decimal("15"),
        loan_term=Decimal("60"),
        contract_date=date(2025, 1, 1),
        first_payment_date=date(2025, 2, 1),
    )
    for month in range(2, 8):
        post_transaction(
            loan=loan,
            type=TransactionType.REPAYMENT,
            on=date(2025, month, 1),
            amount=Decimal("237.90"),
            actor=operator,
        )
    kept = post_transaction(
        loan=loan,
        type=TransactionType.REPAYMENT,
        on=date(2025, 7, 20),
        amount=Decimal("237.90"),
        note="card",
        actor=operator,
    )
    dropped = post_transaction(
        loan=loan,
        type=TransactionType.REPAYMENT,
        on=date(2025, 7, 25),
        amount=Decimal("100.00"),
        actor=operator,
    )
    loan.refresh_from_db()
    loan.kept_tx, loan.dropped_tx = kept, dropped
    return loan
