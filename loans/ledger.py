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
  re-amortized over the same count with the new balance (payment recomputed), and the advanced
  amount earns interest from its date, as a disbursement does in Fineract's progressive loan
  (``ProgressiveEMICalculator.addDisbursement`` splits the interest period at the date): the
  installment whose period holds the date earns the earlier balance's interest for the whole
  period plus the advanced amount's for the days from the date to the due date (period rate x
  those days / days in the period, rounded once), exactly what the daily-accrual engine of a
  recalculating loan (DESIGN §11) accrues; the payoff, an ``ACCRUED_TO_DATE`` termination and
  a charge-off inside that period earn it by principal-days the same way (``ProratedAccrual``,
  from the period's ``advanced_within`` and ``unearned_principal``), not spread evenly over
  the period. An advancement on a period's first day, or after
  maturity (added to the last installment, no interest after maturity), is unchanged by this.
  STANDARD engine: the schedule is fixed at activation, so the advanced principal is added to
  the final installment and earns no interest until a modification re-amortizes it.
* Contract termination (DYNAMIC only) collapses every installment due on or after the
  termination date into one installment due on that date; installments already due stay as they
  are. If the termination date is on or after maturity, the periods are kept.
  ``ALL_OUTSTANDING``: all scheduled interest of the collapsed installments is accelerated;
  ``ACCRUED_TO_DATE``: the interest of the installment whose period holds the termination date,
  prorated by days elapsed over days in the period, later interest dropped.
* The collapse happens at the termination's place in the replay (date, entry order), on the
  installments as paid by then: what earlier transactions paid is carried into the accelerated
  installment, so a non-monetary command never re-splits an earlier transaction (DESIGN §1).
  Interest that was paid ahead of being earned and is dropped by the collapse is credited
  against the accelerated installment's principal (``PeriodState.interest_credit``).
  The termination's portions are what is outstanding right after the collapse; a termination
  that leaves nothing outstanding is *void* (not applied; the caller reverses it).
* A PAYOFF settles the loan on its date: the same collapse with the interest earned to the
  date (``ACCRUED_TO_DATE``, whatever the setup's termination policy), then allocated like a
  repayment. ``payoff()`` computes the figure the command requires.
* A CHARGE_OFF (DESIGN §12) stops the accrual on its date, as Fineract's ``ZERO_INTEREST``
  charge-off behaviour does: installments due on or before it keep their interest; the one whose
  period holds it keeps the interest earned by then (prorated by days), later ones none. Each
  later installment keeps its amount, so the principal moves forward into it (the last one takes
  what remains). Its portions are what is outstanding right after (the payoff on its date); the
  interest, principal and fees they carry are what repayments after it recover. Interest already
  paid on an installment is never taken back (an installment keeps at least what was paid).
* What a repayment, credit or payoff pays beyond everything outstanding at its place in the
  replay is its ``overpayment`` (the loan's credit balance; DESIGN §9). A CHARGE replayed while
  a credit balance stands (what was overpaid less the CREDIT_BALANCE_REFUNDs before it) is paid
  from it: the latest overpayments become fees portions, so an OVERPAID loan is never billed
  what the lender holds for the borrower.
* Past due (DESIGN §5): an installment is past due once its due date is *before* the business
  date (Fineract's overdue rule: on its due date it is due, not yet overdue).

Why this module is long: it is the one pure replay of the non-recalculating engines (charges,
payments, advancements, termination, payoff, charge-off) and of the state it stores to resume
from (``ReplayState``); its steps share the period states and are tested together against the
published figures.
"""

from __future__ import annotations

import bisect
import io
import pickle
import zlib
from dataclasses import dataclass, field, fields, replace
from datetime import date, timedelta
from decimal import Decimal

from loans.schedules import Schedule, Terms, generate_schedule, money

ZERO = Decimal("0.00")

REPAYMENT = "REPAYMENT"
CREDIT = "CREDIT"
CHARGE = "CHARGE"
ADVANCEMENT = "ADVANCEMENT"
TERMINATION = "CONTRACT_TERMINATION"
PAYOFF = "PAYOFF"
CREDIT_BALANCE_REFUND = "CREDIT_BALANCE_REFUND"
CHARGE_OFF = "CHARGE_OFF"
PAYING = (REPAYMENT, CREDIT, PAYOFF)

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
    interest_credit: Decimal = ZERO  # paid-ahead interest a settlement credited (see above)
    # Principal advanced after this installment's due date (and scheduled in later ones): not
    # part of its ``balance_after``, which is the balance as it was on its due date.
    advanced_later: Decimal = ZERO
    accrual_stopped: bool = False  # charged off: its interest earns nothing more (see above)
    # DYNAMIC: principal advanced inside the period, and the part of the period's principal
    # that earns nothing over the whole period (each amount x days before its date / days in
    # the period, to the cent): the interest is earned by principal-days (``ProratedAccrual``).
    advanced_within: Decimal = ZERO
    unearned_principal: Decimal = ZERO

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
    overpayment: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        """What was allocated to the loan (the overpayment is not)."""
        return self.principal + self.interest + self.fees

    @property
    def amount(self) -> Decimal:
        return self.total + self.overpayment


@dataclass
class ReplayResult:
    periods: list[PeriodState]
    allocations: dict = field(default_factory=dict)
    unallocated: Decimal = ZERO  # the sum of the overpayments
    void_terminations: list = field(default_factory=list)  # keys of terminations not applied
    states: list = field(default_factory=list)  # (date, ReplayState) taken on the way: ``keep``

    @property
    def interest_credit(self) -> Decimal:
        return sum((p.interest_credit for p in live(self.periods)), ZERO)


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
    credit_balance: Decimal = ZERO  # set by the ORM side (loans.selectors.loan_summary)
    payoff_today: Decimal = ZERO


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
    """balance_after of each live installment = live principal scheduled after it, less what
    was advanced after its due date (the balance on that date, not raised by a later
    advancement)."""
    remaining = sum((p.principal_due for p in live(periods)), ZERO)
    for p in live(periods):
        remaining -= p.principal_due
        p.balance_after = remaining - p.advanced_later


def _advanced_after(periods: list[PeriodState], *, on: date, amount: Decimal) -> None:
    """Record on each live installment due before ``on`` (but the last, which holds whatever
    principal remains) that ``amount`` was advanced after it."""
    for p in live(periods)[:-1]:
        if p.due_date < on:
            p.advanced_later += amount


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
        _advanced_after(periods, on=on, amount=amount)
        recompute_balances(periods)
        return periods
    first = future[0]
    balance = sum((p.principal_due for p in future), ZERO) + amount
    # Interest on the advanced amount from its date, not from the period's start (Fineract);
    # an earlier advancement inside the same period keeps its own days.
    length = (first.due_date - first.from_date).days
    before = min(max((on - first.from_date).days, 0), length)
    unearned = amount * Decimal(before) / Decimal(length) if length > 0 else ZERO
    unearned += first.unearned_principal
    within = first.advanced_within + (amount if before > 0 else ZERO)
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
        first_unearned=unearned,
    )
    kept = [p for p in periods if p.frozen or p.due_date <= on]
    regenerated_periods = periods_from_schedule(regenerated)
    if within > 0:
        regenerated_periods[0].advanced_within = within
        regenerated_periods[0].unearned_principal = money(unearned, "HALF_UP")
    result = kept + regenerated_periods
    _advanced_after(result, on=on, amount=amount)
    recompute_balances(result)
    return result


# --------------------------------------------------------------------------------------------
# Interest earned to a date: the seam of the payoff (DESIGN §9). A recalculating loan (§11)
# passes its own accrual; every other caller uses PRORATED.
# --------------------------------------------------------------------------------------------


class ProratedAccrual:
    """A non-recalculating loan earns its installment's scheduled interest by elapsed days over
    the days of the installment's period; in a period that holds an advancement (DYNAMIC), by
    principal-days: the principal advanced inside it earns from its date (as the schedule
    counts it, ``apply_advancement``), not spread evenly over the period."""

    @staticmethod
    def _principal_days(period: PeriodState, elapsed: int, length: int) -> tuple[Decimal, int]:
        """(principal-days earning by ``elapsed`` days, of the whole period) as fractions of the
        period's opening principal: ``B x elapsed - unearned x length`` (the advanced amounts
        count from their dates), never below ``(B - advanced) x elapsed`` (before them)."""
        opening = period.principal_due + period.balance_after + period.advanced_later
        whole = opening * length - period.unearned_principal * length
        so_far = max(
            opening * elapsed - period.unearned_principal * length,
            (opening - period.advanced_within) * elapsed,
        )
        return so_far, whole

    def earned(self, period: PeriodState, on: date, rounding_mode: str) -> Decimal:
        """The interest of ``period`` (whose period holds ``on``) earned by ``on``."""
        length = (period.due_date - period.from_date).days
        elapsed = min(max((on - period.from_date).days, 0), length)
        if period.accrual_stopped or length <= 0 or elapsed == length:
            return period.interest_due
        if period.unearned_principal > 0:
            so_far, whole = self._principal_days(period, elapsed, length)
            if whole > 0:
                return money(period.interest_due * so_far / whole, rounding_mode)
        return money(period.interest_due * Decimal(elapsed) / Decimal(length), rounding_mode)

    def per_diem(self, periods: list[PeriodState], on: date, rounding_mode: str) -> Decimal:
        """The interest one more day after ``on`` adds."""
        if on >= date.max:
            return ZERO
        day = on + timedelta(days=1)
        for p in live(periods):
            if p.from_date < day <= p.due_date:
                if p.accrual_stopped:
                    return ZERO
                length = (p.due_date - p.from_date).days
                if p.unearned_principal > 0:
                    elapsed = (on - p.from_date).days
                    before, whole = self._principal_days(p, elapsed, length)
                    after, _ = self._principal_days(p, elapsed + 1, length)
                    if whole > 0:
                        return money(p.interest_due * (after - before) / whole, rounding_mode)
                return money(p.interest_due / Decimal(length), rounding_mode)
        return ZERO


PRORATED = ProratedAccrual()
Accrual = ProratedAccrual  # the protocol: earned() and per_diem()


def settle(
    periods: list[PeriodState],
    *,
    on: date,
    policy: str,
    rounding_mode: str,
    accrual: ProratedAccrual = PRORATED,
) -> list[PeriodState]:
    """Collapse the live installments due on or after ``on`` into one due on ``on`` (a contract
    termination, a payoff), carrying what they were already paid. Installments already due stay
    as they are; on or after maturity the periods are kept.

    ``ALL_OUTSTANDING`` keeps all their scheduled interest; ``ACCRUED_TO_DATE`` keeps the
    interest earned by ``on`` of the installment whose period holds it. Interest already paid
    above what is kept is credited against the accelerated principal (``interest_credit``).
    Returns a new list; the given period objects are not changed.
    """
    current = live(periods)
    if not current or on >= current[-1].due_date:
        return periods
    collapsed = [p for p in current if p.due_date >= on]
    first = collapsed[0]

    def total(attr):
        return sum((getattr(p, attr) for p in collapsed), ZERO)

    principal, fees = total("principal_due"), total("fees_due")
    paid_principal, paid_interest, paid_fees = (
        total("principal_paid"),
        total("interest_paid"),
        total("fees_paid"),
    )
    if policy == ACCRUED_TO_DATE:
        interest = accrual.earned(first, on, rounding_mode)
    else:
        interest = total("interest_due")
    credit = max(paid_interest - interest, ZERO)
    # Never below what was already paid: a credit beyond the principal left is not applied
    # (such a settlement leaves nothing outstanding; the callers refuse or void it).
    principal_due = max(principal - credit, paid_principal)
    accelerated = PeriodState(
        period=first.period,
        from_date=first.from_date,
        due_date=on,
        principal_due=principal_due,
        interest_due=interest + credit,
        fees_due=fees,
        principal_paid=paid_principal,
        interest_paid=paid_interest,
        fees_paid=paid_fees,
        interest_credit=principal - principal_due + total("interest_credit"),
    )
    if accelerated.total_outstanding == 0:
        accelerated.complete = True
        met = [p.obligations_met_on_date for p in collapsed if p.obligations_met_on_date]
        accelerated.obligations_met_on_date = max(met) if met else on
    result = [p for p in periods if p.frozen or p.due_date < on] + [accelerated]
    recompute_balances(result)
    return result


def collapse_for_termination(
    periods: list[PeriodState], *, on: date, policy: str, rounding_mode: str
) -> list[PeriodState]:
    """Rewrite the base (unpaid) installments for a contract termination dated ``on``."""
    return settle(periods, on=on, policy=policy, rounding_mode=rounding_mode)


def charge_off(
    periods: list[PeriodState],
    *,
    on: date,
    rounding_mode: str,
    accrual: ProratedAccrual = PRORATED,
) -> None:
    """Stop the accrual on ``on`` (a CHARGE_OFF, see the module docstring), in place: the
    installment whose period holds ``on`` keeps the interest earned by then, later ones none;
    each keeps its amount (principal moves forward), the last takes the principal left."""
    later = [p for p in live(periods) if p.due_date > on]
    remaining = sum((p.principal_due for p in later), ZERO)
    for index, p in enumerate(later):
        amount = p.principal_due + p.interest_due
        interest = accrual.earned(p, on, rounding_mode) if p.from_date < on else ZERO
        p.interest_due = max(interest, p.interest_paid)
        p.accrual_stopped = True
        if index == len(later) - 1:
            p.principal_due = remaining
            continue
        # Never below what was paid, and leave the later installments what was paid on them.
        reserve = sum((q.principal_paid for q in later[index + 1 :]), ZERO)
        principal = min(max(amount - p.interest_due, ZERO), remaining - reserve)
        p.principal_due = max(principal, p.principal_paid)
        remaining -= p.principal_due
    recompute_balances(periods)


def _charge_index(due_dates: list[date], on: date) -> int:
    return min(bisect.bisect_left(due_dates, on), len(due_dates) - 1)


def _outstanding(current: list[PeriodState]) -> Allocation:
    return Allocation(
        principal=sum((p.principal_outstanding for p in current), ZERO),
        interest=sum((p.interest_outstanding for p in current), ZERO),
        fees=sum((p.fees_outstanding for p in current), ZERO),
    )


def replay(
    periods: list[PeriodState],
    entries: list[Entry],
    *,
    termination_interest: str = ALL_OUTSTANDING,
    rounding_mode: str = "HALF_UP",
    accrual: ProratedAccrual = PRORATED,
    resume: bool = False,
    start: ReplayState | None = None,
    keep: list[date] = (),
) -> ReplayResult:
    """Replay charges, repayments, credits, terminations and payoffs (already in date, entry
    order) onto ``periods``.

    Returns the periods with paid parts, completion and obligation dates set (the live periods
    are new objects after a termination or a payoff), each entry's allocation, the overpayments
    and the terminations that would leave nothing outstanding (not applied).

    ``resume``: ``periods`` are already the result of replaying every earlier entry (a stored
    schedule version) and ``entries`` come after all of them in (date, entry) order; they are
    replayed from that state, nothing is reset. Same result as the whole replay when
    ``can_resume(periods)`` holds.

    ``start``: the replay goes on from a state a replay took (``ReplayResult.states``):
    ``periods`` are the frozen ones and the state's (copies), ``entries`` those that follow it;
    the result is exactly the whole replay's (its allocations: of ``entries``). ``keep``: the
    (ascending) dates after which to take a state, once every entry dated on or before it is
    replayed (``ReplayResult.states``; none where a credit balance stands, which a later charge
    would take from an earlier entry's overpayment).
    """
    frozen = [p for p in periods if p.frozen]
    current = live(periods)
    resume = resume or start is not None
    if not resume:
        for p in current:
            p.principal_paid = p.interest_paid = p.fees_paid = ZERO
            p.complete = False
            p.obligations_met_on_date = None
    result = ReplayResult(periods=periods)
    if not current:
        return result
    due_dates = [p.due_date for p in current]
    # First installment that may still have something outstanding. In a whole replay every
    # installment before the cursor is complete and a complete one at or after it is passed
    # over without change, so resuming at the first incomplete installment is the same.
    cursor = (
        next((i for i, p in enumerate(current) if not p.complete), len(current)) if resume else 0
    )
    charged_off = False
    refunded = ZERO  # the credit balance refunds replayed so far
    overpaid: list = []  # keys of the entries with an overpayment, in replay order
    if start is not None:
        cursor, charged_off, refunded = start.cursor, start.charged_off, start.refunded
        result.unallocated = start.unallocated
    kept = 0

    def take_states(before: date | None) -> None:
        """The states at the ``keep`` dates before ``before`` (None: all those left)."""
        nonlocal kept
        while kept < len(keep) and (before is None or keep[kept] < before):
            # With no credit balance standing, no later charge takes from an overpayment
            # before this state (the latest overpayments go first): its ``overpaid`` is moot.
            if result.unallocated <= refunded:
                state = ReplayState(
                    _copy(current), cursor, charged_off, refunded, result.unallocated
                )
                result.states.append((keep[kept], state))
            kept += 1

    def pay_from_credit(target: PeriodState, amount: Decimal, on: date) -> None:
        """A charge takes what stands of the credit balance, the latest overpayments first."""
        use = min(result.unallocated - refunded, amount)
        if use <= 0:
            return
        result.unallocated -= use
        target.fees_paid += use
        if target.total_outstanding == 0:
            target.complete = True
            target.obligations_met_on_date = on
        while use > 0:
            key = overpaid[-1]
            allocation = result.allocations[key]
            take = min(use, allocation.overpayment)
            result.allocations[key] = replace(
                allocation, fees=allocation.fees + take, overpayment=allocation.overpayment - take
            )
            use -= take
            if allocation.overpayment == take:
                overpaid.pop()

    def collapse(on: date, policy: str) -> None:
        nonlocal current, due_dates, cursor
        settled = settle(
            frozen + current, on=on, policy=policy, rounding_mode=rounding_mode, accrual=accrual
        )
        current = live(settled)
        due_dates = [p.due_date for p in current]
        cursor = next((i for i, p in enumerate(current) if p.total_outstanding > 0), len(current))

    for entry in entries:
        if kept < len(keep):
            take_states(entry.date)
        if entry.type == CHARGE:
            index = _charge_index(due_dates, entry.date)
            target = current[index]
            target.fees_due += entry.amount
            target.complete = False
            target.obligations_met_on_date = None
            cursor = min(cursor, index)
            result.allocations[entry.key] = Allocation(fees=entry.amount)
            if result.unallocated > refunded:
                pay_from_credit(target, entry.amount, entry.date)
            continue
        if entry.type == CREDIT_BALANCE_REFUND:
            refunded += entry.amount
            continue
        if entry.type == TERMINATION:
            before = (current, due_dates, cursor)
            collapse(entry.date, termination_interest)
            owed = _outstanding(current)
            if owed.total <= 0:  # nothing outstanding: the termination cannot stand
                current, due_dates, cursor = before
                recompute_balances(current)
                result.void_terminations.append(entry.key)
            result.allocations[entry.key] = owed
            continue
        if entry.type == CHARGE_OFF:
            charge_off(current, on=entry.date, rounding_mode=rounding_mode, accrual=accrual)
            for p in current:
                if p.total_outstanding > 0:
                    p.complete = False
                    p.obligations_met_on_date = None
                elif not p.complete:
                    p.complete = True
                    p.obligations_met_on_date = entry.date
            cursor = next(
                (i for i, p in enumerate(current) if p.total_outstanding > 0), len(current)
            )
            charged_off = True
            result.allocations[entry.key] = _outstanding(current)
            continue
        if entry.type not in PAYING:
            continue
        if entry.type == PAYOFF and not charged_off:  # a charged-off loan earns nothing more
            collapse(entry.date, ACCRUED_TO_DATE)
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
            principal=principal, interest=interest, fees=fees, overpayment=remaining
        )
        result.unallocated += remaining
        if remaining > 0:
            overpaid.append(entry.key)
    take_states(None)
    for p in current:
        if p.total_outstanding == 0 and not p.complete:
            p.complete = True
    result.periods = frozen + current
    return result


class ReplayState:
    """Where ``replay`` stood after some entries (``ReplayResult.states``): the live periods as
    replayed so far (``periods``, copies), the first installment that may still be owed
    (``cursor``), whether a charge-off stopped the accrual, the refunds and overpayments so far.
    ``replay(start=...)`` goes on from it; ``dumps``/``loads`` store it as bytes."""

    __slots__ = ("periods", "cursor", "charged_off", "refunded", "unallocated")

    def __init__(self, periods, cursor, charged_off, refunded, unallocated=ZERO):
        self.periods, self.cursor, self.charged_off = periods, cursor, charged_off
        self.refunded, self.unallocated = refunded, unallocated


# A stored state's first bytes: the stored states of the daily-accrual engine (a zlib stream,
# ``progressive``) never start so, and neither reads the other's.
STATE_TAG = b"ledger-replay-state:1:"


def _state_fields() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``PeriodState``'s fields as a stored state keeps them: (Decimals, dates, the others),
    every field but ``frozen`` (a state holds live periods). A state stored with other fields
    is not read back (``loads``)."""
    decimals, dates, plain = [], [], []
    for f in fields(PeriodState):
        if f.name == "frozen":
            continue
        kind = str(f.type)
        (decimals if kind == "Decimal" else dates if kind.startswith("date") else plain).append(
            f.name
        )
    return tuple(decimals), tuple(dates), tuple(plain)


_DECIMALS, _DATES, _PLAIN = _state_fields()
_LAYOUT = (_DECIMALS, _DATES, _PLAIN)


class _PlainUnpickler(pickle.Unpickler):
    """A stored state holds only numbers, strings, None and tuples: no class is built."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a ledger state")


def dumps(state: ReplayState, meta: tuple) -> bytes:
    """``state`` and ``meta`` (plain values: numbers, strings, None, tuples) as bytes: dates
    as ordinals, Decimals as their exact strings."""
    periods = []
    for p in state.periods:
        values = p.__dict__
        periods.append(
            (
                tuple([str(values[name]) for name in _DECIMALS]),
                tuple([None if values[n] is None else values[n].toordinal() for n in _DATES]),
                tuple([values[name] for name in _PLAIN]),
            )
        )
    values = (
        _LAYOUT,
        tuple(periods),
        state.cursor,
        state.charged_off,
        str(state.refunded),
        str(state.unallocated),
        meta,
    )
    return STATE_TAG + zlib.compress(pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL), 1)


def loads(blob: bytes) -> tuple[ReplayState, tuple] | None:
    """``dumps``'s state and meta; None for bytes it did not write (another engine's) or
    wrote with other period fields."""
    if not blob.startswith(STATE_TAG):
        return None
    data = zlib.decompress(blob[len(STATE_TAG) :])
    layout, periods, cursor, charged_off, refunded, unallocated, meta = _PlainUnpickler(
        io.BytesIO(data)
    ).load()
    if layout != _LAYOUT:
        return None
    from_ordinal, new = date.fromordinal, object.__new__
    known: dict[str, Decimal] = {}  # Decimals are immutable: one per distinct figure

    def number(text: str) -> Decimal:
        value = known.get(text)
        if value is None:
            value = known[text] = Decimal(text)
        return value

    states = []
    for decimals, dates, plain in periods:
        p = new(PeriodState)
        values = p.__dict__
        values.update(zip(_DECIMALS, map(number, decimals), strict=True))
        for name, day in zip(_DATES, dates, strict=True):
            values[name] = None if day is None else from_ordinal(day)
        values.update(zip(_PLAIN, plain, strict=True))
        values["frozen"] = False
        states.append(p)
    state = ReplayState(states, cursor, charged_off, Decimal(refunded), Decimal(unallocated))
    return state, meta


def can_resume(periods: list[PeriodState]) -> bool:
    """Whether ``replay(..., resume=True)`` from these (stored) periods equals the whole replay.

    Not when an installment is complete without an obligations-met date: the end of a replay
    marks an installment with nothing due complete without a date, where a later payment
    reaching it in a whole replay would date it (an installment of zero, a rare schedule)."""
    return all(p.obligations_met_on_date is not None or not p.complete for p in live(periods))


def balances_follow(periods: list[PeriodState]) -> bool:
    """Whether each live installment's ``balance_after`` is what ``recompute_balances`` gives
    it (the live principal scheduled after it, less ``advanced_later``). Not so for periods read
    back from their stored rows after an advancement: ``advanced_later`` is not stored, so a
    replay step that recomputes the balances (a termination's settlement) would raise them by
    what was advanced later; such periods cannot be resumed by one."""
    current = live(periods)
    remaining = sum((p.principal_due for p in current), ZERO)
    for p in current:
        remaining -= p.principal_due
        if p.balance_after != remaining - p.advanced_later:
            return False
    return True


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


@dataclass(frozen=True)
class Payoff:
    """What settles the loan on ``on`` (DESIGN §9). ``credit`` is what was paid beyond it."""

    on: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    per_diem: Decimal
    credit: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees


def _copy(periods: list[PeriodState]) -> list[PeriodState]:
    """Shallow copies (every field is immutable: Decimal, date, int, bool). Not
    ``dataclasses.replace``, which re-runs ``__init__`` field by field: this copy was half of
    a close-of-business payoff's CPU (servicing clock profile)."""
    new = object.__new__
    copies = []
    for p in periods:
        q = new(PeriodState)
        q.__dict__.update(p.__dict__)
        copies.append(q)
    return copies


def payoff(
    periods: list[PeriodState],
    *,
    on: date,
    rounding_mode: str,
    credit: Decimal = ZERO,
    accrual: ProratedAccrual = PRORATED,
) -> Payoff:
    """The payoff on ``on``: all unpaid principal, the unpaid interest of installments due by
    ``on`` plus the interest of the installment whose period holds ``on`` earned by then (less
    interest paid ahead of being earned), unpaid fees. ``periods`` must be replayed with every
    transaction (dated on or before ``on``); ``credit`` is the loan's credit balance so far.
    The ONE definition of what is owed on a date: the payoff quote and command, the
    modification carry-over and the ACCRUED_TO_DATE termination use it. Pure; ``periods`` are
    not changed.
    """
    settled = live(
        settle(
            _copy(periods),
            on=on,
            policy=ACCRUED_TO_DATE,
            rounding_mode=rounding_mode,
            accrual=accrual,
        )
    )
    owed = _outstanding(settled)
    return Payoff(
        on=on,
        principal=owed.principal,
        interest=owed.interest,
        fees=owed.fees,
        per_diem=accrual.per_diem(periods, on, rounding_mode) if owed.total > 0 else ZERO,
        credit=credit,
    )
