"""Interest recalculation: Apache Fineract's progressive loan with daily accrual (DESIGN §11).

Pure Python (Decimal and date, no Django), like ``loans.schedules``. Given a setup's terms and
the loan's dated money events, :func:`recalculate` derives the installments and every
transaction's portions, and :func:`payoff` what settles the loan on a date.

The model (Fineract's "rest daily, no compounding, pre-closure interest to the pre-close date",
reproduced from its e2e scenarios C3249-C3255, C3682-C3763 and its ``RepaymentPeriod`` rules):

* Interest accrues every day on that day's outstanding principal, overdue principal included.
  A day in period *k* accrues ``balance x rate_k / W_k`` where ``rate_k`` is the period rate of
  the non-recalculating schedule (``loans.schedules``) and ``W_k`` its length in days
  (``FREQUENCY``: so each day earns period rate x 1/days in the period; ``ACTUAL_*``: the annual
  rate over the year's length, ``ACTUAL_ACTUAL`` weighting each day by its own year). The
  balance changes on the day a payment is made (that day accrues on the new balance).
* Each installment's *calculated* interest is its period's accrual, the unrounded daily amounts
  summed and rounded once, plus the interest its predecessor could not hold (below). Its
  principal is the installment amount less its interest; the last installment absorbs the
  difference (all remaining principal).
* Fineract's holding rule: when the principal paid on an installment exceeds the installment
  amount less its calculated interest (it was paid in full, or nearly so, before its due date),
  its interest is what was paid towards interest and the rest of its calculated interest
  ("unrecognized") moves to the next installment.
* A repayment (or credit) goes to the oldest installment not fully paid first: fees, then
  interest, then principal. An installment already due takes its interest and principal due; one
  not yet due takes the interest accrued to the payment date (nothing before its period starts)
  and at most the installment amount less that interest as principal; what is left goes on.
* Before the *horizon* (the business date) balances are the actual ones. After it the schedule is
  a projection: every installment is assumed paid on its due date, one overdue at the horizon on
  the horizon. Paying every installment on its due date therefore gives exactly the
  non-recalculating schedule.
* A charge replayed while a credit balance stands (what was overpaid less the credit balance
  refunds before it) is paid from it, the latest overpayments becoming fees portions, as in
  ``loans.ledger``: an OVERPAID loan is never billed what the lender holds for the borrower.
* A contract termination on T stops accrual on T and collapses every installment due on or
  after T into one due on T (kept as they are on or after maturity); ``ACCRUED_TO_DATE``: its
  interest is what accrued to T, ``ALL_OUTSTANDING``: the projected interest of the collapsed
  installments.

Choices where the sources are silent: no interest accrues after maturity (the last due date);
an advancement re-amortizes the installment amount of the installments due after its date;
only ``EQUAL_INSTALLMENTS`` (Fineract's progressive loan is an EMI loan).

Why this module is long: it is one pure engine (accrual, allocation, projection, payoff) whose
parts share private state and are tested together against Fineract's published figures.
"""

from __future__ import annotations

import bisect
import calendar
import functools
import io
import pickle
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal, localcontext
from types import MappingProxyType

from loans.schedules import (
    CENT,
    ROUNDING_MODES,
    Terms,
    compute_payment,
    generate_schedule,
    money,
    periods_layout,
)

__all__ = [
    "REPAYMENT",
    "CREDIT",
    "CHARGE",
    "ADVANCEMENT",
    "CONTRACT_TERMINATION",
    "CHARGE_OFF",
    "CREDIT_BALANCE_REFUND",
    "ALL_OUTSTANDING",
    "ACCRUED_TO_DATE",
    "Event",
    "Installment",
    "Portions",
    "Recalculation",
    "Payoff",
    "recalculate",
    "recalculate_with",
    "Checkpoint",
    "HistoryNeeded",
    "resume",
    "payoff",
    "payoffs",
]

REPAYMENT = "REPAYMENT"
CREDIT = "CREDIT"
CHARGE = "CHARGE"
ADVANCEMENT = "ADVANCEMENT"
CONTRACT_TERMINATION = "CONTRACT_TERMINATION"
CHARGE_OFF = "CHARGE_OFF"
CREDIT_BALANCE_REFUND = "CREDIT_BALANCE_REFUND"
ALL_OUTSTANDING = "ALL_OUTSTANDING"
ACCRUED_TO_DATE = "ACCRUED_TO_DATE"

ZERO = Decimal("0.00")
_PREC = 34
_ALLOCATED = (REPAYMENT, CREDIT)


# --------------------------------------------------------------------------------------------
# Public data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A dated money event to replay. ``key`` names it in :attr:`Recalculation.allocations`."""

    key: object
    type: str
    date: date
    amount: Decimal = ZERO


@dataclass(frozen=True)
class Portions:
    """An event's portions; ``overpayment`` is what a payment brought beyond everything owed."""

    principal: Decimal = ZERO
    interest: Decimal = ZERO
    fees: Decimal = ZERO
    overpayment: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        """What was allocated to the loan (the overpayment is not)."""
        return self.principal + self.interest + self.fees


@dataclass(frozen=True)
class Installment:
    number: int
    from_date: date
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    fees_due: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    fees_paid: Decimal
    balance_after: Decimal
    complete: bool
    obligations_met_on_date: date | None

    @property
    def total_due(self) -> Decimal:
        return self.principal_due + self.interest_due + self.fees_due

    @property
    def total_paid(self) -> Decimal:
        return self.principal_paid + self.interest_paid + self.fees_paid

    @property
    def total_outstanding(self) -> Decimal:
        return self.total_due - self.total_paid


@dataclass(frozen=True)
class Recalculation:
    rows: tuple[tuple, ...]  # the installments' fields, in Installment's order
    allocations: Mapping[object, Portions]
    unallocated: Decimal
    terminated_on: date | None
    void_terminations: tuple = ()  # keys of terminations that found nothing outstanding

    @functools.cached_property
    def installments(self) -> tuple[Installment, ...]:
        return tuple(Installment(*row) for row in self.rows)

    @property
    def total_interest(self) -> Decimal:
        return sum((i.interest_due for i in self.installments), ZERO)


@dataclass(frozen=True)
class Payoff:
    """What settles the loan on ``on``; ``per_diem`` is the interest one more day adds."""

    on: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    per_diem: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees


# --------------------------------------------------------------------------------------------
# The engine (mutable state, private)
# --------------------------------------------------------------------------------------------


class HistoryNeeded(Exception):
    """A replay resumed from a stored state needs an event before it (a charge paid from the
    credit balance re-allocates the overpayments that made it): replay the whole history."""


class _Inst:
    __slots__ = (
        "number",
        "from_date",
        "due_date",
        "emi",
        "rate_num",
        "rate_den",
        "weight",
        "accrued",
        "carry",
        "final",
        "calc",
        "interest_due",
        "principal_due",
        "fees_due",
        "principal_paid",
        "interest_paid",
        "fees_paid",
        "complete",
        "met_on",
        "last_paid_on",
    )

    def __init__(self, number, from_date, due_date, emi, rate_num, rate_den, weight):
        self.number = number
        self.from_date = from_date
        self.due_date = due_date
        self.emi = emi  # None for the last installment: it takes whatever remains
        self.rate_num = rate_num
        self.rate_den = rate_den
        self.weight = weight  # W: the period's length in (weighted) days
        self.accrued = Decimal(0)  # sum of balance x weighted days, exact
        self.carry = ZERO  # interest the previous installment could not hold
        self.final = False  # its interest and principal due are settled
        self.calc = ZERO
        self.interest_due = ZERO
        self.principal_due = ZERO
        self.fees_due = ZERO
        self.principal_paid = ZERO
        self.interest_paid = ZERO
        self.fees_paid = ZERO
        self.complete = False
        self.met_on = None
        self.last_paid_on = None

    def clone(self) -> _Inst:
        other = object.__new__(_Inst)
        for name in _Inst.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    @property
    def outstanding(self) -> Decimal:
        return (
            self.principal_due
            + self.interest_due
            + self.fees_due
            - self.principal_paid
            - self.interest_paid
            - self.fees_paid
        )


def _year_weight(start: date, end: date) -> int:
    """ACTUAL_ACTUAL: days weighted so that d/L == d*(731-L)/(365*366) (as in schedules)."""
    weighted = 0
    cursor = start
    while cursor < end:
        segment_end = min(date(cursor.year + 1, 1, 1), end)
        length = 366 if calendar.isleap(cursor.year) else 365
        weighted += (segment_end - cursor).days * (731 - length)
        cursor = segment_end
    return weighted


# The engine's own fields a stored state carries (with every installment's slots); the rest is
# the terms, the policy, the allocations (written as portions) and the projection (never stored).
_ENGINE_STATE = (
    "boundaries",
    "applied",
    "lasting_mark",
    "total_principal",
    "balance",
    "advanced",
    "cursor",
    "next",
    "open",
    "assigned",
    "ahead",
    "terminated_on",
    "accruing",
    "unallocated",
    "void",
    # Added after format 1 was stored: a state without them reads them as their defaults
    # (nothing refunded, no overpayment known; a charge that needs one replays everything).
    "refunded",
    "overpaid",
)
_STATE_DEFAULTS = {"refunded": ZERO, "overpaid": ()}
_STATE_FORMAT = 1  # bumped when a stored state's shape changes: an older one is not resumed


class _StateUnpickler(pickle.Unpickler):
    """Reads back a state ``snapshot`` wrote: only dates and Decimals are built."""

    _ALLOWED = {("datetime", "date"), ("decimal", "Decimal")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of an engine state")
        return super().find_class(module, name)


class _Engine:
    def __init__(self, terms: Terms, policy: str):
        if terms.calc_type != "EQUAL_INSTALLMENTS":
            raise ValueError("interest recalculation needs EQUAL_INSTALLMENTS")
        self.terms = terms
        self.policy = policy
        self.rounding = ROUNDING_MODES[terms.rounding_mode]
        self.actual_actual = terms.days_in_year == "ACTUAL_ACTUAL"
        layout, payment = periods_layout(terms)
        if terms.payment is not None:  # a given payment may end the schedule early
            payment = money(Decimal(terms.payment), terms.rounding_mode)
            layout = layout[: len(generate_schedule(terms).periods)]
        last = len(layout) - 1
        self.insts = [
            _Inst(
                k + 1,
                start,
                due,
                None if k == last else payment,
                num,
                den,
                self._weight(start, due),
            )
            for k, (start, due, num, den) in enumerate(layout)
        ]
        self.boundaries = tuple(i.due_date for i in self.insts)  # where states are kept
        self.applied = 0  # events applied (``resume`` counts them)
        self.lasting_mark = 0  # ``applied`` at the last lasting state
        self.total_principal = self._round(Decimal(terms.loan_amount))
        self.balance = self.total_principal  # actual principal outstanding
        self.advanced: list[tuple[date, Decimal]] = []  # (date, amount) of each advancement
        self.projected: Decimal | None = None  # the projection's balance, past the horizon
        self.cursor = terms.contract_date
        self.next = 0  # first installment not final
        self.open = 0  # first installment that may have something outstanding
        self.assigned = ZERO  # principal due of the final installments
        self.ahead = ZERO  # interest paid on installments not final yet
        self.terminated_on: date | None = None
        self.accruing = True  # a charge-off stops the accrual (DESIGN §10, §12)
        self.allocations: dict = {}
        self.unallocated = ZERO
        self.void: list = []  # terminations that found nothing outstanding
        self.refunded = ZERO  # the credit balance refunds replayed so far
        self.overpaid: list = []  # keys of the events with an overpayment, in replay order

    # ---- arithmetic -------------------------------------------------------------------------

    def _weight(self, start: date, end: date) -> int:
        return _year_weight(start, end) if self.actual_actual else (end - start).days

    def _round(self, value: Decimal) -> Decimal:
        return value.quantize(CENT, rounding=self.rounding)

    def _accrued_interest(self, inst: _Inst) -> Decimal:
        """The installment's accrual so far, rounded once, plus what it carries in (callers
        hold a 34-digit context: see ``_precise``)."""
        value = inst.accrued * inst.rate_num / (inst.rate_den * inst.weight)
        return value.quantize(CENT, rounding=self.rounding) + inst.carry

    def clone(self) -> _Engine:
        other = object.__new__(_Engine)
        other.__dict__.update(self.__dict__)
        other.insts = [i.clone() for i in self.insts]
        other.allocations = dict(self.allocations)
        other.void = list(self.void)
        other.overpaid = list(self.overpaid)
        return other

    # ---- stored state (Checkpoint) ------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Everything a replay needs to go on from here, as bytes (no allocations: they are
        the transactions' portions, already written). Only plain values are stored (dates,
        Decimals, numbers, tuples), read back by ``_StateUnpickler``."""
        if self.projected is not None:
            raise ValueError("a projection is not a replay state")
        values = (
            _STATE_FORMAT,
            tuple(tuple(getattr(i, name) for name in _Inst.__slots__) for i in self.insts),
            tuple(getattr(self, name) for name in _ENGINE_STATE),
        )
        return zlib.compress(pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL), 1)

    @classmethod
    def restore(cls, terms: Terms, policy: str, blob: bytes) -> _Engine:
        values = _StateUnpickler(io.BytesIO(zlib.decompress(blob))).load()
        version, insts, state = values
        if version != _STATE_FORMAT:
            raise ValueError(f"engine state format {version}, expected {_STATE_FORMAT}")
        engine = object.__new__(cls)
        engine.terms = terms
        engine.policy = policy
        engine.rounding = ROUNDING_MODES[terms.rounding_mode]
        engine.actual_actual = terms.days_in_year == "ACTUAL_ACTUAL"
        engine.insts = []
        for row in insts:
            inst = object.__new__(_Inst)
            for name, value in zip(_Inst.__slots__, row, strict=True):
                setattr(inst, name, value)
            engine.insts.append(inst)
        if len(state) > len(_ENGINE_STATE):
            raise ValueError("engine state has unknown fields")
        for name, value in zip(_ENGINE_STATE, state, strict=False):
            setattr(engine, name, value)
        for name in _ENGINE_STATE[len(state) :]:
            setattr(engine, name, _STATE_DEFAULTS[name])
        engine.advanced = list(engine.advanced)
        engine.void = list(engine.void)
        engine.overpaid = list(engine.overpaid)
        engine.projected = None
        engine.allocations = {}
        return engine

    # ---- time -------------------------------------------------------------------------------

    def _accrue(self, inst: _Inst, to: date) -> None:
        start = max(self.cursor, inst.from_date)
        if to > start and self.accruing:
            balance = self.balance if self.projected is None else self.projected
            if balance:
                inst.accrued += balance * self._weight(start, to)
            self.cursor = to

    def advance(self, to: date) -> None:
        """Accrue up to ``to`` (exclusive), settling every installment due on or before it."""
        if self.terminated_on is not None:
            return
        insts = self.insts
        while self.next < len(insts) and insts[self.next].due_date <= to:
            inst = insts[self.next]
            self._accrue(inst, inst.due_date)
            self._settle(inst)
            self.next += 1
        if self.next < len(insts):
            self._accrue(insts[self.next], to)
        if to > self.cursor:
            self.cursor = to

    def _settle(self, inst: _Inst) -> None:
        """Fineract's RepaymentPeriod rules, applied once the installment's period is over."""
        calc = self._accrued_interest(inst)
        inst.calc = calc
        remaining = self.total_principal - self.assigned
        if inst.emi is None:
            interest = max(calc, inst.interest_paid)
            principal = max(remaining, inst.principal_paid, ZERO)
        else:
            held = inst.interest_paid if inst.principal_paid > inst.emi - calc else calc
            interest = max(held, inst.interest_paid)
            principal = max(inst.emi - interest, inst.principal_paid)
            principal = min(principal, max(remaining, inst.principal_paid))
        inst.interest_due, inst.principal_due = interest, principal
        if self.next + 1 < len(self.insts):  # ``inst`` is always insts[self.next]
            self.insts[self.next + 1].carry = calc - interest
        inst.final = True
        self.ahead -= inst.interest_paid
        self.assigned += principal
        if self.projected is not None:
            self.projected -= max(principal - inst.principal_paid, ZERO)
        if not inst.complete and inst.outstanding <= 0:
            inst.complete = True
            inst.met_on = inst.last_paid_on

    def enter_projection(self) -> None:
        unpaid_due = sum(
            (
                max(i.principal_due - i.principal_paid, ZERO)
                for i in self.insts[: self.next]
                if i.final
            ),
            ZERO,
        )
        self.projected = self.balance - unpaid_due

    # ---- events -----------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        if event.type in _ALLOCATED:
            self._allocate(event)
        elif event.type == CHARGE:
            self._charge(event)
        elif event.type == CREDIT_BALANCE_REFUND:
            self.refunded += Decimal(event.amount)
        elif event.type == ADVANCEMENT:
            self._advance_principal(event)
        elif event.type == CONTRACT_TERMINATION:
            self._terminate(event)
        elif event.type == CHARGE_OFF:
            # Its portions are what is owed on its date (the payoff); nothing accrues after.
            self.allocations[event.key] = Portions(*self.owed_on(event.date))
            self.accruing = False

    def _earned(self) -> Decimal:
        """Interest earned to the cursor by the installments not final yet: the accrual of the
        one whose period holds it (with what it carries in). Paid ahead: ``self.ahead``."""
        if self.terminated_on is not None or self.next >= len(self.insts):
            return ZERO
        return self._accrued_interest(self.insts[self.next])

    def _allocate(self, event: Event) -> None:
        remaining = Decimal(event.amount)
        fees = interest = principal = ZERO
        insts = self.insts
        index = self.open
        earned = self._earned()
        while remaining > 0 and index < len(insts):
            inst = insts[index]
            index += 1
            if inst.complete:
                continue
            fee_out = inst.fees_due - inst.fees_paid
            if inst.final:
                interest_out = inst.interest_due - inst.interest_paid
                principal_out = inst.principal_due - inst.principal_paid
            else:
                # Interest earned to the payment date and not paid yet (normally the current
                # installment's; an installment not started yet takes only what the current
                # one, already paid, earned since), then principal up to the installment amount.
                interest_out = max(earned - self.ahead, ZERO)
                if inst.emi is None:
                    principal_out = self.balance
                else:
                    held = inst.interest_paid + interest_out
                    principal_out = min(
                        max(inst.emi - held - inst.principal_paid, ZERO), self.balance
                    )
            fee_part = min(remaining, fee_out)
            interest_part = min(remaining - fee_part, interest_out)
            principal_part = min(remaining - fee_part - interest_part, principal_out)
            paid = fee_part + interest_part + principal_part
            inst.fees_paid += fee_part
            inst.interest_paid += interest_part
            if not inst.final:
                self.ahead += interest_part
            inst.principal_paid += principal_part
            self.balance -= principal_part
            fees += fee_part
            interest += interest_part
            principal += principal_part
            remaining -= paid
            if paid:
                inst.last_paid_on = event.date
            if (fee_part, interest_part, principal_part) == (fee_out, interest_out, principal_out):
                inst.complete = True
                inst.met_on = event.date
        while self.open < len(insts) and insts[self.open].complete:
            self.open += 1
        self.allocations[event.key] = Portions(
            principal=principal, interest=interest, fees=fees, overpayment=remaining
        )
        self.unallocated += remaining
        if remaining > 0:
            self.overpaid.append(event.key)

    def _target(self, on: date) -> int:
        dues = [i.due_date for i in self.insts]
        return min(bisect.bisect_left(dues, on), len(dues) - 1)

    def _charge(self, event: Event) -> None:
        index = self._target(event.date)
        inst = self.insts[index]
        inst.fees_due += Decimal(event.amount)
        inst.complete = False
        inst.met_on = None
        self.open = min(self.open, index)
        self.allocations[event.key] = Portions(fees=Decimal(event.amount))
        if self.unallocated > self.refunded:
            self._pay_from_credit(inst, Decimal(event.amount), event.date)

    def _pay_from_credit(self, inst: _Inst, amount: Decimal, on: date) -> None:
        """A charge on an OVERPAID loan takes what stands of the credit balance (what was
        overpaid less the refunds before it), the latest overpayments becoming fees portions:
        the lender never bills what it holds for the borrower (``loans.ledger``'s rule)."""
        use = min(self.unallocated - self.refunded, amount)
        self.unallocated -= use
        inst.fees_paid += use
        if inst.outstanding <= 0:
            inst.complete = True
            inst.met_on = on
        while use > 0:
            if not self.overpaid or self.overpaid[-1] not in self.allocations:
                raise HistoryNeeded  # resumed from a state: the overpayment is before it
            key = self.overpaid[-1]
            portions = self.allocations[key]
            take = min(use, portions.overpayment)
            self.allocations[key] = replace(
                portions, fees=portions.fees + take, overpayment=portions.overpayment - take
            )
            use -= take
            if portions.overpayment == take:
                self.overpaid.pop()

    def _advance_principal(self, event: Event) -> None:
        amount = Decimal(event.amount)
        self.balance += amount
        self.total_principal += amount
        self.advanced.append((event.date, amount))
        future = [i for i in self.insts if not i.final]
        self.allocations[event.key] = Portions(principal=amount)
        if not future or self.terminated_on is not None:
            last = self.insts[-1]
            last.principal_due += amount
            self.assigned += amount
            last.complete = False
            last.met_on = None
            self.open = min(self.open, len(self.insts) - 1)
            return
        t = self.terms
        payment = compute_payment(
            replace(
                t,
                loan_amount=self.total_principal - self.assigned,
                term=Decimal(len(future)),
                contract_date=future[0].from_date,
                first_payment_date=future[0].due_date,
                payment=None,
            )
        )
        for inst in future[:-1]:
            inst.emi = payment
            if inst.complete and inst.principal_paid < payment - inst.interest_paid:
                inst.complete = False
                inst.met_on = None
        future[-1].complete = False  # the last installment holds whatever principal remains
        future[-1].met_on = None
        self.open = min(self.open, self.insts.index(future[0]))

    @staticmethod
    def _owed(insts: list[_Inst]) -> Portions:
        return Portions(
            principal=sum((i.principal_due - i.principal_paid for i in insts), ZERO),
            interest=sum((i.interest_due - i.interest_paid for i in insts), ZERO),
            fees=sum((i.fees_due - i.fees_paid for i in insts), ZERO),
        )

    def _terminate(self, event: Event) -> None:
        """Stop the accrual on the termination date and collapse what falls due from it. Its
        portions are what is outstanding right after; with nothing outstanding it is void (not
        applied: the caller reverses it)."""
        on, insts = event.date, self.insts
        if self.terminated_on is not None or not insts:
            return
        if on >= insts[-1].due_date:  # on or after maturity: the periods are kept
            owed = self._owed(insts)
            if owed.total <= 0:
                self.void.append(event.key)
                return
            self.terminated_on = on
            self.allocations[event.key] = owed
            return
        kept = [i for i in insts if i.due_date < on]
        collapsed = insts[len(kept) :]
        first = collapsed[0]
        paid_interest = sum((i.interest_paid for i in collapsed), ZERO)
        if self.policy == ACCRUED_TO_DATE:
            earned = first.calc if first.final else self._accrued_interest(first)
            interest = max(earned, paid_interest)
        else:
            projection = self.clone()
            projection.terminated_on = None
            projection.enter_projection()
            projection.advance(projection.insts[-1].due_date)
            interest = sum((i.interest_due for i in projection.insts[len(kept) :]), ZERO)
            interest = max(interest, paid_interest)
        assigned_kept = sum((i.principal_due for i in kept), ZERO)
        accelerated = _Inst(first.number, first.from_date, on, None, 0, 1, 1)
        accelerated.final = True
        accelerated.principal_due = self.total_principal - assigned_kept
        accelerated.interest_due = interest
        accelerated.fees_due = sum((i.fees_due for i in collapsed), ZERO)
        accelerated.principal_paid = sum((i.principal_paid for i in collapsed), ZERO)
        accelerated.interest_paid = paid_interest
        accelerated.fees_paid = sum((i.fees_paid for i in collapsed), ZERO)
        paid_dates = [i.last_paid_on for i in collapsed if i.last_paid_on]
        accelerated.last_paid_on = max(paid_dates) if paid_dates else None
        owed = self._owed([*kept, accelerated])
        if owed.total <= 0:
            self.void.append(event.key)
            return
        if accelerated.outstanding <= 0:
            accelerated.complete = True
            accelerated.met_on = accelerated.last_paid_on
        self.terminated_on = on
        self.allocations[event.key] = owed
        self.insts = [*kept, accelerated]
        self.ahead = ZERO
        self.next = len(self.insts)
        self.open = min(self.open, len(kept))
        self.assigned = self.total_principal

    # ---- results ----------------------------------------------------------------------------

    def rows(self) -> tuple[tuple, ...]:
        """Each installment as a tuple in :class:`Installment`'s field order."""
        result = []
        balance = self.total_principal
        last = self.insts[-1] if self.insts else None
        for i in self.insts:
            balance -= i.principal_due
            # An installment due before an advancement shows the balance of its due date: the
            # principal advanced later is scheduled after it (the last holds what remains).
            later = sum((a for on, a in self.advanced if on > i.due_date and i is not last), ZERO)
            outstanding = (
                i.principal_due
                + i.interest_due
                + i.fees_due
                - i.principal_paid
                - i.interest_paid
                - i.fees_paid
            )
            done = outstanding <= 0
            result.append(
                (
                    i.number,
                    i.from_date,
                    i.due_date,
                    i.principal_due,
                    i.interest_due,
                    i.fees_due,
                    i.principal_paid,
                    i.interest_paid,
                    i.fees_paid,
                    balance - later,
                    done,
                    i.met_on if done else None,
                )
            )
        return tuple(result)

    def owed_on(self, on: date) -> tuple[Decimal, Decimal, Decimal]:
        """(principal, interest, fees) owed on ``on``: call after ``advance(on)``."""
        interest = sum(
            (i.interest_due - i.interest_paid for i in self.insts if i.final), ZERO
        ) + max(self._earned() - self.ahead, ZERO)
        fees = sum((i.fees_due - i.fees_paid for i in self.insts), ZERO)
        return self.balance, interest, fees


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def _precise(func):
    """Run ``func`` in a 34-digit decimal context (the one the engine's arithmetic assumes)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with localcontext() as ctx:
            ctx.prec = _PREC
            return func(*args, **kwargs)

    return wrapper


def _ordered(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=lambda e: e.date)  # stable: same-day events keep their order


def _replayed(terms: Terms, events: list[Event], policy: str) -> _Engine:
    engine = _Engine(terms, policy)
    for event in events:
        engine.advance(event.date)
        engine.apply(event)
    return engine


@_precise
def recalculate(
    terms: Terms,
    events: Iterable[Event],
    *,
    horizon: date | None = None,
    termination_interest: str = ALL_OUTSTANDING,
) -> Recalculation:
    """The installments and each event's portions, with daily interest recalculation.

    ``events`` are the loan's non-reversed transactions after its disbursement (REPAYMENT,
    CREDIT, CHARGE, ADVANCEMENT, CONTRACT_TERMINATION), in entry order; they are replayed by
    date. ``horizon`` is the date up to which balances are actual (the business date); it is
    never before the latest event.
    """
    ordered = _ordered(events)
    engine = _replayed(terms, ordered, termination_interest)
    return _projected(engine, terms, ordered[-1].date if ordered else None, horizon)


@_precise
def recalculate_with(
    terms: Terms,
    events: Iterable[Event],
    extra: Event,
    *,
    horizon: date | None = None,
    termination_interest: str = ALL_OUTSTANDING,
    start: Checkpoint | None = None,
) -> tuple[Recalculation, Recalculation]:
    """``recalculate(events)`` and ``recalculate([*events, extra])`` from one replay of
    ``events`` (a command's preview: the loan before and after it). ``extra`` is dated on or
    after every event. ``start``: a stored state to replay from, ``events`` being those after
    it (as for ``resume``; the allocations are theirs and ``extra``'s)."""
    ordered = _ordered(events)
    if ordered and extra.date < ordered[-1].date:
        raise ValueError(f"{extra.date} is before the latest event {ordered[-1].date}")
    latest = ordered[-1].date if ordered else None
    if start is None:
        engine = _replayed(terms, ordered, termination_interest)
    else:
        if extra.date < start.on or (ordered and ordered[0].date < start.on):
            raise ValueError(f"an event is dated before the state {start.on}")
        engine = _Engine.restore(terms, termination_interest, start.state)
        for event in ordered:
            engine.advance(event.date)
            engine.apply(event)
        latest = max(latest or start.on, start.on)
    other = engine.clone()
    other.advance(extra.date)
    other.apply(extra)
    return (
        _projected(engine, terms, latest, horizon),
        _projected(other, terms, extra.date, horizon),
    )


# Which states a replay keeps, at period boundaries: one at each of the last RECENT boundaries
# before its last event and one after that event (the head), replaced as the history grows;
# and a lasting one at the first boundary after every EVENTS_PER_STATE further events (so a
# backdated transaction replays at most that many events more than follow it).
RECENT = 4
EVENTS_PER_STATE = 200


@dataclass(frozen=True)
class Checkpoint:
    """The engine's state once every event dated on or before ``on`` was applied (``key``: the
    last of them if it is dated ``on``, else None) and interest accrued to ``on``. Replaying
    the later events from it gives exactly what the whole replay gives. ``lasting``: kept
    while it matches the history, else only while among the recent ones."""

    on: date
    key: object
    state: bytes
    lasting: bool = False


@dataclass(frozen=True)
class Resumed:
    """``resume``'s answer: the result, the new checkpoints (dated after the one it started
    from, or all when it started from nothing) and the dates of the recent ones (None when it
    replayed nothing: the checkpoints up to its start stand)."""

    result: Recalculation
    checkpoints: tuple[Checkpoint, ...]
    recent: frozenset | None


@_precise
def resume(
    terms: Terms,
    events: Iterable[Event],
    *,
    start: Checkpoint | None,
    horizon: date | None = None,
    termination_interest: str = ALL_OUTSTANDING,
) -> Resumed | None:
    """``recalculate`` of the whole history from ``start`` (None: from nothing), given the
    events that follow it in (date, entry) order: those dated after ``start.on`` and those on
    it entered after ``start.key``. Its allocations are those of ``events`` only (the others'
    portions do not change). None when ``start`` lies beyond where the whole replay would stop
    (the horizon moved before it), or when a charge is paid from a credit balance that an
    event before ``start`` overpaid (``HistoryNeeded``): the caller replays everything.

    The states passed on the way (see ``RECENT``) are returned as checkpoints for the next
    command to start from."""
    ordered = _ordered(events)
    if start is None:
        engine, after = _Engine(terms, termination_interest), None
    else:
        if ordered and ordered[0].date < start.on:
            raise ValueError(f"an event dated {ordered[0].date} is before the state {start.on}")
        if not ordered and start.key is None and (horizon is None or start.on > horizon):
            return None
        engine, after = _Engine.restore(terms, termination_interest, start.state), start.on
    head = ordered[-1].date if ordered else None
    boundaries = engine.boundaries
    if head is None:
        pending, recent = [], None
    else:
        passed = boundaries[: bisect.bisect_right(boundaries, head)]
        recent = frozenset([*passed[-RECENT:], head])
        first = 0 if after is None else bisect.bisect_right(passed, after)
        pending = list(passed[first:])
        if not pending or pending[-1] != head:
            pending.append(head)
    checkpoints = []
    last = None
    position = 0

    def keep(on: date) -> None:
        lasting = engine.applied - engine.lasting_mark >= EVENTS_PER_STATE and on != head
        if not lasting and on not in recent:
            return
        engine.advance(on)
        if lasting:
            engine.lasting_mark = engine.applied
        key = last.key if last is not None and last.date == on else None
        checkpoints.append(Checkpoint(on=on, key=key, state=engine.snapshot(), lasting=lasting))

    try:
        for event in ordered:
            while position < len(pending) and pending[position] < event.date:
                keep(pending[position])
                position += 1
            engine.advance(event.date)
            engine.apply(event)
            engine.applied += 1
            last = event
    except HistoryNeeded:
        if start is None:
            raise
        return None
    for on in pending[position:]:
        keep(on)
    latest = max(head or date.min, start.on if start is not None else date.min)
    result = _projected(engine, terms, latest if latest > date.min else None, horizon)
    return Resumed(result=result, checkpoints=tuple(checkpoints), recent=recent)


def _projected(
    engine: _Engine, terms: Terms, latest: date | None, horizon: date | None
) -> Recalculation:
    """The replayed engine's result (``latest``: its latest event's date): actual to the
    horizon, projected after it."""
    end = max(horizon or terms.contract_date, latest or date.min)
    engine.advance(end)
    engine.enter_projection()
    if engine.insts:
        engine.advance(max(engine.insts[-1].due_date, end))
    return Recalculation(
        rows=engine.rows(),
        allocations=MappingProxyType(dict(engine.allocations)),
        unallocated=engine.unallocated,
        terminated_on=engine.terminated_on,
        void_terminations=tuple(engine.void),
    )


def payoff(
    terms: Terms,
    events: Iterable[Event],
    *,
    on: date,
    termination_interest: str = ALL_OUTSTANDING,
) -> Payoff:
    """What settles the loan on ``on`` (not before its latest event), assuming no payment in
    between: all principal outstanding, interest accrued to ``on`` (overdue principal included)
    less what was paid towards it, and unpaid fees."""
    return payoffs(terms, events, on=on, days=0, termination_interest=termination_interest)[0]


@_precise
def payoffs(
    terms: Terms,
    events: Iterable[Event],
    *,
    on: date,
    days: int,
    termination_interest: str = ALL_OUTSTANDING,
) -> tuple[Payoff, ...]:
    """The payoff on ``on`` and on each of the ``days`` following days, from one replay."""
    ordered = _ordered(events)
    if ordered and on < ordered[-1].date:
        raise ValueError(f"payoff date {on} is before the latest transaction {ordered[-1].date}")
    engine = _replayed(terms, ordered, termination_interest)
    owed = []
    for n in range(days + 2):  # one day more for the last per diem
        if n > (date.max - on).days:
            # No day after 9999-12-31: its per diem is nothing (as the prorated accrual's).
            owed.append(owed[-1])
            break
        day = on + timedelta(days=n)
        engine.advance(day)
        owed.append((day, *engine.owed_on(day)))
    return tuple(
        Payoff(
            on=day,
            principal=principal,
            interest=interest,
            fees=fees,
            per_diem=max(after[2] - interest, ZERO),
        )
        for (day, principal, interest, fees), after in zip(owed, owed[1:], strict=False)
    )
