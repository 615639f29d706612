"""Pure schedule-state derivation (no ORM): from base installments and a loan's transactions to
paid and outstanding parts, allocations and summary figures.

The ORM side (``loans.versions.rebuild_schedule``) loads rows, calls these functions and writes
the result back. Rules (DESIGN §1, §3, §5), and the choices this module makes where the spec is
silent:

* Transactions are replayed in (date, entry order). A CHARGE adds its amount to the fees of the
  installment whose period holds its date (``from_date < date <= due_date``; before the first
  one: the first; after the last: the last).
* A REPAYMENT or CREDIT is allocated oldest installment first, fees -> interest -> principal
  within an installment; what is left goes to the following installments (paid in advance).
* An ADVANCEMENT adds principal. DYNAMIC engine: the installments due after its date are
  re-amortized over the same count with the new balance (payment recomputed); STANDARD engine:
  the schedule is fixed, so the advanced principal is added to the final installment.
* Contract termination (DYNAMIC only) collapses every installment due on or after the
  termination date into one installment due on that date; installments already due stay as they
  are. If the termination date is on or after maturity, the periods are kept.
  ``ALL_OUTSTANDING``: all scheduled interest of the collapsed installments is accelerated;
  ``ACCRUED_TO_DATE``: the interest of the installment whose period holds the termination date,
  prorated by days elapsed over days in the period, later interest dropped.
* Past due (DESIGN §5): an installment is past due once its due date is *before* the business
  date (Fineract's overdue rule: on its due date it is due, not yet overdue).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from loans.schedules import Schedule, Terms, generate_schedule, money

ZERO = Decimal("0.00")

REPAYMENT = "REPAYMENT"
CREDIT = "CREDIT"
CHARGE = "CHARGE"
ADVANCEMENT = "ADVANCEMENT"

ALL_OUTSTANDING = "ALL_OUTSTANDING"
ACCRUED_TO_DATE = "ACCRUED_TO_DATE"


@dataclass
class PeriodState:
    period: int
    from_date: date
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    fees_due: Decimal = ZERO
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    fees_paid: Decimal = ZERO
    balance_after: Decimal = ZERO
    complete: bool = False
    obligations_met_on_date: date | None = None
    frozen: bool = False

    @property
    def total_due(self) -> Decimal:
        return self.principal_due + self.interest_due + self.fees_due

    @property
    def total_paid(self) -> Decimal:
        return self.principal_paid + self.interest_paid + self.fees_paid

    @property
    def principal_outstanding(self) -> Decimal:
        return self.principal_due - self.principal_paid

    @property
    def interest_outstanding(self) -> Decimal:
        return self.interest_due - self.interest_paid

    @property
    def fees_outstanding(self) -> Decimal:
        return self.fees_due - self.fees_paid

    @property
    def total_outstanding(self) -> Decimal:
        return self.total_due - self.total_paid


@dataclass(frozen=True)
class Entry:
    """A transaction to replay. ``key`` identifies it in the returned allocations."""

    key: object
    type: str
    date: date
    amount: Decimal


@dataclass(frozen=True)
class Allocation:
    principal: Decimal = ZERO
    interest: Decimal = ZERO
    fees: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees


@dataclass
class ReplayResult:
    periods: list[PeriodState]
    allocations: dict = field(default_factory=dict)
    unallocated: Decimal = ZERO


@dataclass(frozen=True)
class Summary:
    principal_outstanding: Decimal
    interest_outstanding: Decimal
    fees_outstanding: Decimal
    total_outstanding: Decimal
    next_due_date: date | None
    amount_past_due: Decimal
    days_past_due: int
    principal_paid: Decimal
    interest_paid: Decimal
    fees_paid: Decimal


def periods_from_schedule(schedule: Schedule) -> list[PeriodState]:
    return [
        PeriodState(
            period=p.number,
            from_date=p.from_date,
            due_date=p.due_date,
            principal_due=p.principal,
            interest_due=p.interest,
            balance_after=p.balance_after,
        )
        for p in schedule.periods
    ]


def live(periods: list[PeriodState]) -> list[PeriodState]:
    return [p for p in periods if not p.frozen]


def recompute_balances(periods: list[PeriodState]) -> None:
    """balance_after of each live installment = live principal scheduled after it."""
    remaining = sum((p.principal_due for p in live(periods)), ZERO)
    for p in live(periods):
        remaining -= p.principal_due
        p.balance_after = remaining


def apply_advancement(
    periods: list[PeriodState], *, on: date, amount: Decimal, terms: Terms, dynamic: bool
) -> list[PeriodState]:
    """Add advanced principal (see module docstring for the rule of each engine)."""
    current = live(periods)
    if not current:
        return periods
    future = [p for p in current if p.due_date > on]
    if not dynamic or not future:
        last = current[-1]
        last.principal_due += amount
        recompute_balances(periods)
        return periods
    first = future[0]
    balance = sum((p.principal_due for p in future), ZERO) + amount
    regenerated = generate_schedule(
        replace(
            terms,
            loan_amount=balance,
            term=Decimal(len(future)),
            contract_date=first.from_date,
            first_payment_date=first.due_date,
            payment=None,
        ),
        first_number=first.period,
    )
    kept = [p for p in periods if p.frozen or p.due_date <= on]
    result = kept + periods_from_schedule(regenerated)
    recompute_balances(result)
    return result


def collapse_for_termination(
    periods: list[PeriodState], *, on: date, policy: str, rounding_mode: str
) -> list[PeriodState]:
    """Rewrite the base installments for a contract termination dated ``on``."""
    current = live(periods)
    if not current or on >= current[-1].due_date:
        return periods
    collapsed = [p for p in current if p.due_date >= on]
    first = collapsed[0]
    principal = sum((p.principal_due for p in collapsed), ZERO)
    if policy == ACCRUED_TO_DATE:
        elapsed = max((on - first.from_date).days, 0)
        length = (first.due_date - first.from_date).days
        interest = (
            money(first.interest_due * Decimal(elapsed) / Decimal(length), rounding_mode)
            if length > 0
            else ZERO
        )
    else:
        interest = sum((p.interest_due for p in collapsed), ZERO)
    accelerated = PeriodState(
        period=first.period,
        from_date=first.from_date,
        due_date=on,
        principal_due=principal,
        interest_due=interest,
        fees_due=sum((p.fees_due for p in collapsed), ZERO),
    )
    result = [p for p in periods if p.frozen or p.due_date < on] + [accelerated]
    recompute_balances(result)
    return result


def _charge_index(due_dates: list[date], on: date) -> int:
    return min(bisect.bisect_left(due_dates, on), len(due_dates) - 1)


def replay(periods: list[PeriodState], entries: list[Entry]) -> ReplayResult:
    """Replay charges, repayments and credits (already in date, entry order) onto ``periods``.

    Mutates and returns the periods with paid parts, completion and obligation dates set.
    """
    current = live(periods)
    for p in current:
        p.principal_paid = p.interest_paid = p.fees_paid = ZERO
        p.complete = False
        p.obligations_met_on_date = None
    result = ReplayResult(periods=periods)
    if not current:
        return result
    due_dates = [p.due_date for p in current]
    cursor = 0  # first installment that may still have something outstanding
    for entry in entries:
        if entry.type == CHARGE:
            index = _charge_index(due_dates, entry.date)
            target = current[index]
            target.fees_due += entry.amount
            target.complete = False
            target.obligations_met_on_date = None
            cursor = min(cursor, index)
            result.allocations[entry.key] = Allocation(fees=entry.amount)
            continue
        if entry.type not in (REPAYMENT, CREDIT):
            continue
        remaining = entry.amount
        fees = interest = principal = ZERO
        while remaining > 0 and cursor < len(current):
            p = current[cursor]
            part = min(remaining, p.fees_outstanding)
            p.fees_paid += part
            fees += part
            remaining -= part
            part = min(remaining, p.interest_outstanding)
            p.interest_paid += part
            interest += part
            remaining -= part
            part = min(remaining, p.principal_outstanding)
            p.principal_paid += part
            principal += part
            remaining -= part
            if p.total_outstanding == 0:
                if not p.complete:
                    p.complete = True
                    p.obligations_met_on_date = entry.date
                cursor += 1
        result.allocations[entry.key] = Allocation(
            principal=principal, interest=interest, fees=fees
        )
        result.unallocated += remaining
    for p in current:
        if p.total_outstanding == 0 and not p.complete:
            p.complete = True
    return result


def summarize(periods: list[PeriodState], *, as_of: date) -> Summary:
    current = live(periods)
    principal = sum((p.principal_outstanding for p in current), ZERO)
    interest = sum((p.interest_outstanding for p in current), ZERO)
    fees = sum((p.fees_outstanding for p in current), ZERO)
    unpaid = [p for p in current if p.total_outstanding > 0]
    past_due = [p for p in unpaid if p.due_date < as_of]
    upcoming = [p for p in unpaid if p.due_date >= as_of]
    return Summary(
        principal_outstanding=principal,
        interest_outstanding=interest,
        fees_outstanding=fees,
        total_outstanding=principal + interest + fees,
        next_due_date=upcoming[0].due_date if upcoming else None,
        amount_past_due=sum((p.total_outstanding for p in past_due), ZERO),
        days_past_due=(as_of - past_due[0].due_date).days if past_due else 0,
        principal_paid=sum((p.principal_paid for p in current), ZERO),
        interest_paid=sum((p.interest_paid for p in current), ZERO),
        fees_paid=sum((p.fees_paid for p in current), ZERO),
    )


def outstanding_on(periods: list[PeriodState], *, on: date, rounding_mode: str) -> Allocation:
    """What the borrower owes on ``on`` if the loan were settled then: all unpaid principal, the
    unpaid interest of installments due by ``on`` plus the current installment's interest
    accrued by days, and unpaid fees charged by then. Used to carry a balance into a
    modification. ``periods`` must be replayed with the transactions dated on or before ``on``.
    """
    current = live(periods)
    principal = sum((p.principal_outstanding for p in current), ZERO)
    fees = sum((p.fees_outstanding for p in current), ZERO)
    interest = ZERO
    for p in current:
        if p.due_date <= on:
            interest += p.interest_outstanding
        elif p.from_date < on:
            length = (p.due_date - p.from_date).days
            accrued = money(
                p.interest_due * Decimal((on - p.from_date).days) / Decimal(length), rounding_mode
            )
            interest += max(accrued - p.interest_paid, ZERO)
    return Allocation(principal=principal, interest=interest, fees=fees)
