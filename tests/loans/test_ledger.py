"""The pure ledger: replay invariants (hypothesis), termination collapse, summaries."""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from loans import ledger
from loans.schedules import Terms, generate_schedule

D = Decimal
TERMS = Terms(
    loan_amount=D("1000.00"),
    annual_rate_percent=D("12"),
    term=D("12"),
    frequency="MONTHLY",
    contract_date=date(2024, 1, 1),
    first_payment_date=date(2024, 2, 1),
)


def base():
    return ledger.periods_from_schedule(generate_schedule(TERMS))


entries = st.lists(
    st.tuples(
        st.sampled_from([ledger.REPAYMENT, ledger.CREDIT, ledger.CHARGE]),
        st.integers(min_value=0, max_value=420),
        st.decimals(min_value=D("0.01"), max_value=D("150.00"), places=2),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(entries)
def test_replay_conserves_money(raw):
    periods = base()
    items = sorted(
        (
            ledger.Entry(key=i, type=kind, date=date(2024, 1, 1) + timedelta(days=day), amount=amt)
            for i, (kind, day, amt) in enumerate(raw)
        ),
        key=lambda e: (e.date, e.key),
    )
    result = ledger.replay(periods, items)
    paid_in = sum((e.amount for e in items if e.type != ledger.CHARGE), D(0))
    charged = sum((e.amount for e in items if e.type == ledger.CHARGE), D(0))
    allocated = sum(
        (a.total for k, a in result.allocations.items() if items_by_key(items)[k].type != "CHARGE"),
        D(0),
    )
    assert allocated + result.unallocated == paid_in
    assert sum(p.fees_due for p in periods) == charged
    assert sum(p.total_paid for p in periods) == allocated
    for p in periods:
        assert D(0) <= p.principal_paid <= p.principal_due
        assert D(0) <= p.interest_paid <= p.interest_due
        assert D(0) <= p.fees_paid <= p.fees_due
        assert p.complete == (p.total_outstanding == 0)
    # Oldest first: no installment is paid while an earlier one still has principal or
    # interest outstanding, unless a charge landed on the earlier one afterwards.
    if charged == 0:
        seen_unpaid = False
        for p in periods:
            if seen_unpaid:
                assert p.total_paid == 0
            if p.total_outstanding > 0:
                seen_unpaid = True


def items_by_key(items):
    return {e.key: e for e in items}


def test_collapse_all_outstanding_keeps_due_periods():
    periods = base()
    collapsed = ledger.collapse_for_termination(
        periods, on=date(2024, 4, 15), policy=ledger.ALL_OUTSTANDING, rounding_mode="HALF_UP"
    )
    assert [p.due_date for p in collapsed] == [
        date(2024, 2, 1),
        date(2024, 3, 1),
        date(2024, 4, 1),
        date(2024, 4, 15),
    ]
    last = collapsed[-1]
    assert last.principal_due == sum(p.principal_due for p in periods[3:])
    assert last.interest_due == sum(p.interest_due for p in periods[3:])
    assert last.from_date == date(2024, 4, 1) and last.balance_after == 0


def test_collapse_accrued_to_date_prorates_current_interest():
    periods = base()
    collapsed = ledger.collapse_for_termination(
        periods, on=date(2024, 4, 16), policy=ledger.ACCRUED_TO_DATE, rounding_mode="HALF_UP"
    )
    current = periods[3]  # 2024-04-01 .. 2024-05-01, 30 days; 15 elapsed
    assert collapsed[-1].interest_due == (current.interest_due * 15 / 30).quantize(
        D("0.01"), rounding=ROUND_HALF_UP
    )


def test_collapse_on_or_after_maturity_keeps_periods():
    periods = base()
    same = ledger.collapse_for_termination(
        periods, on=date(2025, 1, 1), policy=ledger.ALL_OUTSTANDING, rounding_mode="HALF_UP"
    )
    assert [p.due_date for p in same] == [p.due_date for p in periods]


def test_outstanding_on_accrues_current_interest_by_days():
    periods = base()
    ledger.replay(periods, [])
    owed = ledger.outstanding_on(periods, on=date(2024, 2, 16), rounding_mode="HALF_UP")
    # Installment 1 (10.00 interest) is due; installment 2 accrued 15 of 29 days of its interest.
    expected = periods[0].interest_due + (periods[1].interest_due * 15 / 29).quantize(
        D("0.01"), rounding=ROUND_HALF_UP
    )
    assert owed.principal == D("1000.00") and owed.interest == expected and owed.fees == 0
