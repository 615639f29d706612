"""Tests for the pure-Python amortization engine (loans.schedules). No database."""

from datetime import date, timedelta
from decimal import Decimal as D

import numpy_financial as npf
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from loans.schedules import (
    DAYS_IN_YEAR,
    FREQUENCIES,
    PERIODS_PER_YEAR,
    NegativeAmortizationError,
    PaymentTooSmallError,
    Period,
    Schedule,
    Terms,
    _due_date,
    _period,
    _periods_layout,
    _rate_parts,
    add_months,
    compute_payment,
    due_dates,
    generate_schedule,
    money,
    number_of_periods,
    period_rate,
    solve_term,
    step,
)


def monthly(amount, rate, term, contract, first, **kw):
    return Terms(
        loan_amount=D(amount),
        annual_rate_percent=D(rate),
        term=D(term),
        frequency=kw.pop("frequency", "MONTHLY"),
        contract_date=contract,
        first_payment_date=first,
        **kw,
    )


# --------------------------------------------------------------------------- #
# Published figures
# --------------------------------------------------------------------------- #


def test_published_a_100_at_7_percent_6_months_half_even():
    t = monthly("100", "7", 6, date(2024, 1, 1), date(2024, 2, 1), rounding_mode="HALF_EVEN")
    s = generate_schedule(t)
    assert s.payment == D("17.01")
    assert compute_payment(t) == D("17.01")
    assert [p.total for p in s.periods] == [D("17.01")] * 5 + [D("17.00")]
    assert [p.interest for p in s.periods] == [
        D("0.58"),
        D("0.49"),
        D("0.39"),
        D("0.29"),
        D("0.20"),
        D("0.10"),
    ]
    assert [p.balance_after for p in s.periods] == [
        D("83.57"),
        D("67.05"),
        D("50.43"),
        D("33.71"),
        D("16.90"),
        D("0.00"),
    ]
    assert [p.number for p in s.periods] == [1, 2, 3, 4, 5, 6]
    assert s.total_principal == D("100")


def test_published_b_10000_at_15_percent_60_months():
    t = monthly("10000", "15", 60, date(2024, 1, 15), date(2024, 2, 15))
    s = generate_schedule(t)
    assert s.payment == D("237.90")
    assert len(s.periods) == 60
    assert all(p.total == D("237.90") for p in s.periods[:-1])
    assert s.periods[-1].total == D("237.80")
    assert s.total == D("14273.90")
    assert s.periods[-1].balance_after == D("0.00")


def test_published_c_odd_first_period_changes_interest_not_payment():
    t = monthly("12000", "12.0212", 36, date(2015, 5, 7), date(2015, 5, 8))
    s = generate_schedule(t)
    assert s.payment == D("398.69")
    # 1 day at 12.0212 % / 360: 12000 * 0.120212 / 360 = 4.00707 -> 4.01
    assert s.periods[0].interest == D("4.01")
    assert s.periods[0].from_date == date(2015, 5, 7)
    assert s.periods[1].from_date == date(2015, 5, 8)
    assert s.periods[-1].due_date == date(2018, 4, 8)
    assert s.periods[-1].total == D("234.12")
    assert s.total == D("14188.27")


def test_published_d_biweekly_equal_principal():
    t = Terms(
        loan_amount=D("600"),
        annual_rate_percent=D("24"),
        term=D("6"),
        frequency="BIWEEKLY",
        contract_date=date(2025, 12, 27),
        first_payment_date=date(2026, 1, 10),
        calc_type="EQUAL_PRINCIPAL",
    )
    s = generate_schedule(t)
    assert [p.due_date for p in s.periods] == [
        date(2026, 1, 10),
        date(2026, 1, 24),
        date(2026, 2, 7),
        date(2026, 2, 21),
        date(2026, 3, 7),
        date(2026, 3, 21),
    ]
    assert [p.principal for p in s.periods] == [D("100.00")] * 6
    assert [p.interest for p in s.periods] == [
        D("5.54"),
        D("4.62"),
        D("3.69"),
        D("2.77"),
        D("1.85"),
        D("0.92"),
    ]
    assert s.payment == D("105.54")  # first installment's total
    assert s.total_interest == D("19.39")
    assert s.periods[-1].balance_after == 0


# --------------------------------------------------------------------------- #
# Dates
# --------------------------------------------------------------------------- #


def test_add_months_clamps_and_keeps_anchor():
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2024, 2, 29), 1, anchor_day=31) == date(2024, 3, 31)
    assert add_months(date(2024, 11, 30), 3) == date(2025, 2, 28)
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)


def test_monthly_due_dates_month_end():
    assert due_dates(date(2024, 1, 31), "MONTHLY", 5) == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
    ]


def test_semi_monthly_due_dates():
    assert due_dates(date(2024, 1, 1), "SEMI_MONTHLY", 5) == [
        date(2024, 1, 1),
        date(2024, 1, 16),
        date(2024, 2, 1),
        date(2024, 2, 16),
        date(2024, 3, 1),
    ]
    # odd dates = preceding even date + 15 days; even dates keep the anchor day
    assert due_dates(date(2024, 1, 31), "SEMI_MONTHLY", 7) == [
        date(2024, 1, 31),
        date(2024, 2, 15),
        date(2024, 2, 29),
        date(2024, 3, 15),
        date(2024, 3, 31),
        date(2024, 4, 15),
        date(2024, 4, 30),
    ]


def test_weekly_biweekly_quarterly_annually_due_dates():
    assert due_dates(date(2024, 12, 24), "WEEKLY", 3) == [
        date(2024, 12, 24),
        date(2024, 12, 31),
        date(2025, 1, 7),
    ]
    assert due_dates(date(2024, 12, 24), "BIWEEKLY", 3) == [
        date(2024, 12, 24),
        date(2025, 1, 7),
        date(2025, 1, 21),
    ]
    assert due_dates(date(2023, 11, 30), "QUARTERLY", 5) == [
        date(2023, 11, 30),
        date(2024, 2, 29),
        date(2024, 5, 30),
        date(2024, 8, 30),
        date(2024, 11, 30),
    ]
    assert due_dates(date(2024, 2, 29), "ANNUALLY", 5) == [
        date(2024, 2, 29),
        date(2025, 2, 28),
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),
    ]


def test_step():
    d = date(2024, 1, 31)
    assert step(d, "MONTHLY") == date(2024, 2, 29)
    assert step(date(2024, 2, 29), "MONTHLY", anchor_day=31) == date(2024, 3, 31)
    assert step(d, "QUARTERLY") == date(2024, 4, 30)
    assert step(d, "ANNUALLY") == date(2025, 1, 31)
    assert step(d, "SEMI_MONTHLY") == d + timedelta(days=15)
    assert step(d, "BIWEEKLY") == d + timedelta(days=14)
    assert step(d, "WEEKLY") == d + timedelta(days=7)
    with pytest.raises(ValueError):
        step(d, "DAILY")


def test_periods_per_year():
    assert PERIODS_PER_YEAR == {
        "MONTHLY": 12,
        "SEMI_MONTHLY": 24,
        "BIWEEKLY": 26,
        "WEEKLY": 52,
        "QUARTERLY": 4,
        "ANNUALLY": 1,
    }


# --------------------------------------------------------------------------- #
# Period rates / day counts
# --------------------------------------------------------------------------- #


def _rate(f, t, diy, regular=True, freq="MONTHLY", annual="12"):
    return period_rate(
        from_date=f,
        to_date=t,
        frequency=freq,
        days_in_year=diy,
        annual_rate_percent=D(annual),
        regular=regular,
    )


def _close(a, b):
    return abs(a - b) < D("1e-25")  # the test's own Decimal context has 28 digits


def test_period_rate_each_setting():
    jan, feb = date(2023, 1, 15), date(2023, 2, 15)
    assert _rate(jan, feb, "FREQUENCY") == D("0.01")
    assert _rate(jan, feb, "FREQUENCY", freq="QUARTERLY") == D("0.03")
    assert _rate(jan, feb, "FREQUENCY", freq="ANNUALLY") == D("0.12")
    assert _close(_rate(jan, feb, "FREQUENCY", freq="BIWEEKLY"), D("0.12") / 26)
    # irregular first period under FREQUENCY: actual days / 360
    assert _close(_rate(jan, date(2023, 1, 16), "FREQUENCY", regular=False), D("0.12") / 360)
    assert _close(_rate(jan, feb, "FREQUENCY", regular=False), D("0.12") * 31 / 360)
    assert _close(_rate(jan, feb, "ACTUAL_365"), D("0.12") * 31 / 365)
    assert _rate(jan, feb, "ACTUAL_365", regular=False) == _rate(jan, feb, "ACTUAL_365")
    assert _close(_rate(jan, feb, "ACTUAL_360"), D("0.12") * 31 / 360)
    assert _close(_rate(jan, feb, "ACTUAL_ACTUAL"), D("0.12") * 31 / 365)
    leap = _rate(date(2024, 1, 15), date(2024, 2, 15), "ACTUAL_ACTUAL")
    assert _close(leap, D("0.12") * 31 / 366)


def test_actual_actual_splits_at_year_end():
    # Fineract splits at 31 December: 2023-12-15 -> 2024-01-15 is (31 Dec - 15 Dec) = 16 days
    # over 365 and (15 Jan - 31 Dec) = 15 days over 366.
    r = _rate(date(2023, 12, 15), date(2024, 1, 15), "ACTUAL_ACTUAL")
    expected = D("0.12") * (D(16) / 365 + D(15) / 366)
    assert _close(r, expected)
    # several years, each split at 31 December: 183/365 (to 2023-12-31) + 366/366 (to
    # 2024-12-31) + 60/365 (to 2025-03-01)
    r = _rate(date(2023, 7, 1), date(2025, 3, 1), "ACTUAL_ACTUAL", freq="ANNUALLY")
    expected = D("0.12") * (D(183) / 365 + 1 + D(60) / 365)
    assert _close(r, expected)


def test_actual_actual_fineract_figure_across_31_december():
    """Issue 10 defect 1: 10,000 at 12 %, 6 monthly, 2023-12-12 -> 2024-01-12, HALF_EVEN:
    19/365 + 12/366 gives first interest 101.81, payment 1,725.56, last 1,725.59."""
    t = monthly(
        "10000",
        "12",
        6,
        date(2023, 12, 12),
        date(2024, 1, 12),
        days_in_year="ACTUAL_ACTUAL",
        rounding_mode="HALF_EVEN",
    )
    s = generate_schedule(t)
    assert s.payment == D("1725.56") == compute_payment(t)
    assert s.periods[0].interest == D("101.81")
    assert [p.total for p in s.periods] == [D("1725.56")] * 5 + [D("1725.59")]
    assert s.total_principal == D("10000")


@pytest.mark.parametrize(
    "amount, rate, term, first_payment, interest, payment",
    [
        # Issue 10 defect 6: a 45-day first period under FREQUENCY accrues more than the payment.
        ("10000", "24.99", 60, date(2024, 2, 15), D("312.38"), D("293.45")),
        ("250000", "4", 360, date(2024, 2, 15), D("1250.00"), D("1193.54")),
    ],
)
def test_negative_amortization_names_the_period(
    amount, rate, term, first_payment, interest, payment
):
    t = monthly(amount, rate, term, date(2024, 1, 1), first_payment)
    with pytest.raises(NegativeAmortizationError) as exc:
        generate_schedule(t)
    assert (exc.value.period, exc.value.interest, exc.value.payment) == (1, interest, payment)
    assert isinstance(exc.value, PaymentTooSmallError)


def test_negative_amortization_in_a_later_period_of_a_given_payment():
    # ACTUAL_365 with a given payment equal to a 28-day period's interest plus a cent: the
    # 31-day periods that follow accrue more than the payment.
    t = monthly(
        "100000",
        "12",
        3,
        date(2023, 2, 1),
        date(2023, 3, 1),
        days_in_year="ACTUAL_365",
        payment=D("920.56"),
    )
    with pytest.raises(NegativeAmortizationError) as exc:
        generate_schedule(t)
    assert exc.value.period == 2


def test_actual_365_hand_checked():
    # 1000 at 12 %, 3 monthly, 2023-01-15 -> 02-15 (31 d), 03-15 (28 d), 04-15 (31 d)
    # r = .12*31/365 = .010191781, .12*28/365 = .009205479, r3 = r1
    # X = 1000*(1+r1)(1+r2)(1+r3) / ((1+r2)(1+r3) + (1+r3) + 1) = 339.930467 -> 339.93
    # I1 = 1000*r1   = 10.19178 -> 10.19  P1 = 329.74  B1 = 670.26
    # I2 = 670.26*r2 =  6.17006 ->  6.17  P2 = 333.76  B2 = 336.50
    # I3 = 336.50*r3 =  3.42953 ->  3.43  P3 = 336.50 (last)  total 339.93
    t = monthly("1000", "12", 3, date(2023, 1, 15), date(2023, 2, 15), days_in_year="ACTUAL_365")
    s = generate_schedule(t)
    assert s.payment == D("339.93") == compute_payment(t)
    assert [p.interest for p in s.periods] == [D("10.19"), D("6.17"), D("3.43")]
    assert [p.principal for p in s.periods] == [D("329.74"), D("333.76"), D("336.50")]
    assert [p.balance_after for p in s.periods] == [D("670.26"), D("336.50"), D("0.00")]
    assert [p.total for p in s.periods] == [D("339.93")] * 3


def test_actual_360_hand_checked():
    # same loan, /360: r1 = .12*31/360 = .010333333, r2 = .12*28/360 = .009333333
    # X = 340.022399 -> 340.02
    # I1 = 10.33333 -> 10.33  P1 = 329.69  B1 = 670.31
    # I2 = 670.31*r2 = 6.25623 -> 6.26  P2 = 333.76  B2 = 336.55
    # I3 = 336.55*r1 = 3.47768 -> 3.48  last total = 336.55 + 3.48 = 340.03
    t = monthly("1000", "12", 3, date(2023, 1, 15), date(2023, 2, 15), days_in_year="ACTUAL_360")
    s = generate_schedule(t)
    assert s.payment == D("340.02")
    assert [p.interest for p in s.periods] == [D("10.33"), D("6.26"), D("3.48")]
    assert [p.balance_after for p in s.periods] == [D("670.31"), D("336.55"), D("0.00")]
    assert [p.total for p in s.periods] == [D("340.02"), D("340.02"), D("340.03")]


def test_actual_actual_schedule_across_new_year_hand_checked():
    # 1000 at 12 %, 3 monthly from 2023-11-15:
    # r1 = .12*30/365; r2 = .12*(17/365 + 14/366) (split at 31 Dec); r3 = .12*31/366
    # X = 340.034217 -> 340.03
    # I1 = 9.86301 -> 9.86   B1 = 669.83
    # I2 = 669.83*r2 = 6.81834 -> 6.82   B2 = 336.62
    # I3 = 336.62*r3 = 3.42138 -> 3.42   last total 340.04
    t = monthly(
        "1000", "12", 3, date(2023, 11, 15), date(2023, 12, 15), days_in_year="ACTUAL_ACTUAL"
    )
    s = generate_schedule(t)
    assert s.payment == D("340.03")
    assert [p.interest for p in s.periods] == [D("9.86"), D("6.82"), D("3.42")]
    assert [p.balance_after for p in s.periods] == [D("669.83"), D("336.62"), D("0.00")]
    assert s.periods[-1].total == D("340.04")


# --------------------------------------------------------------------------- #
# Given payment, fractional term, errors, rounding
# --------------------------------------------------------------------------- #


def test_given_larger_payment_shortens_schedule():
    t = monthly("1000", "12", 12, date(2024, 1, 1), date(2024, 2, 1), payment=D("100"))
    s = generate_schedule(t)
    assert s.payment == D("100.00")
    assert len(s.periods) == 11
    assert all(p.total == D("100.00") for p in s.periods[:-1])
    assert s.periods[-1].total < D("100")
    assert s.periods[-1].balance_after == 0
    assert s.total_principal == D("1000")


def test_given_smaller_payment_last_absorbs_balloon():
    t = monthly("1000", "12", 12, date(2024, 1, 1), date(2024, 2, 1), payment=D("80"))
    s = generate_schedule(t)
    assert len(s.periods) == 12
    assert all(p.total == D("80.00") for p in s.periods[:-1])
    last = s.periods[-1]
    assert last.total > D("80")
    assert last.balance_after == 0
    assert last.total == s.periods[-2].balance_after + last.interest


def test_fractional_term_adds_smaller_final_installment():
    # NPER(1 %, 100, 1000) = -ln(0.9)/ln(1.01) = 10.5886
    t = monthly("1000", "12", "10.5886", date(2024, 1, 1), date(2024, 2, 1), payment=D("100"))
    s = generate_schedule(t)
    assert len(s.periods) == 11
    assert all(p.total == D("100.00") for p in s.periods[:-1])
    assert D("0") < s.periods[-1].total < D("100")
    assert s.periods[-1].balance_after == 0
    assert s.total_principal == D("1000")


def test_payment_too_small_raises():
    # first interest = 1000 * 1 % = 10.00
    t = monthly("1000", "12", 12, date(2024, 1, 1), date(2024, 2, 1), payment=D("10.00"))
    with pytest.raises(PaymentTooSmallError):
        generate_schedule(t)
    assert issubclass(PaymentTooSmallError, ValueError)
    ok = monthly("1000", "12", 12, date(2024, 1, 1), date(2024, 2, 1), payment=D("10.01"))
    assert generate_schedule(ok).periods[0].principal == D("0.01")


def test_equal_principal_ignores_given_payment():
    base = {"frequency": "MONTHLY", "calc_type": "EQUAL_PRINCIPAL"}
    a = generate_schedule(monthly("1000", "12", 3, date(2024, 1, 1), date(2024, 2, 1), **base))
    b = generate_schedule(
        monthly("1000", "12", 3, date(2024, 1, 1), date(2024, 2, 1), payment=D("5"), **base)
    )
    assert a == b
    # 1000/3 = 333.33, last absorbs 333.34
    assert [p.principal for p in a.periods] == [D("333.33"), D("333.33"), D("333.34")]
    assert [p.interest for p in a.periods] == [D("10.00"), D("6.67"), D("3.33")]


def test_rounding_modes_differ_on_half_cent():
    assert money(D("0.125"), "HALF_UP") == D("0.13")
    assert money(D("0.125"), "HALF_EVEN") == D("0.12")
    assert money(D("2")) == D("2.00")
    # 1001 * 6 % / 12 = 5.005 exactly
    kw = {"contract": date(2024, 1, 1), "first": date(2024, 2, 1)}
    up = generate_schedule(monthly("1001", "6", 3, rounding_mode="HALF_UP", **kw))
    even = generate_schedule(monthly("1001", "6", 3, rounding_mode="HALF_EVEN", **kw))
    assert up.periods[0].interest == D("5.01")
    assert even.periods[0].interest == D("5.00")


def test_exact_half_cent_with_repeating_rate():
    # 30 * 7 % / 12 = 0.175 exactly although 7 %/12 is a repeating decimal
    t = monthly("30", "7", 1, date(2024, 1, 1), date(2024, 2, 1))
    assert generate_schedule(t).periods[0].interest == D("0.18")
    t = monthly("30", "7", 1, date(2024, 1, 1), date(2024, 2, 1), rounding_mode="HALF_EVEN")
    assert generate_schedule(t).periods[0].interest == D("0.18")


def test_zero_rate():
    t = monthly("1000", "0", 3, date(2024, 1, 1), date(2024, 2, 1))
    s = generate_schedule(t)
    assert s.payment == D("333.33")
    assert [p.total for p in s.periods] == [D("333.33"), D("333.33"), D("333.34")]
    assert s.total_interest == 0


def test_first_number_and_period_total():
    t = monthly("100", "7", 6, date(2024, 1, 1), date(2024, 2, 1))
    s = generate_schedule(t, first_number=5)
    assert [p.number for p in s.periods] == list(range(5, 11))
    assert isinstance(s, Schedule) and isinstance(s.periods[0], Period)
    assert s.periods[0].total == s.periods[0].principal + s.periods[0].interest
    assert s.total == s.total_principal + s.total_interest


def test_invalid_terms_raise():
    with pytest.raises(ValueError):
        generate_schedule(monthly("100", "7", 6, date(2024, 2, 1), date(2024, 2, 1)))
    with pytest.raises(ValueError):
        generate_schedule(
            monthly("100", "7", 6, date(2024, 1, 1), date(2024, 2, 1), frequency="DAILY")
        )
    with pytest.raises(ValueError):
        generate_schedule(
            monthly("100", "7", 6, date(2024, 1, 1), date(2024, 2, 1), days_in_year="30_360")
        )


# --------------------------------------------------------------------------- #
# solve_term
# --------------------------------------------------------------------------- #


def test_solve_term_exact_and_whole():
    t = monthly("1000", "12", 12, date(2024, 1, 1), date(2024, 2, 1))
    assert solve_term(t, D("100"), exact=True) == D("10.5886")
    assert solve_term(t, D("100"), exact=False) == D("11")
    assert str(solve_term(t, D("100"), exact=False)) == "11"
    # published b): the payment of 237.90 just under-pays 60 periods
    b = monthly("10000", "15", 60, date(2024, 1, 15), date(2024, 2, 15))
    assert solve_term(b, D("237.90"), exact=True) == D("59.9997")
    assert solve_term(b, D("237.90"), exact=False) == D("60")
    oracle = npf.nper(0.15 / 12, -237.90, 10000)
    assert abs(D(str(float(oracle))) - solve_term(b, D("237.90"), exact=True)) < D("0.0001")


def test_solve_term_zero_rate():
    t = monthly("1000", "0", 12, date(2024, 1, 1), date(2024, 2, 1))
    assert solve_term(t, D("300"), exact=True) == D("3.3333")
    assert solve_term(t, D("300"), exact=False) == D("4")
    assert solve_term(t, D("250"), exact=False) == D("4")


def test_solve_term_payment_too_small():
    t = monthly("1000", "12", 12, date(2024, 1, 1), date(2024, 2, 1))
    for payment in ("10", "9.99", "0", "-5"):
        with pytest.raises(PaymentTooSmallError):
            solve_term(t, D(payment), exact=True)
    assert solve_term(t, D("10.01"), exact=False) > 0


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #

amounts = st.integers(min_value=100, max_value=100_000_000).map(lambda c: D(c) / 100)
rates = st.integers(min_value=0, max_value=360_000).map(lambda x: D(x) / 10_000)
terms_ = st.integers(min_value=1, max_value=360)
frequencies = st.sampled_from(sorted(PERIODS_PER_YEAR))
contract_dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31))


@settings(max_examples=150, deadline=None, database=None)
@given(
    amount=amounts,
    rate=rates,
    term=terms_,
    frequency=frequencies,
    calc_type=st.sampled_from(["EQUAL_INSTALLMENTS", "EQUAL_PRINCIPAL"]),
    days_in_year=st.sampled_from(["FREQUENCY", "ACTUAL_365"]),
    rounding_mode=st.sampled_from(["HALF_UP", "HALF_EVEN"]),
    contract=contract_dates,
)
def test_schedule_properties(
    amount, rate, term, frequency, calc_type, days_in_year, rounding_mode, contract
):
    # The product accepts at most 50 years of installments (loans.terms.MAX_YEARS): an
    # annual 240-year loan of 2.40 at 34 % would amortize negatively in leap years.
    assume(term <= 50 * PERIODS_PER_YEAR[frequency])
    t = Terms(
        loan_amount=amount,
        annual_rate_percent=rate,
        term=D(term),
        frequency=frequency,
        contract_date=contract,
        first_payment_date=step(contract, frequency),
        calc_type=calc_type,
        days_in_year=days_in_year,
        rounding_mode=rounding_mode,
    )
    try:
        s = generate_schedule(t)
    except NegativeAmortizationError as exc:
        # A cent-rounded payment under the interest of a longer period (ACTUAL_365): refused
        # terms (DESIGN §1), never a schedule whose balance grows.
        assert exc.interest > exc.payment
        return
    assert 1 <= len(s.periods) <= term
    assert all(p.principal >= 0 for p in s.periods)
    assert sum(p.principal for p in s.periods) == amount
    assert all(p.balance_after >= 0 for p in s.periods)
    assert s.periods[-1].balance_after == 0
    assert all(p.interest >= 0 for p in s.periods)
    assert all(p.principal == p.principal.quantize(D("0.01")) for p in s.periods)
    if calc_type == "EQUAL_INSTALLMENTS":
        assert {p.total for p in s.periods[:-1]} <= {s.payment}
        assert s.payment == compute_payment(t)
    # due dates chain from the contract date
    assert s.periods[0].from_date == contract
    for prev, cur in zip(s.periods, s.periods[1:], strict=False):
        assert cur.from_date == prev.due_date < cur.due_date


@settings(max_examples=150, deadline=None, database=None)
@given(amount=amounts, rate=rates, term=terms_, frequency=frequencies, contract=contract_dates)
def test_payment_matches_numpy_financial_oracle(amount, rate, term, frequency, contract):
    t = Terms(
        loan_amount=amount,
        annual_rate_percent=rate,
        term=D(term),
        frequency=frequency,
        contract_date=contract,
        first_payment_date=step(contract, frequency),
    )
    r = float(rate) / 100 / PERIODS_PER_YEAR[frequency]
    oracle = round(-npf.pmt(r, term, float(amount)), 2)
    assert abs(compute_payment(t) - D(str(oracle))) <= D("0.01")
    assert generate_schedule(t).payment == compute_payment(t)


@settings(max_examples=60, deadline=None, database=None)
@given(
    amount=amounts,
    rate=rates,
    term=st.integers(min_value=1, max_value=120),
    frequency=frequencies,
    days_in_year=st.sampled_from(["FREQUENCY", "ACTUAL_365", "ACTUAL_360", "ACTUAL_ACTUAL"]),
    contract=contract_dates,
    extra_days=st.integers(min_value=1, max_value=40),
)
def test_irregular_first_period_properties(
    amount, rate, term, frequency, days_in_year, contract, extra_days
):
    t = Terms(
        loan_amount=amount,
        annual_rate_percent=rate,
        term=D(term),
        frequency=frequency,
        contract_date=contract,
        first_payment_date=contract + timedelta(days=extra_days),
        days_in_year=days_in_year,
    )
    try:
        s = generate_schedule(t)
    except NegativeAmortizationError as exc:
        # Refused terms: the named installment's interest is above the payment.
        assert exc.interest > exc.payment
        return
    assert sum(p.principal for p in s.periods) == amount
    assert s.periods[-1].balance_after == 0
    assert all(p.principal >= 0 and p.balance_after >= 0 for p in s.periods)


positive_rates = st.integers(min_value=1, max_value=360_000).map(lambda x: D(x) / 10_000)


@settings(max_examples=60, deadline=None, database=None)
@given(amount=amounts, rate=positive_rates, term=terms_, frequency=frequencies)
def test_solve_term_matches_numpy_financial_nper(amount, rate, term, frequency):
    contract = date(2024, 1, 1)
    t = Terms(amount, rate, D(term), frequency, contract, step(contract, frequency))
    payment = compute_payment(t)
    r = rate / 100 / PERIODS_PER_YEAR[frequency]
    if payment <= amount * r:  # cent rounding can leave a payment equal to the interest
        with pytest.raises(PaymentTooSmallError):
            solve_term(t, payment, exact=True)
        return
    exact = solve_term(t, payment, exact=True)
    whole = solve_term(t, payment, exact=False)
    assert whole == whole.to_integral_value()
    assert whole - 1 < exact <= whole or exact == whole - 1  # exact is rounded to 4 dp
    oracle = npf.nper(float(r), -float(payment), float(amount))
    assert abs(float(exact) - oracle) <= max(0.0001, 1e-6 * oracle)


# --------------------------------------------------------------------------- #
# Performance
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("days_in_year", ["FREQUENCY", "ACTUAL_365", "ACTUAL_ACTUAL"])
def test_360_monthly_periods(days_in_year):
    """Shape only: the speed figure is measured by ``make bench`` (bench/bench_core.py)."""
    t = monthly(
        "250000", "6.5", 360, date(2024, 1, 31), date(2024, 2, 29), days_in_year=days_in_year
    )
    s = generate_schedule(t)
    assert len(s.periods) == 360
    assert s.periods[-1].balance_after == 0
    assert [p.due_date for p in s.periods[:3]] == [
        date(2024, 2, 29),
        date(2024, 3, 29),  # the anchor day is the first payment date's day
        date(2024, 4, 29),
    ]


# ------------------------------------------------------------------ the fast paths (issue 14)


def _slow_layout(terms):
    """The layout as it was computed before issue 14: every due date by ``_due_date`` and
    every rate by ``_rate_parts``."""
    n = number_of_periods(terms.term)
    dates = [_due_date(terms.first_payment_date, terms.frequency, k) for k in range(n)]
    first_regular = terms.first_payment_date == step(terms.contract_date, terms.frequency)
    layout, prev = [], terms.contract_date
    for k, due in enumerate(dates):
        num, den = _rate_parts(
            prev,
            due,
            terms.frequency,
            terms.days_in_year,
            terms.annual_rate_percent,
            k > 0 or first_regular,
        )
        layout.append((prev, due, num, den))
        prev = due
    return layout


@pytest.mark.parametrize("days_in_year", DAYS_IN_YEAR)
@pytest.mark.parametrize("frequency", FREQUENCIES)
@pytest.mark.parametrize(
    ("contract", "first"),
    [
        (date(2023, 12, 12), None),  # regular, crossing 31 December
        (date(2024, 1, 31), date(2024, 2, 29)),  # month-end anchor, leap February
        (date(2015, 5, 7), date(2015, 5, 8)),  # one-day odd first period
        (date(2023, 11, 30), date(2024, 1, 31)),  # long odd first period over the new year
    ],
)
def test_fast_layout_and_periods_are_the_slow_ones(days_in_year, frequency, contract, first):
    terms = Terms(
        loan_amount=D("25000.00"),
        annual_rate_percent=D("9.75"),
        term=D("40"),
        frequency=frequency,
        contract_date=contract,
        first_payment_date=first or step(contract, frequency),
        days_in_year=days_in_year,
    )
    fast = _periods_layout(terms)
    assert fast == _slow_layout(terms)
    assert [n / d for _, _, n, d in fast] == [n / d for _, _, n, d in _slow_layout(terms)]
    built = Period(
        number=3,
        from_date=contract,
        due_date=terms.first_payment_date,
        principal=D("1.00"),
        interest=D("0.50"),
        balance_after=D("9.00"),
    )
    quick = _period(3, contract, terms.first_payment_date, D("1.00"), D("0.50"), D("9.00"))
    assert quick == built and hash(quick) == hash(built) and repr(quick) == repr(built)
    assert quick.total == D("1.50")
    with pytest.raises(AttributeError):  # still frozen
        quick.interest = D("0")
