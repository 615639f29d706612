"""Amortization engine: due dates, period rates, payments and schedules.

Pure Python (stdlib only, no Django). All money is ``Decimal`` rounded to the
cent with the terms' rounding mode; floats are never used.

Internally a period rate is carried as an exact fraction ``num / den`` (``num``
a Decimal, ``den`` an int) so that ``interest = balance * num / den`` is computed
with a single correctly rounded division before quantizing to the cent. This
avoids cents flipping on exact half-cent boundaries because of a truncated
repeating rate such as 7 % / 12.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import (
    ROUND_CEILING,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Decimal,
    localcontext,
)

__all__ = [
    "PERIODS_PER_YEAR",
    "FREQUENCIES",
    "CALC_TYPES",
    "DAYS_IN_YEAR",
    "ROUNDING_MODES",
    "PaymentTooSmallError",
    "NegativeAmortizationError",
    "Terms",
    "Period",
    "Schedule",
    "money",
    "add_months",
    "step",
    "due_dates",
    "period_rate",
    "number_of_periods",
    "compute_payment",
    "generate_schedule",
    "periods_layout",
    "solve_term",
]

PERIODS_PER_YEAR: dict[str, int] = {
    "MONTHLY": 12,
    "SEMI_MONTHLY": 24,
    "BIWEEKLY": 26,
    "WEEKLY": 52,
    "QUARTERLY": 4,
    "ANNUALLY": 1,
}
FREQUENCIES = tuple(PERIODS_PER_YEAR)

_MONTHS_PER_STEP = {"MONTHLY": 1, "QUARTERLY": 3, "ANNUALLY": 12}
_DAYS_PER_STEP = {"BIWEEKLY": 14, "WEEKLY": 7, "SEMI_MONTHLY": 15}

CALC_TYPES = ("EQUAL_INSTALLMENTS", "EQUAL_PRINCIPAL")
DAYS_IN_YEAR = ("FREQUENCY", "ACTUAL_365", "ACTUAL_360", "ACTUAL_ACTUAL")

ROUNDING_MODES: dict[str, str] = {
    "HALF_UP": ROUND_HALF_UP,
    "HALF_EVEN": ROUND_HALF_EVEN,
}

CENT = Decimal("0.01")
_ZERO = Decimal(0)
_ONE = Decimal(1)
_PREC = 34
# ACTUAL_ACTUAL: d/365 == d*366/(365*366) and d/366 == d*365/(365*366);
# i.e. d/L == d*(731 - L)/(365*366) for L in {365, 366}.
_ACT_ACT_DEN = 365 * 366
_ONE_DAY = timedelta(days=1)
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class PaymentTooSmallError(ValueError):
    """The payment does not cover the interest of a period."""


class NegativeAmortizationError(PaymentTooSmallError):
    """An installment's interest is above its payment: the balance would grow (DESIGN §1).

    ``period`` is the installment's number, ``interest`` and ``payment`` its figures.
    """

    def __init__(self, *, period: int, interest: Decimal, payment: Decimal):
        super().__init__(
            f"installment {period}'s interest {interest} is above its payment {payment}: "
            "the balance would grow (negative amortization)"
        )
        self.period = period
        self.interest = interest
        self.payment = payment


# --------------------------------------------------------------------------- #
# Data classes
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Terms:
    loan_amount: Decimal
    annual_rate_percent: Decimal
    term: Decimal  # number of installments; may be fractional
    frequency: str
    contract_date: date
    first_payment_date: date
    payment: Decimal | None = None  # None -> computed
    calc_type: str = "EQUAL_INSTALLMENTS"
    days_in_year: str = "FREQUENCY"
    rounding_mode: str = "HALF_UP"


@dataclass(frozen=True)
class Period:
    number: int
    from_date: date
    due_date: date
    principal: Decimal
    interest: Decimal
    balance_after: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest


@dataclass(frozen=True)
class Schedule:
    payment: Decimal  # level payment used; EQUAL_PRINCIPAL: first installment's total
    periods: tuple[Period, ...]

    @property
    def total_principal(self) -> Decimal:
        return sum((p.principal for p in self.periods), _ZERO)

    @property
    def total_interest(self) -> Decimal:
        return sum((p.interest for p in self.periods), _ZERO)

    @property
    def total(self) -> Decimal:
        return sum((p.total for p in self.periods), _ZERO)


_new = object.__new__


def _period(number, from_date, due_date, principal, interest, balance_after) -> Period:
    """``Period(...)`` without the frozen dataclass's six ``object.__setattr__`` calls (a
    360-period schedule spent a third of its time in them, issue 14): the same object, equal,
    hashable and frozen as one built by the constructor."""
    period = _new(Period)
    period.__dict__.update(
        number=number,
        from_date=from_date,
        due_date=due_date,
        principal=principal,
        interest=interest,
        balance_after=balance_after,
    )
    return period


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def _dec(value) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise TypeError("floats are not accepted for money or rates; use Decimal")
    return Decimal(str(value))


def _rounding(rounding_mode: str) -> str:
    if rounding_mode in ROUNDING_MODES:
        return ROUNDING_MODES[rounding_mode]
    if rounding_mode in (ROUND_HALF_UP, ROUND_HALF_EVEN):  # decimal's own constants
        return rounding_mode
    raise ValueError(f"unknown rounding mode: {rounding_mode!r}")


def money(value: Decimal, rounding_mode: str = "HALF_UP") -> Decimal:
    """Quantize ``value`` to the cent with the given rounding mode."""
    with localcontext() as ctx:
        ctx.prec = _PREC
        return _dec(value).quantize(CENT, rounding=_rounding(rounding_mode))


def _check_frequency(frequency: str) -> None:
    if frequency not in PERIODS_PER_YEAR:
        raise ValueError(f"unknown frequency: {frequency!r}")


# --------------------------------------------------------------------------- #
# Dates
# --------------------------------------------------------------------------- #


def add_months(d: date, months: int, anchor_day: int | None = None) -> date:
    """Add ``months`` calendar months; the day is ``anchor_day`` (default
    ``d.day``) clamped to the target month's last day."""
    anchor = d.day if anchor_day is None else anchor_day
    year, month0 = divmod(d.year * 12 + (d.month - 1) + months, 12)
    if anchor > 28:  # clamp to the month's length (calendar.monthrange also finds a weekday)
        last = 29 if month0 == 1 and calendar.isleap(year) else _MONTH_DAYS[month0]
        anchor = min(anchor, last)
    return date(year, month0 + 1, anchor)


def step(d: date, frequency: str, anchor_day: int | None = None) -> date:
    """One frequency step after ``d`` (SEMI_MONTHLY: ``d + 15 days``)."""
    _check_frequency(frequency)
    if frequency in _MONTHS_PER_STEP:
        return add_months(d, _MONTHS_PER_STEP[frequency], anchor_day)
    return d + timedelta(days=_DAYS_PER_STEP[frequency])


def _due_date(first_payment_date: date, frequency: str, k: int) -> date:
    """The k-th (0-based) due date."""
    if frequency in _MONTHS_PER_STEP:
        return add_months(first_payment_date, k * _MONTHS_PER_STEP[frequency])
    if frequency == "SEMI_MONTHLY":
        base = add_months(first_payment_date, k // 2)
        return base + timedelta(days=15) if k % 2 else base
    return first_payment_date + timedelta(days=k * _DAYS_PER_STEP[frequency])


def due_dates(first_payment_date: date, frequency: str, count: int) -> list[date]:
    _check_frequency(frequency)
    months = _MONTHS_PER_STEP.get(frequency)
    if months is None:
        return [_due_date(first_payment_date, frequency, k) for k in range(count)]
    # The k-th due date is add_months(first, k * months), inlined: a 360-period schedule spent
    # a tenth of its time in the calls (issue 14).
    anchor = first_payment_date.day
    start = first_payment_date.year * 12 + first_payment_date.month - 1
    dates = []
    for k in range(count):
        year, month0 = divmod(start + k * months, 12)
        day = anchor
        if anchor > 28:
            last = 29 if month0 == 1 and calendar.isleap(year) else _MONTH_DAYS[month0]
            day = min(anchor, last)
        dates.append(date(year, month0 + 1, day))
    return dates


# --------------------------------------------------------------------------- #
# Rates
# --------------------------------------------------------------------------- #


def _rate_parts(
    from_date: date,
    to_date: date,
    frequency: str,
    days_in_year: str,
    annual_rate_percent: Decimal,
    regular: bool,
) -> tuple[Decimal, int]:
    """Period rate as the exact fraction ``num / den``."""
    annual = _dec(annual_rate_percent)
    days = (to_date - from_date).days
    if days_in_year == "FREQUENCY":
        if regular:
            return annual, 100 * PERIODS_PER_YEAR[frequency]
        return annual * days, 100 * 360
    if days_in_year == "ACTUAL_365":
        return annual * days, 100 * 365
    if days_in_year == "ACTUAL_360":
        return annual * days, 100 * 360
    if days_in_year == "ACTUAL_ACTUAL":
        # Fineract splits a period at 31 December: (31 Dec - from) days over the first year's
        # length, (due - 31 Dec) over the next one's. So the day that starts on 31 December
        # counts in the next year: day d belongs to the year of d + 1, and the segments are
        # calendar years of the dates shifted by one day.
        weighted = 0
        cursor, end = from_date + _ONE_DAY, to_date + _ONE_DAY
        while cursor < end:
            segment_end = min(date(cursor.year + 1, 1, 1), end)
            length = 366 if calendar.isleap(cursor.year) else 365
            weighted += (segment_end - cursor).days * (731 - length)
            cursor = segment_end
        return annual * weighted, 100 * _ACT_ACT_DEN
    raise ValueError(f"unknown days_in_year: {days_in_year!r}")


def period_rate(
    *,
    from_date: date,
    to_date: date,
    frequency: str,
    days_in_year: str,
    annual_rate_percent: Decimal,
    regular: bool,
) -> Decimal:
    """The (unrounded, 34 significant digits) rate of one period as a fraction."""
    _check_frequency(frequency)
    num, den = _rate_parts(
        from_date, to_date, frequency, days_in_year, annual_rate_percent, regular
    )
    with localcontext() as ctx:
        ctx.prec = _PREC
        return num / den


# --------------------------------------------------------------------------- #
# Schedule computation
# --------------------------------------------------------------------------- #


def number_of_periods(term: Decimal) -> int:
    """ceil(term): a fractional term adds a final, smaller installment."""
    n = math.ceil(_dec(term))
    if n < 1:
        raise ValueError("term must be positive")
    return n


def _validate(terms: Terms) -> None:
    _check_frequency(terms.frequency)
    if terms.calc_type not in CALC_TYPES:
        raise ValueError(f"unknown calc_type: {terms.calc_type!r}")
    if terms.days_in_year not in DAYS_IN_YEAR:
        raise ValueError(f"unknown days_in_year: {terms.days_in_year!r}")
    _rounding(terms.rounding_mode)
    if _dec(terms.loan_amount) <= 0:
        raise ValueError("loan_amount must be positive")
    if _dec(terms.annual_rate_percent) < 0:
        raise ValueError("annual_rate_percent must not be negative")
    if _dec(terms.term) <= 0:
        raise ValueError("term must be positive")
    if terms.first_payment_date <= terms.contract_date:
        raise ValueError("first_payment_date must be after contract_date")


def _periods_layout(terms: Terms) -> list[tuple[date, date, Decimal, int]]:
    """(from_date, due_date, rate_num, rate_den) for each of the n periods."""
    n = number_of_periods(terms.term)
    dates = due_dates(terms.first_payment_date, terms.frequency, n)
    first_regular = terms.first_payment_date == step(terms.contract_date, terms.frequency)
    annual = _dec(terms.annual_rate_percent)
    days_in_year = terms.days_in_year
    layout = []
    prev = terms.contract_date
    if days_in_year in ("FREQUENCY", "ACTUAL_365", "ACTUAL_360"):
        # _rate_parts inlined for the settings whose rate needs no calendar walk (same figures:
        # tests/loans/test_schedules.py compares them with _rate_parts on every setting).
        if days_in_year == "FREQUENCY":
            regular = (annual, 100 * PERIODS_PER_YEAR[terms.frequency])
            odd_den = 100 * 360
        else:
            regular = None
            odd_den = 100 * (365 if days_in_year == "ACTUAL_365" else 360)
        for k, due in enumerate(dates):
            if regular is not None and (k > 0 or first_regular):
                layout.append((prev, due, *regular))
            else:
                layout.append((prev, due, annual * (due - prev).days, odd_den))
            prev = due
        return layout
    for k, due in enumerate(dates):
        start, end = prev + _ONE_DAY, due + _ONE_DAY
        if days_in_year == "ACTUAL_ACTUAL" and (
            end.year == start.year or (end.year == start.year + 1 and end.month == end.day == 1)
        ):  # within one (shifted) year: _rate_parts' walk has one segment
            length = 366 if calendar.isleap(start.year) else 365
            layout.append(
                (prev, due, annual * ((due - prev).days * (731 - length)), _ACT_ACT_DEN * 100)
            )
        else:
            num, den = _rate_parts(
                prev, due, terms.frequency, days_in_year, annual, k > 0 or first_regular
            )
            layout.append((prev, due, num, den))
        prev = due
    return layout


def periods_layout(terms: Terms) -> tuple[list[tuple[date, date, Decimal, int]], Decimal]:
    """(from_date, due_date, rate_num, rate_den) of each period (its rate is exactly
    ``rate_num / rate_den``) and the computed level payment, from one layout (validated terms;
    used by the daily-accrual engine)."""
    _validate(terms)
    layout = _periods_layout(terms)
    with localcontext() as ctx:
        ctx.prec = _PREC
        payment = _level_payment(terms, layout).quantize(
            CENT, rounding=_rounding(terms.rounding_mode)
        )
    return layout, payment


def _level_payment(terms: Terms, layout) -> Decimal:
    """Unrounded level payment (caller holds a prec-34 context)."""
    principal = _dec(terms.loan_amount)
    n = len(layout)
    if terms.days_in_year == "FREQUENCY":
        r = _dec(terms.annual_rate_percent) / (100 * PERIODS_PER_YEAR[terms.frequency])
        if r == 0:
            return principal / n
        return principal * r / (_ONE - (_ONE + r) ** -n)
    # ACTUAL_*: X = P * prod(1+r_k) / sum_j prod_{k>j}(1+r_k), in O(n) from the back.
    suffix = _ONE  # prod_{k=j+1..n}(1 + r_k) for the current j
    total = _ZERO
    for _from, _due, num, den in reversed(layout):
        total += suffix
        suffix *= _ONE + num / den
    return principal * suffix / total


def compute_payment(terms: Terms) -> Decimal:
    """The payment implied by the terms, ignoring ``terms.payment``.

    EQUAL_INSTALLMENTS: the level (annuity) payment rounded to the cent.
    EQUAL_PRINCIPAL: the first installment's total (principal + interest).
    """
    if terms.calc_type == "EQUAL_PRINCIPAL":
        return generate_schedule(terms).payment
    _validate(terms)
    rounding = _rounding(terms.rounding_mode)
    layout = _periods_layout(terms)
    with localcontext() as ctx:
        ctx.prec = _PREC
        return _level_payment(terms, layout).quantize(CENT, rounding=rounding)


def generate_schedule(
    terms: Terms, *, first_number: int = 1, first_unearned: Decimal = _ZERO
) -> Schedule:
    """Build the full amortization schedule; periods numbered from ``first_number``.

    ``first_unearned``: principal that earns no interest in the first period (unrounded; an
    amount advanced inside it earns from its date: ``amount * days before it / days in the
    period``, ``loans.ledger.apply_advancement``). The payment is still the level payment of
    the whole ``loan_amount``."""
    _validate(terms)
    rounding = _rounding(terms.rounding_mode)
    layout = _periods_layout(terms)
    n = len(layout)
    balance = _dec(terms.loan_amount)
    equal_principal = terms.calc_type == "EQUAL_PRINCIPAL"
    periods: list[Period] = []
    with localcontext() as ctx:
        ctx.prec = _PREC
        if equal_principal:
            level_principal = (balance / n).quantize(CENT, rounding=rounding)
            payment = None  # first installment's total, set below
        elif terms.payment is None:
            payment = _level_payment(terms, layout).quantize(CENT, rounding=rounding)
        else:
            payment = money(_dec(terms.payment), terms.rounding_mode)

        quantize = Decimal.quantize
        final = n - 1
        for k, (from_date, due, num, den) in enumerate(layout):
            earning = balance - first_unearned if k == 0 else balance
            interest = quantize(earning * num / den, CENT, rounding)
            if (
                k == 0
                and payment is not None
                and terms.payment is not None
                and (payment == interest)
            ):
                # Below the interest is negative amortization (DESIGN §1, raised just below and
                # naming the period); exactly the interest never amortizes at all.
                raise PaymentTooSmallError(
                    f"payment {payment} does not exceed the first period's interest {interest}"
                )
            principal = level_principal if equal_principal else payment - interest
            last = k == final or principal >= balance
            if principal < 0 and not last:
                raise NegativeAmortizationError(
                    period=first_number + k, interest=interest, payment=payment
                )
            if last:
                principal = balance
            balance -= principal
            periods.append(_period(first_number + k, from_date, due, principal, interest, balance))
            if last:
                break

    if equal_principal:
        payment = periods[0].total
    return Schedule(payment=payment, periods=tuple(periods))


def solve_term(terms: Terms, payment: Decimal, *, exact: bool) -> Decimal:
    """Number of regular periods needed to repay ``terms.loan_amount`` with
    ``payment`` (NPER) at the regular rate annual / periods_per_year.

    exact=True: NPER quantized to 4 decimals (ROUND_HALF_UP);
    exact=False: ceil(NPER) as an integral Decimal.
    """
    _check_frequency(terms.frequency)
    payment = _dec(payment)
    amount = _dec(terms.loan_amount)
    annual = _dec(terms.annual_rate_percent)
    den = 100 * PERIODS_PER_YEAR[terms.frequency]
    if payment <= 0:
        raise PaymentTooSmallError("payment must be positive")
    # payment <= B * r, compared exactly: payment * den <= B * annual
    if payment * den <= amount * annual:
        raise PaymentTooSmallError(f"payment {payment} does not cover one period's interest")
    with localcontext() as ctx:
        ctx.prec = _PREC
        if annual == 0:
            nper = amount / payment
        else:
            r = annual / den
            nper = -(_ONE - amount * annual / (payment * den)).ln() / (_ONE + r).ln()
        nearest = nper.to_integral_value(rounding=ROUND_HALF_EVEN)
        if abs(nper - nearest) < Decimal("1e-20"):  # ln() noise around integers
            nper = nearest
        if exact:
            return nper.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        return nper.to_integral_value(rounding=ROUND_CEILING)
