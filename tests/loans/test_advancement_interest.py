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


def test_two_advancements_in_one_period_each_earn_from_their_own_date():
    periods = advanced(MONTHLY, date(2026, 1, 16), "500.00")
    periods = ledger.apply_advancement(
        periods, on=date(2026, 1, 26), amount=D("310.00"), terms=MONTHLY, dynamic=True
    )
    # January: 1,000.00 x 1 % + 500.00 x 1 % x 16/31 + 310.00 x 1 % x 6/31 = 10.00 + 2.5806 +
    # 0.60 = 13.18 (the second advancement used to drop the first's days: 1,500 x 1 % + 0.60 =
    # 15.60). Principal advanced inside it 810.00, earning nothing for 241.94 + 250.00.
    first = periods[0]
    assert (first.interest_due, first.advanced_within, first.unearned_principal) == (
        D("13.18"),
        D("810.00"),
        D("491.94"),
    )


@pytest.mark.django_db
def test_payoff_inside_an_advancements_period_counts_it_from_its_date(api, operator):
    """Audit: the payoff prorated the period's interest (12.58, the advanced 500.00 counted
    from 16 January) evenly over its 31 days: 12.58 x 19/31 = 7.71 on 20 January, though only
    1,000.00 x 1 % x 19/31 + 500.00 x 1 % x 4/31 = 6.13 + 0.65 = 6.77 was earned by then, what
    the daily-accrual engine of a recalculating loan quotes. Per diem 1,500.00 x 1 %/31 = 0.48."""
    set_business_date(date(2026, 1, 1))
    terms = {
        "loan_amount": D("1000.00"),
        "loan_rate": D("12"),
        "loan_term": D("12"),
        "contract_date": date(2026, 1, 1),
        "first_payment_date": date(2026, 2, 1),
    }
    plain = make_active_loan(actor=operator, **terms)
    recalculating = make_active_loan(actor=operator, interest_recalculation=True, **terms)
    set_business_date(date(2026, 1, 20))
    for loan in (plain, recalculating):
        services.post_transaction(
            loan=loan,
            type=TransactionType.ADVANCEMENT,
            on=date(2026, 1, 16),
            amount=D("500.00"),
            actor=operator,
        )
    for loan in (plain, recalculating):
        body = api.get(f"/api/v1/loans/{loan.pk}/payoff?date=2026-01-20&days=1").json()
        assert body["quotes"][0] == {
            "date": "2026-01-20",
            "principal": "1500.00",
            "interest": "6.77",
            "fees": "0.00",
            "total": "1506.77",
        }
        assert body["quotes"][1]["interest"] == "7.26"
    assert api.get(f"/api/v1/loans/{plain.pk}/payoff?date=2026-01-20").json()["perDiem"] == "0.48"

    wrong = api.post(
        f"/api/v1/loans/{plain.pk}/transactions?command=payoff",
        {"transactionDate": "2026-01-20", "transactionAmount": "1507.71"},
        format="json",
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "payoff_amount_mismatch")
    paid = api.post(
        f"/api/v1/loans/{plain.pk}/transactions?command=payoff",
        {"transactionDate": "2026-01-20", "transactionAmount": "1506.77"},
        format="json",
    )
    assert paid.status_code == 200, paid.content
    assert (paid.json()["principalPortion"], paid.json()["interestPortion"]) == (
        "1500.00",
        "6.77",
    )
    plain.refresh_from_db()
    assert plain.status == "CLOSED"
    first = current_schedule(plain).periods.get(period=1)
    assert (first.due_date, first.interest_due, first.total_outstanding) == (
        date(2026, 1, 20),
        D("6.77"),
        D("0.00"),
    )
