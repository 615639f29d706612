"""Reads worth naming: the business date, a loan's current schedule, summaries, annotated
querysets for lists (no query per row)."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from django.db.models import (
    DecimalField,
    ExpressionWrapper,
    F,
    Min,
    Prefetch,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from loans import ledger
from loans.exceptions import NotFoundError
from loans.models import BusinessDate, Loan, Schedule, SchedulePeriod, Transaction

ZERO = Decimal("0.00")
MONEY_FIELD = DecimalField(max_digits=14, decimal_places=2)


def get_business_date() -> date:
    """The business date; until an operator sets one it is today's date (DESIGN §1)."""
    row = BusinessDate.objects.filter(pk=1).only("date").first()
    return row.date if row else timezone.localdate()


def get_loan(*, loan_id: int | str | None = None, external_id: str | None = None) -> Loan:
    queryset = Loan.objects.select_related("borrower", "setup")
    try:
        if external_id is not None:
            return queryset.get(external_id=external_id)
        return queryset.get(pk=int(loan_id))
    except (Loan.DoesNotExist, ValueError, TypeError):
        ident = external_id if external_id is not None else loan_id
        raise NotFoundError(f"Loan {ident} was not found.", code="loan_not_found")


def current_schedule(loan: Loan, *, with_periods: bool = True) -> Schedule | None:
    queryset = Schedule.objects.filter(loan=loan, is_current=True)
    if with_periods:
        queryset = queryset.prefetch_related(
            Prefetch("periods", queryset=SchedulePeriod.objects.order_by("period"))
        )
    return queryset.first()


def loan_summary(
    loan: Loan,
    *,
    as_of: date,
    schedule: Schedule | None = None,
    periods: list[ledger.PeriodState] | None = None,
) -> ledger.Summary:
    """``periods`` (e.g. ``period_states(schedule)``) saves reading the schedule's rows again."""
    if periods is None:
        schedule = schedule if schedule is not None else current_schedule(loan)
        periods = list(schedule.periods.all()) if schedule else []
    return ledger.summarize(periods, as_of=as_of)


_PERIOD_COLUMNS = [
    f.name
    for f in dataclasses.fields(ledger.PeriodState)
    if f.name in {field.name for field in SchedulePeriod._meta.concrete_fields}
]


def period_states(schedule: Schedule | None) -> list[ledger.PeriodState]:
    """A schedule version's periods, in order, as ``ledger.PeriodState`` read with
    ``values_list`` (a tenth of the cost of model instances for a 360-period schedule)."""
    if schedule is None:
        return []
    rows = (
        SchedulePeriod.objects.filter(schedule=schedule)
        .order_by("period")
        .values_list(*_PERIOD_COLUMNS)
    )
    return [ledger.PeriodState(**dict(zip(_PERIOD_COLUMNS, row, strict=True))) for row in rows]


_TRANSACTION_COLUMNS = [f.attname for f in Transaction._meta.concrete_fields]


def transaction_rows(loan: Loan) -> list[SimpleNamespace]:
    """The loan's transactions in (date, id) order as plain rows: every column as an attribute
    (``pk`` too) and ``created_by_username``; no model instances, no user join per row."""
    rows = (
        Transaction.objects.filter(loan=loan)
        .order_by("date", "id")
        .values_list(*_TRANSACTION_COLUMNS, "created_by__username")
    )
    out = []
    for row in rows:
        item = SimpleNamespace(**dict(zip(_TRANSACTION_COLUMNS, row, strict=False)))
        item.pk, item.created_by_username = item.id, row[-1]
        out.append(item)
    return out


def loan_transactions(loan: Loan) -> QuerySet[Transaction]:
    return loan.transactions.select_related("created_by", "reversed_by").order_by("date", "id")


def page_summaries(loan_ids: list[int], *, as_of: date) -> dict[int, dict]:
    """Outstanding, past-due and oldest past-due date for a page of loans, in ONE grouped
    query over their current schedules' live installments. Run after pagination, so a deep
    page costs what the first one does (no correlated subquery evaluated for skipped rows)."""
    outstanding = ExpressionWrapper(
        F("principal_due")
        + F("interest_due")
        + F("fees_due")
        - F("principal_paid")
        - F("interest_paid")
        - F("fees_paid"),
        output_field=MONEY_FIELD,
    )
    past_due = Q(complete=False, due_date__lt=as_of)
    rows = (
        SchedulePeriod.objects.filter(
            schedule__loan_id__in=loan_ids, schedule__is_current=True, frozen=False
        )
        .values("schedule__loan_id")
        .annotate(
            total_outstanding=Sum(outstanding),
            principal_outstanding=Sum(
                ExpressionWrapper(
                    F("principal_due") - F("principal_paid"), output_field=MONEY_FIELD
                )
            ),
            amount_past_due=Coalesce(
                Sum(outstanding, filter=past_due), ZERO, output_field=MONEY_FIELD
            ),
            oldest_past_due_date=Min("due_date", filter=past_due),
        )
        .order_by()
    )
    return {row.pop("schedule__loan_id"): row for row in rows}
