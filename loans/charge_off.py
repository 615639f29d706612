"""Charge-off and its undo (DESIGN §12): the refusal checks and the previews, read-only. The
commands (``charge_off``, ``undo_charge_off``) are in ``loans.services`` and ask these same
functions, so the admin's preview and the command cannot disagree.

Choices recorded here (Fineract's charge-off, where DESIGN is silent):

* The charge-off is dated on the business date and carries what is outstanding on it: the
  payoff on that date (DESIGN §1 "the one definition of what is owed on D"): all principal, the
  interest of the installments already due, the interest the current installment earned by the
  date (a recalculating loan: its daily accrual), unpaid fees. Interest stops accruing from
  then on (Fineract's ``ZERO_INTEREST`` behaviour; ``loans.ledger.charge_off``).
* Besides the three checks of DESIGN §12 (``loan_not_active``, ``already_charged_off``,
  ``modification_in_progress``), the ones every command dated on the business date makes, as
  termination does: not before the contract or the latest modification, no transaction dated
  after the business date.
* A charged-off loan takes repayments, credits, charges and a payoff (recoveries), but no
  advancement (``loan_charged_off``) and no termination (DESIGN §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from loans import ledger, selectors, versions
from loans.formatting import article, words
from loans.models import Loan, LoanStatus, Schedule, Transaction, TransactionType

ZERO = Decimal("0.00")


_refusal = selectors.refusal


@dataclass(frozen=True)
class ChargeOffPreview:
    """What charging the loan off on ``on`` would write (nothing is written): the portions of
    the CHARGE_OFF transaction, the schedule after it, and the failed checks."""

    loan: Loan
    on: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    periods: tuple[ledger.PeriodState, ...]
    before: ledger.Summary | None
    after: ledger.Summary | None
    refusals: tuple[dict, ...] = ()

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees

    @property
    def allowed(self) -> bool:
        return not self.refusals

    @property
    def live_periods(self) -> list[ledger.PeriodState]:
        return ledger.live(list(self.periods))


@dataclass(frozen=True)
class UndoChargeOffPreview:
    """What undoing the charge-off would restore (nothing is written)."""

    loan: Loan
    charge_off: Transaction | None
    periods: tuple[ledger.PeriodState, ...]
    after: ledger.Summary | None
    refusals: tuple[dict, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.refusals

    @property
    def live_periods(self) -> list[ledger.PeriodState]:
        return ledger.live(list(self.periods))


def charge_off_refusals(loan: Loan, *, as_of: date) -> list[dict]:
    """Every check ``charge_off`` makes, collected (DESIGN §12). Read-only."""
    refusals = []
    if loan.status != LoanStatus.ACTIVE:
        refusals.append(selectors.not_active_refusal(loan, "can be charged off"))
    if loan.charged_off:
        refusals.append(_refusal("already_charged_off", "The loan is already charged off."))
    if loan.modification_in_progress:
        refusals.append(
            _refusal(
                "modification_in_progress",
                "A modification is in progress: activate or cancel it first.",
            )
        )
    refusals.extend(selectors.dating_refusals(loan, as_of=as_of))
    return refusals


def charge_off_preview(loan: Loan, as_of: date, refusals: tuple = ()) -> ChargeOffPreview:
    """The loan with a CHARGE_OFF dated ``as_of`` replayed in memory: the computation behind
    ``preview_charge_off`` and ``loans.services.charge_off``."""
    schedule = (
        Schedule.objects.select_related("setup").filter(loan=loan, is_current=True).first()
        if loan.status != LoanStatus.PENDING
        else None
    )
    if schedule is None:
        return ChargeOffPreview(
            loan=loan,
            on=as_of,
            principal=ZERO,
            interest=ZERO,
            fees=ZERO,
            periods=(),
            before=None,
            after=None,
            refusals=refusals,
        )
    transactions = versions.replay_transactions(loan, schedule)
    frozen = [versions.period_state(r) for r in versions.frozen_rows(schedule)]
    before = versions.derive_periods(loan, schedule, transactions, frozen=list(frozen))
    pending = Transaction(loan=loan, type=TransactionType.CHARGE_OFF, date=as_of, amount=ZERO)
    after = versions.derive_periods(
        loan,
        schedule,
        [*transactions, pending],
        frozen=[versions.period_state(r) for r in versions.frozen_rows(schedule)],
    )
    owed = after.allocations.get(None, ledger.Allocation())
    return ChargeOffPreview(
        loan=loan,
        on=as_of,
        principal=owed.principal,
        interest=owed.interest,
        fees=owed.fees,
        periods=tuple(after.periods),
        before=ledger.summarize(before.periods, as_of=as_of),
        after=ledger.summarize(after.periods, as_of=as_of),
        refusals=refusals,
    )


def preview_charge_off(loan: Loan, *, as_of: date) -> ChargeOffPreview:
    """What ``charge_off`` would write on ``as_of``, writing nothing."""
    return charge_off_preview(loan, as_of, tuple(charge_off_refusals(loan, as_of=as_of)))


def undo_charge_off_state(loan: Loan) -> tuple[Transaction | None, list[dict]]:
    """The charge-off to undo and every failed check of ``undo_charge_off``: the loan is
    charged off and the charge-off is its latest non-reversed user transaction (by date, then
    entry)."""
    refusals = []
    user_transactions = (
        Transaction.objects.filter(loan=loan, reversed=False)
        .exclude(type=TransactionType.DISBURSEMENT)
        .order_by("-date", "-id")
    )
    charge_off = user_transactions.filter(type=TransactionType.CHARGE_OFF).first()
    if not loan.charged_off or charge_off is None:
        refusals.append(_refusal("not_charged_off", "The loan is not charged off."))
        return charge_off, refusals
    if loan.modification_in_progress:
        refusals.append(
            _refusal(
                "modification_in_progress",
                "A modification is in progress: activate or cancel it first.",
            )
        )
    latest = user_transactions.first()
    if latest.pk != charge_off.pk:
        refusals.append(
            _refusal(
                "charge_off_not_latest",
                "The charge-off is not the loan's latest transaction: "
                f"{article(words(latest.type))} dated {latest.date} (id {latest.pk}) came after "
                "it; undo that first.",
            )
        )
    return charge_off, refusals


def preview_undo_charge_off(loan: Loan, *, as_of: date) -> UndoChargeOffPreview:
    """The schedule ``undo_charge_off`` would restore, writing nothing."""
    charge_off, refusals = undo_charge_off_state(loan)
    schedule = Schedule.objects.select_related("setup").filter(loan=loan, is_current=True).first()
    if schedule is None:
        return UndoChargeOffPreview(
            loan=loan, charge_off=charge_off, periods=(), after=None, refusals=tuple(refusals)
        )
    transactions = [
        t
        for t in versions.replay_transactions(loan, schedule)
        if t.type != TransactionType.CHARGE_OFF
    ]
    restored = versions.derive_periods(loan, schedule, transactions)
    return UndoChargeOffPreview(
        loan=loan,
        charge_off=charge_off,
        periods=tuple(restored.periods),
        after=ledger.summarize(restored.periods, as_of=as_of),
        refusals=tuple(refusals),
    )
