"""The daily-accrual engine (loans.progressive) on Fineract's published figures, and its
properties. Pure: no database."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from loans import progressive as pg
from loans.schedules import Terms, generate_schedule

REPAY = pg.REPAYMENT


def fineract_terms(**kw) -> Terms:
    """100 at 7 %, 6 monthly, FREQUENCY, HALF_EVEN, contract and disbursement 2024-01-01."""
    values = {
        "loan_amount": D("100"),
        "annual_rate_percent": D("7"),
        "term": D(6),
        "frequency": "MONTHLY",
        "contract_date": date(2024, 1, 1),
        "first_payment_date": date(2024, 2, 1),
        "rounding_mode": "HALF_EVEN",
    }
    values.update(kw)
    return Terms(**values)


def pay(key, on, amount):
    return pg.Event(key=key, type=REPAY, date=on, amount=D(amount))


def terminate(on):
    return pg.Event(key="T", type=pg.CONTRACT_TERMINATION, date=on)


def rows(result):
    """(principal, interest, total) of each installment, as strings."""
    return [
        (str(i.principal_due), str(i.interest_due), str(i.total_due)) for i in result.installments
    ]


def outstanding(result):
    return sum((i.total_outstanding for i in result.installments), D(0))


# --------------------------------------------------------------------------------------------
# Published figures (Fineract e2e: EMICalculation-Part2.feature, LoanContractTermination.feature)
# --------------------------------------------------------------------------------------------


def test_nothing_paid_is_the_non_recalculating_schedule():
    result = pg.recalculate(fineract_terms(), [])
    assert rows(result) == [
        ("16.43", "0.58", "17.01"),
        ("16.52", "0.49", "17.01"),
        ("16.62", "0.39", "17.01"),
        ("16.72", "0.29", "17.01"),
        ("16.81", "0.20", "17.01"),
        ("16.90", "0.10", "17.00"),
    ]
    assert result.total_interest == D("2.05")


def test_late_payment_c3249():
    """17.01 paid late on 15 Feb: #1's 16.43/0.58, #2 0.53/16.48, last 17.04, interest 2.09."""
    result = pg.recalculate(fineract_terms(), [pay(1, date(2024, 2, 15), "17.01")])
    assert result.allocations[1] == pg.Portions(principal=D("16.43"), interest=D("0.58"))
    assert rows(result) == [
        ("16.43", "0.58", "17.01"),
        ("16.48", "0.53", "17.01"),
        ("16.62", "0.39", "17.01"),
        ("16.72", "0.29", "17.01"),
        ("16.81", "0.20", "17.01"),
        ("16.94", "0.10", "17.04"),
    ]
    assert [str(i.balance_after) for i in result.installments] == [
        "83.57", "67.09", "50.47", "33.75", "16.94", "0.00",
    ]  # fmt: skip
    assert result.total_interest == D("2.09")
    first = result.installments[0]
    assert first.complete and first.obligations_met_on_date == date(2024, 2, 15)
    assert outstanding(result) == D("85.08")


def test_early_partial_payment_c3253():
    """15.00 paid early on 15 Jan: 14.74 principal / 0.26 interest, #1 interest 0.54, last 16.96."""
    result = pg.recalculate(fineract_terms(), [pay(1, date(2024, 1, 15), "15.00")])
    assert result.allocations[1] == pg.Portions(principal=D("14.74"), interest=D("0.26"))
    assert rows(result) == [
        ("16.47", "0.54", "17.01"),
        ("16.52", "0.49", "17.01"),
        ("16.62", "0.39", "17.01"),
        ("16.72", "0.29", "17.01"),
        ("16.81", "0.20", "17.01"),
        ("16.86", "0.10", "16.96"),
    ]
    assert result.total_interest == D("2.01")
    assert result.installments[0].total_outstanding == D("2.01")
    assert not result.installments[0].complete


def test_payoff_on_15_february_with_nothing_paid_c3245():
    quote = pg.payoff(fineract_terms(), [], on=date(2024, 2, 15))
    assert (quote.principal, quote.interest, quote.fees) == (D("100.00"), D("0.86"), D("0.00"))
    assert quote.total == D("100.86")  # 100.00 + 0.58 + 0.28


def test_termination_accrued_to_date_with_second_installment_unpaid_c3682():
    events = [pay(1, date(2024, 2, 1), "17.01"), terminate(date(2024, 3, 31))]
    result = pg.recalculate(fineract_terms(), events, termination_interest=pg.ACCRUED_TO_DATE)
    assert result.allocations["T"] == pg.Portions(principal=D("83.57"), interest=D("0.96"))
    assert [(i.number, i.due_date) for i in result.installments] == [
        (1, date(2024, 2, 1)),
        (2, date(2024, 3, 1)),
        (3, date(2024, 3, 31)),
    ]
    principal = sum((i.principal_due - i.principal_paid for i in result.installments), D(0))
    interest = sum((i.interest_due - i.interest_paid for i in result.installments), D(0))
    assert (principal, interest, outstanding(result)) == (D("83.57"), D("0.96"), D("84.53"))
    assert result.terminated_on == date(2024, 3, 31)


def test_termination_on_a_due_date_keeps_its_interest_c3678():
    events = [pay(1, date(2024, 2, 1), "17.01"), terminate(date(2024, 3, 1))]
    result = pg.recalculate(fineract_terms(), events, termination_interest=pg.ACCRUED_TO_DATE)
    assert rows(result)[1] == ("83.57", "0.49", "84.06")


def test_undoing_the_repayment_before_a_termination_c3684():
    """Terminated on 29 Feb, the 01 Feb repayment undone: 101.14 = 100.00 + 1.14."""
    result = pg.recalculate(
        fineract_terms(), [terminate(date(2024, 2, 29))], termination_interest=pg.ACCRUED_TO_DATE
    )
    assert rows(result) == [("16.43", "0.58", "17.01"), ("83.57", "0.56", "84.13")]
    assert outstanding(result) == D("101.14")


def test_backdated_repayment_that_settles_everything_c3724():
    """84.06 dated 1 Mar after a termination on 31 Mar: nothing outstanding; without the
    termination (reversed by the system) the installments are paid in advance."""
    events = [
        pay(1, date(2024, 2, 1), "17.01"),
        terminate(date(2024, 3, 31)),
        pay(2, date(2024, 3, 1), "84.06"),
    ]
    replayed = pg.recalculate(fineract_terms(), events, termination_interest=pg.ACCRUED_TO_DATE)
    assert replayed.void_terminations == ("T",) and replayed.terminated_on is None
    assert "T" not in replayed.allocations
    assert replayed.allocations[2] == pg.Portions(principal=D("83.57"), interest=D("0.49"))
    restored = pg.recalculate(fineract_terms(), [events[0], events[2]], horizon=date(2024, 3, 31))
    assert rows(replayed) == rows(restored)
    assert rows(restored) == [
        ("16.43", "0.58", "17.01"),
        ("16.52", "0.49", "17.01"),
        ("17.01", "0.00", "17.01"),
        ("17.01", "0.00", "17.01"),
        ("17.01", "0.00", "17.01"),
        ("16.02", "0.00", "16.02"),
    ]
    assert outstanding(restored) == 0
    assert all(i.obligations_met_on_date == date(2024, 3, 1) for i in restored.installments[1:])


def test_backdated_partial_repayment_under_a_termination_and_its_undo_c3763():
    events = [
        pay(1, date(2024, 2, 1), "17.01"),
        terminate(date(2024, 3, 31)),
        pay(2, date(2024, 3, 1), "27.01"),
    ]
    terminated = pg.recalculate(fineract_terms(), events, termination_interest=pg.ACCRUED_TO_DATE)
    assert terminated.allocations["T"] == pg.Portions(principal=D("57.05"), interest=D("0.32"))
    assert rows(terminated)[2] == ("67.05", "0.32", "67.37")
    assert outstanding(terminated) == D("57.37")
    assert terminated.allocations[2] == pg.Portions(principal=D("26.52"), interest=D("0.49"))
    undone = pg.recalculate(fineract_terms(), [events[0], events[2]], horizon=date(2024, 3, 31))
    assert rows(undone)[2:] == [
        ("16.68", "0.33", "17.01"),
        ("16.72", "0.29", "17.01"),
        ("16.81", "0.20", "17.01"),
        ("16.84", "0.10", "16.94"),
    ]
    assert outstanding(undone) == D("57.97")


def test_excess_late_payment_pays_the_next_installment_with_interest_to_date_c3250():
    result = pg.recalculate(fineract_terms(), [pay(1, date(2024, 2, 15), "34.02")])
    assert result.allocations[1] == pg.Portions(principal=D("33.16"), interest=D("0.86"))
    assert rows(result) == [
        ("16.43", "0.58", "17.01"),
        ("16.73", "0.28", "17.01"),
        ("16.42", "0.59", "17.01"),  # the rest of #2's period accrues to #3
        ("16.72", "0.29", "17.01"),
        ("16.81", "0.20", "17.01"),
        ("16.89", "0.10", "16.99"),
    ]
    assert result.installments[1].obligations_met_on_date == date(2024, 2, 15)


@pytest.mark.parametrize(
    ("amount", "portions", "first"),
    [
        ("0.20", ("0.00", "0.20"), ("16.43", "0.58", "17.01")),  # C3251: interest only
        ("0.27", ("0.01", "0.26"), ("16.43", "0.58", "17.01")),  # C3252
        ("17.00", ("16.74", "0.26"), ("16.75", "0.26", "17.01")),  # C3254: no room, moves on
    ],
)
def test_early_payments_c3251_c3252_c3254(amount, portions, first):
    result = pg.recalculate(fineract_terms(), [pay(1, date(2024, 1, 15), amount)])
    assert result.allocations[1] == pg.Portions(principal=D(portions[0]), interest=D(portions[1]))
    assert rows(result)[0] == first


def test_no_room_for_interest_moves_it_to_the_next_installment_c3254():
    result = pg.recalculate(fineract_terms(), [pay(1, date(2024, 1, 15), "17.00")])
    assert rows(result)[1] == ("16.25", "0.76", "17.01")
    assert rows(result)[-1] == ("16.85", "0.10", "16.95")
    assert result.installments[0].total_outstanding == D("0.01")


def test_two_early_payments_for_one_installment_c3255():
    events = [pay(1, date(2024, 1, 15), "15.00"), pay(2, date(2024, 1, 20), "2.01")]
    result = pg.recalculate(fineract_terms(), events)
    assert result.allocations[2] == pg.Portions(principal=D("1.93"), interest=D("0.08"))
    assert rows(result)[:2] == [("16.67", "0.34", "17.01"), ("16.33", "0.68", "17.01")]
    assert result.installments[0].obligations_met_on_date == date(2024, 1, 20)


def test_partial_late_payment_counts_overdue_principal_to_the_horizon_c3238():
    events = [pay(1, date(2024, 2, 1), "17.01"), pay(2, date(2024, 3, 5), "10.00")]
    result = pg.recalculate(fineract_terms(), events, horizon=date(2024, 3, 5))
    assert result.allocations[2] == pg.Portions(principal=D("9.51"), interest=D("0.49"))
    assert rows(result)[1:3] == [("16.52", "0.49", "17.01"), ("16.61", "0.40", "17.01")]


def test_overdue_principal_accrues_up_to_the_horizon():
    """#2 unpaid: the business date decides how long its principal has accrued for #3."""
    events = [pay(1, date(2024, 2, 1), "17.01")]
    on_due = pg.recalculate(fineract_terms(), events, horizon=date(2024, 3, 1))
    later = pg.recalculate(fineract_terms(), events, horizon=date(2024, 3, 10))
    assert rows(on_due)[2] == ("16.62", "0.39", "17.01")
    assert rows(later)[2] == ("16.59", "0.42", "17.01")  # 67.05 + 16.52 x 9/31 at 7/12 %


def test_payoff_per_diem_and_after_payments():
    quote = pg.payoff(fineract_terms(), [pay(1, date(2024, 2, 1), "17.01")], on=date(2024, 2, 1))
    assert (quote.principal, quote.interest, quote.total) == (D("83.57"), D("0.00"), D("83.57"))
    assert quote.per_diem == D("0.02")  # 83.57 x 7/12 % / 29
    with pytest.raises(ValueError):
        pg.payoff(fineract_terms(), [pay(1, date(2024, 2, 1), "17.01")], on=date(2024, 1, 31))


def test_payoff_on_the_last_day_of_the_calendar_has_no_per_diem():
    """The per diem is the next day's accrual, and 9999-12-31 has none (GET .../payoff?date=
    9999-12-31&days=0 of a recalculating loan was a 500: OverflowError computing the next day)."""
    quote = pg.payoff(fineract_terms(), [pay(1, date(2024, 2, 1), "17.01")], on=date.max)
    # what was owed at maturity, 2024-07-01 (overdue principal accrues up to it), no more
    assert (quote.principal, quote.interest, quote.per_diem) == (D("83.57"), D("2.45"), D("0"))
    quotes = pg.payoffs(fineract_terms(), [], on=date.max - timedelta(days=1), days=1)
    assert [q.on for q in quotes] == [date.max - timedelta(days=1), date.max]
    assert [q.total for q in quotes] == [D("103.48"), D("103.48")]
    assert [q.per_diem for q in quotes] == [D("0"), D("0")]


def test_charges_are_fees_of_their_installment_paid_first():
    events = [
        pg.Event(key="c", type=pg.CHARGE, date=date(2024, 1, 20), amount=D("5.00")),
        pay(1, date(2024, 2, 1), "22.01"),
    ]
    result = pg.recalculate(fineract_terms(), events)
    assert result.allocations["c"] == pg.Portions(fees=D("5.00"))
    assert result.allocations[1] == pg.Portions(
        principal=D("16.43"), interest=D("0.58"), fees=D("5.00")
    )
    assert result.installments[0].complete


def test_advancement_re_amortizes_the_later_installments():
    events = [
        pay(1, date(2024, 2, 1), "17.01"),
        pg.Event(key="a", type=pg.ADVANCEMENT, date=date(2024, 2, 10), amount=D("50.00")),
    ]
    result = pg.recalculate(fineract_terms(), events)
    assert sum((i.principal_due for i in result.installments), D(0)) == D("150.00")
    totals = [i.total_due for i in result.installments[1:-1]]
    assert len(set(totals)) == 1 and totals[0] > D("17.01")
    assert result.allocations["a"] == pg.Portions(principal=D("50.00"))


def test_actual_365_accrues_the_annual_rate_per_day():
    terms = fineract_terms(days_in_year="ACTUAL_365", rounding_mode="HALF_UP")
    base = generate_schedule(terms)
    late = pg.recalculate(terms, [pay(1, date(2024, 2, 11), str(base.periods[0].total))])
    # #2's period: 10 days on 100.00 then 19 days on the scheduled balance, at 7 %/365 a day
    balance = D("100") - base.periods[0].principal
    expected = (D("100") * 10 + balance * 19) * D("7") / D("36500")
    assert late.installments[1].interest_due == expected.quantize(D("0.01"))


def test_equal_principal_is_refused():
    with pytest.raises(ValueError):
        pg.recalculate(fineract_terms(calc_type="EQUAL_PRINCIPAL"), [])


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

frequencies = st.sampled_from(["MONTHLY", "SEMI_MONTHLY", "BIWEEKLY", "WEEKLY", "QUARTERLY"])
bases = st.sampled_from(["FREQUENCY", "ACTUAL_365", "ACTUAL_360", "ACTUAL_ACTUAL"])


@st.composite
def loan_terms(draw):
    frequency = draw(frequencies)
    contract = date(2023, 1, 1) + timedelta(days=draw(st.integers(0, 700)))
    from loans.schedules import step

    return Terms(
        loan_amount=D(draw(st.integers(10_000, 5_000_000))) / 100,
        annual_rate_percent=D(draw(st.integers(0, 3600))) / 100,
        term=D(draw(st.integers(1, 24))),
        frequency=frequency,
        contract_date=contract,
        first_payment_date=step(contract, frequency),
        days_in_year=draw(bases),
        rounding_mode=draw(st.sampled_from(["HALF_UP", "HALF_EVEN"])),
    )


def on_time(schedule):
    return [pay(p.number, p.due_date, p.total) for p in schedule.periods]


@settings(max_examples=80, deadline=None, database=None)
@given(terms=loan_terms())
def test_paying_every_installment_on_its_due_date_is_the_non_recalculating_schedule(terms):
    schedule = generate_schedule(terms)
    result = pg.recalculate(terms, on_time(schedule))
    assert [(i.principal_due, i.interest_due) for i in result.installments] == [
        (p.principal, p.interest) for p in schedule.periods
    ]
    assert outstanding(result) == 0 and result.unallocated == 0
    nothing_paid = pg.recalculate(terms, [], horizon=terms.contract_date)
    assert [(i.principal_due, i.interest_due) for i in nothing_paid.installments] == [
        (p.principal, p.interest) for p in schedule.periods
    ]


@settings(max_examples=80, deadline=None, database=None)
@given(terms=loan_terms(), data=st.data())
def test_paying_early_never_costs_more_interest(terms, data):
    schedule = generate_schedule(terms)
    events = []
    previous = terms.contract_date
    for p in schedule.periods:
        days_early = data.draw(st.integers(0, (p.due_date - previous).days))
        events.append(pay(p.number, p.due_date - timedelta(days=days_early), p.total))
        previous = p.due_date
    result = pg.recalculate(terms, events)
    assert result.total_interest <= schedule.total_interest


@st.composite
def histories(draw):
    terms = draw(loan_terms())
    schedule = generate_schedule(terms)
    end = schedule.periods[-1].due_date + timedelta(days=40)
    span = (end - terms.contract_date).days
    events = []
    for n in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from([REPAY, REPAY, REPAY, pg.CREDIT, pg.CHARGE, pg.ADVANCEMENT]))
        on = terms.contract_date + timedelta(days=draw(st.integers(0, span)))
        amount = D(draw(st.integers(1, int(schedule.payment * 300)))) / 100
        events.append(pg.Event(key=n, type=kind, date=on, amount=amount))
    events.sort(key=lambda e: e.date)
    if draw(st.booleans()):
        on = terms.contract_date + timedelta(days=draw(st.integers(0, span)))
        events = [e for e in events if e.date <= on] + [terminate(on)]
    policy = draw(st.sampled_from([pg.ALL_OUTSTANDING, pg.ACCRUED_TO_DATE]))
    return terms, events, policy


@settings(max_examples=120, deadline=None, database=None)
@given(history=histories())
def test_principal_sums_to_the_amount_and_money_is_conserved(history):
    terms, events, policy = history
    result = pg.recalculate(terms, events, termination_interest=policy)
    advanced = sum((e.amount for e in events if e.type == pg.ADVANCEMENT), D(0))
    installments = result.installments
    assert sum((i.principal_due for i in installments), D(0)) == terms.loan_amount + advanced
    for i in installments:
        assert i.principal_paid <= i.principal_due and i.interest_paid <= i.interest_due
        assert i.fees_paid <= i.fees_due and i.interest_due >= 0
    allocated = [e for e in events if e.type in (REPAY, pg.CREDIT)]
    for e in allocated:
        portions = result.allocations[e.key]
        assert portions.total + portions.overpayment == e.amount
    for key in result.void_terminations:
        assert key not in result.allocations
    if "T" in result.allocations:  # the termination carries what was outstanding after it
        assert result.allocations["T"].total > 0
    paid = sum((result.allocations[e.key].total for e in allocated), D(0))
    assert paid + result.unallocated == sum((e.amount for e in allocated), D(0))
    assert paid == sum((i.total_paid for i in installments), D(0))
    charged = sum((e.amount for e in events if e.type == pg.CHARGE), D(0))
    assert sum((i.fees_due for i in installments), D(0)) == charged


@settings(max_examples=80, deadline=None, database=None)
@given(history=histories(), data=st.data())
def test_paying_the_payoff_settles_the_loan(history, data):
    terms, events, policy = history
    events = [e for e in events if e.type != pg.CONTRACT_TERMINATION]
    latest = max([terms.contract_date, *(e.date for e in events)])
    on = latest + timedelta(days=data.draw(st.integers(0, 60)))
    quote = pg.payoff(terms, events, on=on, termination_interest=policy)
    assume(quote.total > 0)
    settled = pg.recalculate(terms, [*events, pay("payoff", on, quote.total)], horizon=on)
    assert settled.allocations["payoff"].total == quote.total
    assert outstanding(settled) == 0
    assert quote.per_diem >= 0


def test_a_charge_off_stops_the_accrual():
    events = [
        pay(1, date(2024, 2, 1), "17.01"),
        pg.Event(key="co", type=pg.CHARGE_OFF, date=date(2024, 2, 15)),
    ]
    result = pg.recalculate(fineract_terms(), events)
    # #2 earns 14 of its 29 days on 83.57 (0.24), nothing after; the installments stay
    assert [i.interest_due for i in result.installments[1:]] == [D("0.24")] + [D("0.00")] * 4
    assert sum((i.principal_due for i in result.installments), D(0)) == D("100.00")
    quote = pg.payoff(fineract_terms(), events, on=date(2024, 5, 1))
    assert (quote.interest, quote.per_diem) == (D("0.24"), D("0.00"))


def test_payoffs_for_following_days_agree_with_single_quotes():
    events = [pay(1, date(2024, 2, 15), "17.01")]
    quotes = pg.payoffs(fineract_terms(), events, on=date(2024, 2, 25), days=10)
    assert [q.on for q in quotes] == [date(2024, 2, 25) + timedelta(days=n) for n in range(11)]
    for q in quotes:
        assert q == pg.payoff(fineract_terms(), events, on=q.on)
    assert quotes[0].per_diem == quotes[1].interest - quotes[0].interest
