"""Reads worth naming: the business date, a loan's current schedule, summaries, annotated
querysets for lists (no query per row)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db.models import (
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
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


def loan_summary(loan: Loan, *, as_of: date, schedule: Schedule | None = None) -> ledger.Summary:
    schedule = schedule if schedule is not None else current_schedule(loan)
    periods = list(schedule.periods.all()) if schedule else []
    return ledger.summarize(periods, as_of=as_of)


def loan_transactions(loan: Loan) -> QuerySet[Transaction]:
    return loan.transactions.select_related("created_by", "reversed_by").order_by("date", "id")


def with_summary(queryset: QuerySet[Loan], *, as_of: date) -> QuerySet[Loan]:
    """Annotate loans with outstanding amounts and past-due figures in one SQL statement.

    ``oldest_past_due_date`` is annotated; days past due is ``as_of`` minus it (see
    ``days_past_due``).
    """
    live = SchedulePeriod.objects.filter(
        schedule__loan=OuterRef("pk"), schedule__is_current=True, frozen=False
    )
    outstanding = ExpressionWrapper(
        F("principal_due")
        + F("interest_due")
        + F("fees_due")
        - F("principal_paid")
        - F("interest_paid")
        - F("fees_paid"),
        output_field=MONEY_FIELD,
    )
    principal = ExpressionWrapper(
        F("principal_due") - F("principal_paid"), output_field=MONEY_FIELD
    )

    def total(expression, extra: Q | None = None):
        rows = live.filter(extra) if extra is not None else live
        return Coalesce(
            Subquery(
                rows.order_by()
                .values("schedule__loan")
                .annotate(total=Sum(expression))
                .values("total")[:1],
                output_field=MONEY_FIELD,
            ),
            ZERO,
            output_field=MONEY_FIELD,
        )

    oldest = (
        live.filter(complete=False, due_date__lt=as_of).order_by("due_date").values("due_date")[:1]
    )
    return queryset.annotate(
        total_outstanding=total(outstanding),
        principal_outstanding=total(principal),
        amount_past_due=total(outstanding, Q(complete=False, due_date__lt=as_of)),
        oldest_past_due_date=Subquery(oldest),
    )


def days_past_due(loan: Loan, *, as_of: date) -> int:
    oldest = getattr(loan, "oldest_past_due_date", None)
    return (as_of - oldest).days if oldest else 0
