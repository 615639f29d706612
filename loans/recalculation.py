"""The seam between a recalculating setup (``interestRecalculation=true``, DESIGN §11) and the
ledger: the loan's transactions in, ``ledger`` periods and allocations out, computed by the pure
daily-accrual engine ``loans.progressive``. No ORM: callers pass the setup's ``Terms`` and the
transaction rows (anything with ``pk``, ``type``, ``date``, ``amount``).

Choices recorded here: the horizon up to which balances are actual is the business date (as in
Fineract, whose schedule follows its close of business); a ``PAYOFF`` is replayed as a repayment
(it pays exactly what accrued to its date, so nothing is left).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date

from loans import ledger, progressive
from loans.schedules import Terms

# Transaction types the engine replays, by the ledger's type name.
_EVENT_TYPES = {
    "REPAYMENT": progressive.REPAYMENT,
    "PAYOFF": progressive.REPAYMENT,
    "CREDIT": progressive.CREDIT,
    "CHARGE": progressive.CHARGE,
    "ADVANCEMENT": progressive.ADVANCEMENT,
    "CONTRACT_TERMINATION": progressive.CONTRACT_TERMINATION,
    "CHARGE_OFF": progressive.CHARGE_OFF,
    # Not replayed as money: what stands of the credit balance a later charge is paid from.
    "CREDIT_BALANCE_REFUND": progressive.CREDIT_BALANCE_REFUND,
}


def events_of(transactions: Iterable) -> list[progressive.Event]:
    """The engine's events for the (date, entry)-ordered transactions; other types ignored."""
    return [
        progressive.Event(key=t.pk, type=_EVENT_TYPES[t.type], date=t.date, amount=t.amount)
        for t in transactions
        if t.type in _EVENT_TYPES
    ]


def _period_state(row: tuple, offset: int) -> ledger.PeriodState:
    number, start, due, p_due, i_due, f_due, p_paid, i_paid, f_paid, balance, done, met = row
    return ledger.PeriodState(
        period=number + offset,
        from_date=start,
        due_date=due,
        principal_due=p_due,
        interest_due=i_due,
        fees_due=f_due,
        principal_paid=p_paid,
        interest_paid=i_paid,
        fees_paid=f_paid,
        balance_after=balance,
        complete=done,
        obligations_met_on_date=met,
    )


def derive(
    *,
    terms: Terms,
    transactions: Iterable,
    frozen: list[ledger.PeriodState],
    horizon: date,
    termination_interest: str,
) -> ledger.ReplayResult:
    """The live installments (numbered after ``frozen``) and each transaction's portions."""
    result = progressive.recalculate(
        terms,
        events_of(transactions),
        horizon=horizon,
        termination_interest=termination_interest,
    )
    return _replay_result(result, frozen)


def resume(
    *,
    terms: Terms,
    transactions: list,
    start: progressive.Checkpoint | None,
    frozen: list[ledger.PeriodState],
    horizon: date,
    termination_interest: str,
) -> tuple[ledger.ReplayResult, progressive.Resumed] | None:
    """``derive`` from a stored engine state (None: from the loan's start), given only the
    transactions that follow it; the ``ReplayResult`` allocates those. Also the engine's
    answer (checkpoints to store, whether a termination stands). None: replay everything."""
    resumed = progressive.resume(
        terms,
        events_of(transactions),
        start=start,
        horizon=horizon,
        termination_interest=termination_interest,
    )
    if resumed is None:
        return None
    return _replay_result(resumed.result, frozen), resumed


def derive_with(
    *,
    terms: Terms,
    transactions: list,
    extra,
    frozen: list[ledger.PeriodState],
    horizon: date,
    termination_interest: str,
    start: progressive.Checkpoint | None = None,
) -> tuple[ledger.ReplayResult, ledger.ReplayResult]:
    """``derive`` without and with ``extra`` (dated on or after every transaction), from one
    replay of the transactions (``start``: of those after that stored state). ``frozen`` is
    copied for the second result."""
    (event,) = events_of([extra])
    before, after = progressive.recalculate_with(
        terms,
        events_of(transactions),
        event,
        horizon=horizon,
        termination_interest=termination_interest,
        start=start,
    )
    return _replay_result(before, frozen), _replay_result(after, [replace(p) for p in frozen])


def _replay_result(result: progressive.Recalculation, frozen: list) -> ledger.ReplayResult:
    periods = list(frozen) + [_period_state(row, len(frozen)) for row in result.rows]
    allocations = {
        key: ledger.Allocation(
            principal=p.principal, interest=p.interest, fees=p.fees, overpayment=p.overpayment
        )
        for key, p in result.allocations.items()
    }
    return ledger.ReplayResult(
        periods=periods,
        allocations=allocations,
        unallocated=result.unallocated,
        void_terminations=list(result.void_terminations),
    )


def payoff(
    *, terms: Terms, transactions: Iterable, on: date, termination_interest: str
) -> progressive.Payoff:
    """What settles the loan on ``on`` (DESIGN §9 with §11's daily accrual) and its per diem."""
    return progressive.payoff(
        terms, events_of(transactions), on=on, termination_interest=termination_interest
    )


def payoffs(
    *, terms: Terms, transactions: Iterable, on: date, days: int, termination_interest: str
) -> tuple[progressive.Payoff, ...]:
    """The payoff on ``on`` and each of the ``days`` following days (one replay)."""
    return progressive.payoffs(
        terms,
        events_of(transactions),
        on=on,
        days=days,
        termination_interest=termination_interest,
    )
