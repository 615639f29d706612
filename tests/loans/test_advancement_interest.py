"""An ADVANCEMENT earns interest from its date, as a disbursement does in Fineract's
progressive loan (``ProgressiveEMICalculator.addDisbursement`` splits the interest period at
the disbursement date): the installment whose period holds the date earns the earlier balance's
interest for the whole period and the advanced amount's for the days from the date to the due
date. It used to earn the whole period's interest on the advanced amount (acceptance audit)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal as D

import pytest

from loans import ledger, services
from loans.models import TransactionType
from loans.schedules import Terms, generate_schedule
from loans.selectors import current_schedule
from tests.factories import make_active_loan, set_business_date


def advanced(terms: Terms, on: date, amount: str) -> list[ledger.PeriodState]:
    periods = ledger.periods_from_schedule(generate_schedule(terms))
    return ledger.apply_advancement(periods, on=on, amount=D(amount), terms=terms, dynamic=True)


MONTHLY = Terms(
    loan_amount=D("1000.00"),
    annual_rate_percent=D("12"),
    term=D("12"),
    frequency="MONTHLY",
    contract_date=date(2026, 1, 1),
    first_payment_date=date(2026, 2, 1),
)


def test_mid_period_advancement_earns_from_its_date():
    periods = advanced(MONTHLY, date(2026, 1, 16), "500.00")
    # 1,500.00 re-amortized over the 12 installments: 1,500 x 0.01 / (1 - 1.01^-12) = 133.27.
    # January (31 days) earns 1,000.00 x 1 % for the month and 500.00 x 1 % for the 16 days
    # from 16 January to 1 February: 10.00 + 500 x 0.01 x 16/31 = 10.00 + 2.5806 = 12.58 (the old
    # figure was 1,500.00 x 1 % = 15.00). Principal 133.27 - 12.58 = 120.69, balance 1,379.31;
    # February: 1,379.31 x 1 % = 13.79.
    first, second = periods[0], periods[1]
    assert (first.principal_due, first.interest_due, first.balance_after) == (
        D("120.69"),
        D("12.58"),
        D("1379.31"),
    )
    assert (second.principal_due, second.interest_due) == (D("119.48"), D("13.79"))
    assert sum(p.principal_due for p in periods) == D("1500.00")
    assert sum(p.interest_due for p in periods) == D("96.56")
    last = periods[-1]
    assert (last.principal_due, last.interest_due) == (D("129.30"), D("1.29"))


def test_advancement_on_the_first_day_of_a_period_earns_the_whole_period():
    periods = advanced(MONTHLY, date(2026, 1, 1), "500.00")
    # From the period's start: 1,500.00 x 1 % = 15.00, as before the fix.
    assert (periods[0].principal_due, periods[0].interest_due) == (D("118.27"), D("15.00"))
    assert sum(p.interest_due for p in periods) == D("99.29")


def test_actual_365_advancement_earns_by_days():
    terms = replace(MONTHLY, days_in_year="ACTUAL_365")
    periods = advanced(terms, date(2026, 3, 11), "365.00")
    # January and February keep their figures (10.19, 8.48; balance 841.01 on 1 March). March
    # (31 days) earns 841.01 x 12 % x 31/365 = 8.5713 and the 365.00 advanced on 11 March
    # 365 x 12 % x 21/365 = 2.52 for its 21 days: 11.0913 -> 11.09 (was 1,206.01 x 12 % x 31/365
    # = 12.29). The new level payment over the 10 installments left is 127.37.
    assert [p.interest_due for p in periods[:3]] == [D("10.19"), D("8.48"), D("11.09")]
    assert periods[2].principal_due + periods[2].interest_due == D("127.37")
    assert sum(p.interest_due for p in periods) == D("85.09")


@pytest.mark.django_db
def test_recalculating_and_plain_dynamic_loans_agree_when_paid_on_time(operator):
    """Paid on every due date, a recalculating loan (daily accrual, DESIGN §11) earns what the
    non-recalculating schedule says: both count the advanced amount from its date."""
    set_business_date(date(2025, 1, 1))
    terms = {
        "loan_amount": D("1200.00"),
        "loan_rate": D("12"),
        "loan_term": D("12"),
        "contract_date": date(2024, 1, 1),
        "first_payment_date": date(2024, 2, 1),
    }
    plain = make_active_loan(actor=operator, **terms)
    recalculating = make_active_loan(actor=operator, interest_recalculation=True, **terms)
    for loan in (plain, recalculating):
        services.post_transaction(
            loan=loan,
            type=TransactionType.ADVANCEMENT,
            on=date(2024, 3, 15),
            amount=D("300.00"),
            actor=operator,
        )
    installments = list(current_schedule(plain).periods.all())
    for period in installments:
        for loan in (plain, recalculating):
            services.post_transaction(
                loan=loan,
                type=TransactionType.REPAYMENT,
                on=period.due_date,
                amount=period.total_due,
                actor=operator,
            )

    def figures(loan):
        periods = current_schedule(loan).periods.all()
        return [(p.due_date, p.principal_due, p.interest_due) for p in periods]

    # April: 1,009.81 x 1 % + 300.00 x 1 % x 17/31 = 11.74 on both (see test_services).
    assert figures(plain)[2] == (date(2024, 4, 1), D("126.55"), D("11.74"))
    assert figures(recalculating) == figures(plain)
