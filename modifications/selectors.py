"""Reads of the modifications app: a loan's draft / newest / latest active modification, the
balance carried on a modification date, the pre-modification test, and the wizard's views (a
preview of the draft's schedule, the old and new schedules side by side, and the
balance-over-time chart: inline SVG geometry, no JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from loans import ledger, recalculation, terms, versions
from loans.formatting import words
from loans.models import (
    Loan,
    LoanStatus,
    Schedule,
    ScheduleEngine,
    SchedulePeriod,
    Transaction,
    TransactionType,
)
from loans.schedules import generate_schedule
from modifications.models import PERSISTENT_GROUPS, Modification, ModificationStatus

ZERO = Decimal("0.00")

GROUP_TYPES = {
    "payments": TransactionType.REPAYMENT,
    "charges": TransactionType.CHARGE,
    "advancements": TransactionType.ADVANCEMENT,
    "credits": TransactionType.CREDIT,
}
TYPE_GROUPS = {v: k for k, v in GROUP_TYPES.items()}
TYPE_LABELS = {
    TransactionType.REPAYMENT: "Repayment",
    TransactionType.CHARGE: "Charge",
    TransactionType.ADVANCEMENT: "Advancement",
    TransactionType.CREDIT: "Credit",
}


@dataclass(frozen=True)
class Row:
    period: int
    from_date: date
    due_date: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    balance_after: Decimal
    historical: bool = False

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees


def current_rows(loan: Loan) -> list[Row]:
    rows = SchedulePeriod.objects.filter(schedule__loan=loan, schedule__is_current=True).order_by(
        "period"
    )
    return [
        Row(
            period=p.period,
            from_date=p.from_date,
            due_date=p.due_date,
            principal=p.principal_due,
            interest=p.interest_due,
            fees=p.fees_due,
            balance_after=p.balance_after,
            historical=p.frozen,
        )
        for p in rows
    ]


def preview_rows(modification: Modification, values: dict | None = None) -> list[Row]:
    """The schedule the draft (or ``values``, the draft's fields with changes) would produce:
    the history kept up to the modification date, then the new installments. Raises the core's
    ``InvalidRequestError`` for invalid terms."""
    setup = modification.setup
    merged = {**terms.setup_values(setup), **(values or {})}
    merged["contract_date"] = modification.modification_date
    cleaned = terms.validate_terms(merged)
    kept = [
        replace(r, historical=True)
        for r in current_rows(modification.loan)
        if r.due_date <= modification.modification_date
    ]
    schedule = generate_schedule(terms.terms_from(cleaned), first_number=len(kept) + 1)
    return kept + [
        Row(
            period=p.number,
            from_date=p.from_date,
            due_date=p.due_date,
            principal=p.principal,
            interest=p.interest,
            fees=ZERO,
            balance_after=p.balance_after,
        )
        for p in schedule.periods
    ]


@dataclass(frozen=True)
class ComparisonRow:
    period: int
    old: Row | None
    new: Row | None

    @property
    def changed(self) -> bool:
        if self.old is None or self.new is None:
            return True
        return (self.old.due_date, self.old.principal, self.old.interest) != (
            self.new.due_date,
            self.new.principal,
            self.new.interest,
        )


def compare(old: list[Row], new: list[Row]) -> list[ComparisonRow]:
    by_old = {r.period: r for r in old}
    by_new = {r.period: r for r in new}
    numbers = sorted(set(by_old) | set(by_new))
    return [ComparisonRow(n, by_old.get(n), by_new.get(n)) for n in numbers]


def totals(rows: list[Row], *, after: date) -> dict:
    """Count and sums of the installments due after ``after`` (the modification date)."""
    live = [r for r in rows if r.due_date > after and not r.historical]
    return {
        "count": len(live),
        "principal": sum((r.principal for r in live), ZERO),
        "interest": sum((r.interest for r in live), ZERO),
        "total": sum((r.total for r in live), ZERO),
        "maturity": live[-1].due_date if live else None,
    }


def _series(rows: list[Row], start: tuple[date, Decimal] | None = None) -> list[tuple]:
    points = [start] if start else []
    if rows and not start:
        first = rows[0]
        points.append((first.from_date, first.balance_after + first.principal))
    points.extend((r.due_date, r.balance_after) for r in rows)
    return points


def balance_chart(
    old: list[Row], new: list[Row], *, modification_date: date, carried: Decimal
) -> dict:
    """Geometry of an inline SVG line chart of the principal balance over time of both
    schedules (rendered by the template; no JavaScript, no CDN)."""
    width, height, left, right, top, bottom = 760, 280, 70, 20, 20, 40
    old_points = _series(old)
    kept = [r for r in new if r.historical]
    new_points = _series(kept) + [(modification_date, carried)]
    new_points += [(r.due_date, r.balance_after) for r in new if not r.historical]
    everything = old_points + new_points
    if not everything:
        return {}
    x_min = min(p[0] for p in everything).toordinal()
    x_max = max(p[0] for p in everything).toordinal()
    y_max = max(max(p[1] for p in everything), Decimal("1"))
    span_x = max(x_max - x_min, 1)

    def xy(point):
        x = left + (point[0].toordinal() - x_min) * (width - left - right) / span_x
        y = top + (1 - float(point[1] / y_max)) * (height - top - bottom)
        return f"{x:.1f},{y:.1f}"

    mod_x = left + (modification_date.toordinal() - x_min) * (width - left - right) / span_x
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "bottom": height - bottom,
        "old_points": " ".join(xy(p) for p in old_points),
        "new_points": " ".join(xy(p) for p in new_points),
        "mod_x": f"{mod_x:.1f}",
        "y_max": y_max.quantize(Decimal("0.01")),
        "x_min": date.fromordinal(x_min),
        "x_max": date.fromordinal(x_max),
        "label_y": height - bottom + 16,
    }


# --------------------------------------------------------------------------------------------
# Modifications of a loan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarriedBalance:
    principal: Decimal
    interest: Decimal
    fees: Decimal
    frozen_periods: list  # ledger.PeriodState due on or before the date, as they were then

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees


def later_transactions(loan: Loan, on: date):
    return Transaction.objects.filter(
        loan=loan, reversed=False, date__gt=on, type__in=list(TYPE_GROUPS)
    ).order_by("date", "id")


def _info(tx: Transaction) -> str:
    info = f"{tx.date:%Y-%m-%d} {TYPE_LABELS[tx.type]}"
    return f"{info} {tx.note}".strip() if tx.note else info


def pre_modification_test(*, loan: Loan, on: date) -> dict:
    """The non-reversed transactions dated after ``on`` in LoanPro's shape (ids as strings)."""
    result: dict[str, list] = {group: [] for group in PERSISTENT_GROUPS}
    for tx in later_transactions(loan, on):
        result[TYPE_GROUPS[tx.type]].append(
            {
                "id": str(tx.pk),
                "displayId": tx.external_id or str(tx.pk),
                "date": tx.date,
                "amount": tx.amount,
                "info": _info(tx),
            }
        )
    return result


def latest_active_modification(loan: Loan) -> Modification | None:
    return (
        Modification.objects.filter(loan=loan, status=ModificationStatus.ACTIVE)
        .order_by("-id")
        .first()
    )


def draft_modification(loan: Loan) -> Modification | None:
    return (
        Modification.objects.filter(loan=loan, status=ModificationStatus.DRAFT)
        .select_related("setup")
        .first()
    )


def carried_balance(loan: Loan, on: date) -> CarriedBalance:
    """What the borrower owed on ``on``: the current version replayed in memory with only the
    transactions dated on or before ``on``."""
    schedule = Schedule.objects.select_related("setup").get(loan=loan, is_current=True)
    transactions = [t for t in versions.replay_transactions(loan, schedule) if t.date <= on]
    result = versions.derive_periods(loan, schedule, transactions)
    setup = schedule.setup
    if setup.interest_recalculation and loan.schedule_engine == ScheduleEngine.DYNAMIC:
        # DESIGN §11: the payoff on the date with the daily accrual
        quote = recalculation.payoff(
            terms=terms.terms_for(setup),
            transactions=transactions,
            on=on,
            termination_interest=setup.termination_interest,
        )
        owed = ledger.Allocation(
            principal=quote.principal, interest=quote.interest, fees=quote.fees
        )
    else:
        # The payoff on the modification date (DESIGN §4, §9): interest paid ahead of being
        # earned is credited, so nothing is carried (and charged) twice.
        owed = ledger.payoff(
            result.periods,
            on=on,
            rounding_mode=setup.rounding_mode,
            accrual=versions.accrual_for(setup),
        )
    frozen = [p for p in result.periods if p.frozen or p.due_date <= on]
    return CarriedBalance(
        principal=owed.principal, interest=owed.interest, fees=owed.fees, frozen_periods=frozen
    )


def newest_modification(loan: Loan) -> Modification | None:
    """The modification ``cancel_modification`` would cancel (newest not cancelled)."""
    return (
        Modification.objects.filter(loan=loan)
        .exclude(status=ModificationStatus.CANCELLED)
        .order_by("-id")
        .first()
    )


def modification_refusals(loan: Loan) -> list[dict]:
    """The state checks ``create_modification`` makes before anything else (the loan page's
    "Modify loan" button asks them too), in order; the first is the one it raises."""
    refusals = []
    if loan.status != LoanStatus.ACTIVE:
        refusals.append(
            {
                "field": None,
                "code": "loan_not_active",
                "detail": f"Only an active loan can be modified; this loan is {words(loan.status)}.",
            }
        )
    if loan.is_terminated:
        refusals.append(
            {
                "field": None,
                "code": "loan_terminated",
                "detail": "The contract of this loan is terminated.",
            }
        )
    if loan.charged_off:  # Fineract refuses a reschedule of a charged-off loan too
        refusals.append(
            {
                "field": None,
                "code": "loan_charged_off",
                "detail": "The loan is charged off: undo the charge-off first.",
            }
        )
    if loan.modification_in_progress or draft_modification(loan) is not None:
        refusals.append(
            {
                "field": None,
                "code": "modification_in_progress",
                "detail": "A modification is already in progress: activate or cancel it first.",
            }
        )
    return refusals
