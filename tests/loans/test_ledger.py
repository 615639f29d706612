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


def test_payoff_accrues_current_interest_by_days():
    periods = base()
    ledger.replay(periods, [])
    owed = ledger.payoff(periods, on=date(2024, 2, 16), rounding_mode="HALF_UP")
    # Installment 1 (10.00 interest) is due; installment 2 accrued 15 of 29 days of its interest.
    expected = periods[0].interest_due + (periods[1].interest_due * 15 / 29).quantize(
        D("0.01"), rounding=ROUND_HALF_UP
    )
    assert owed.principal == D("1000.00") and owed.interest == expected and owed.fees == 0
    assert owed.per_diem == (periods[1].interest_due / 29).quantize(D("0.01"))


# Loan L of issue 10: 100 at 7 %, 6 monthly, contract 2024-01-01, HALF_EVEN.
L = Terms(
    loan_amount=D("100.00"),
    annual_rate_percent=D("7"),
    term=D("6"),
    frequency="MONTHLY",
    contract_date=date(2024, 1, 1),
    first_payment_date=date(2024, 2, 1),
    rounding_mode="HALF_EVEN",
)


def l_periods():
    return ledger.periods_from_schedule(generate_schedule(L))


def pay(key, on, amount, kind=ledger.REPAYMENT):
    return ledger.Entry(key=key, type=kind, date=on, amount=D(amount))


def test_payoff_figure_of_loan_l():
    """L after a 17.01 repayment on 02-01: payoff on 02-14 = 83.57 + 0.22 = 83.79."""
    result = ledger.replay(
        l_periods(), [pay(1, date(2024, 2, 1), "17.01")], rounding_mode="HALF_EVEN"
    )
    owed = ledger.payoff(result.periods, on=date(2024, 2, 14), rounding_mode="HALF_EVEN")
    assert (owed.principal, owed.interest, owed.fees, owed.total) == (
        D("83.57"),
        D("0.22"),
        D("0.00"),
        D("83.79"),
    )
    assert owed.per_diem == D("0.02")  # 0.49 over the 29 days of February 2024
    # The quote does not change the replayed periods.
    assert sum(p.principal_outstanding for p in result.periods) == D("83.57")


def test_payoff_credits_interest_paid_ahead():
    """Issue 10 defect 4: 17.01 on 02-01 and on 02-10; owed on 02-14 = 83.57 + 0.22 - 17.01."""
    entries = [pay(1, date(2024, 2, 1), "17.01"), pay(2, date(2024, 2, 10), "17.01")]
    result = ledger.replay(l_periods(), entries, rounding_mode="HALF_EVEN")
    owed = ledger.payoff(result.periods, on=date(2024, 2, 14), rounding_mode="HALF_EVEN")
    assert owed.total == D("66.78")
    assert (owed.principal, owed.interest) == (D("66.78"), D("0.00"))


def test_payoff_entry_closes_with_nothing_left():
    entries = [
        pay(1, date(2024, 2, 1), "17.01"),
        pay(2, date(2024, 2, 14), "83.79", ledger.PAYOFF),
    ]
    result = ledger.replay(l_periods(), entries, rounding_mode="HALF_EVEN")
    assert result.allocations[2] == ledger.Allocation(principal=D("83.57"), interest=D("0.22"))
    assert result.allocations[1] == ledger.Allocation(principal=D("16.43"), interest=D("0.58"))
    assert sum(p.total_outstanding for p in ledger.live(result.periods)) == 0
    assert all(p.complete for p in ledger.live(result.periods))
    assert [p.due_date for p in ledger.live(result.periods)] == [
        date(2024, 2, 1),
        date(2024, 2, 14),
    ]


def test_termination_never_resplits_an_earlier_repayment():
    """Issue 10 defect 5: ALL_OUTSTANDING, 5.00 on 01-15 (4.42 / 0.58), terminate 01-20."""
    entries = [
        pay(1, date(2024, 1, 15), "5.00"),
        ledger.Entry(key=2, type=ledger.TERMINATION, date=date(2024, 1, 20), amount=D(0)),
    ]
    result = ledger.replay(l_periods(), entries, rounding_mode="HALF_EVEN")
    assert result.allocations[1] == ledger.Allocation(principal=D("4.42"), interest=D("0.58"))
    assert result.allocations[2] == ledger.Allocation(principal=D("95.58"), interest=D("1.47"))
    assert not result.void_terminations


def test_accrued_termination_with_nothing_outstanding_is_void():
    """Issue 10 defect 3: ACCRUED_TO_DATE, 101.50 on 01-10, terminate 01-20: 100.36 owed."""
    entries = [
        pay(1, date(2024, 1, 10), "101.50"),
        ledger.Entry(key=2, type=ledger.TERMINATION, date=date(2024, 1, 20), amount=D(0)),
    ]
    result = ledger.replay(
        l_periods(), entries, termination_interest=ledger.ACCRUED_TO_DATE, rounding_mode="HALF_EVEN"
    )
    assert result.void_terminations == [2]
    assert result.allocations[1].amount == D("101.50")
    assert result.allocations[1].overpayment == 0
    assert sum(p.total_outstanding for p in ledger.live(result.periods)) == D("0.55")
    assert [p.due_date for p in ledger.live(result.periods)][-1] == date(2024, 7, 1)


def test_accrued_termination_credits_interest_paid_ahead():
    """5.00 on 01-15 paid 0.58 interest; terminated 01-20 ACCRUED_TO_DATE earns 0.36 of it."""
    entries = [
        pay(1, date(2024, 1, 15), "5.00"),
        ledger.Entry(key=2, type=ledger.TERMINATION, date=date(2024, 1, 20), amount=D(0)),
    ]
    result = ledger.replay(
        l_periods(), entries, termination_interest=ledger.ACCRUED_TO_DATE, rounding_mode="HALF_EVEN"
    )
    assert result.allocations[1] == ledger.Allocation(principal=D("4.42"), interest=D("0.58"))
    # 100.36 owed - 5.00 paid = 95.36, all principal (0.22 of paid interest credited).
    assert result.allocations[2] == ledger.Allocation(principal=D("95.36"))
    assert result.interest_credit == D("0.22")


def test_replay_books_what_is_left_unallocated_as_overpayment():
    """Issue 10 defect 3: charge 5.00, repay 107.05, undo the charge: 5.00 overpaid."""
    repay = pay(2, date(2024, 1, 10), "107.05")
    charge = ledger.Entry(key=1, type=ledger.CHARGE, date=date(2024, 1, 10), amount=D("5.00"))
    with_charge = ledger.replay(l_periods(), [charge, repay], rounding_mode="HALF_EVEN")
    assert with_charge.allocations[2].overpayment == 0
    without = ledger.replay(l_periods(), [repay], rounding_mode="HALF_EVEN")
    assert without.allocations[2] == ledger.Allocation(
        principal=D("100.00"), interest=D("2.05"), overpayment=D("5.00")
    )
    assert without.unallocated == D("5.00")
