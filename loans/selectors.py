"""Reads worth naming: the business date, a loan's current schedule, summaries, annotated
querysets for lists (no query per row)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

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
from loans.exceptions import InvalidRequestError, LoanStateError, NotFoundError, field_error
from loans.models import (
    PAYING_TYPES,
    BusinessDate,
    Loan,
    LoanSetup,
    LoanStatus,
    Schedule,
    SchedulePeriod,
    Transaction,
    TransactionType,
)

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
    """The summary figures, with the credit balance and the payoff on ``as_of`` (§9)."""
    schedule = schedule if schedule is not None else current_schedule(loan)
    periods = list(schedule.periods.all()) if schedule else []
    summary = ledger.summarize(periods, as_of=as_of)
    if schedule is None:
        return summary
    credit = credit_balance(loan)
    try:
        today = payoff(loan, on=as_of).total
    except (InvalidRequestError, LoanStateError):  # dated before the latest transaction
        today = None
    return replace(summary, credit_balance=credit, payoff_today=today)


# ------------------------------------------------------------------ payoff and credit (§9)


def credit_balance(loan: Loan) -> Decimal:
    """What the borrower paid beyond everything owed and was not refunded (DESIGN §9)."""
    figures = Transaction.objects.filter(loan=loan, reversed=False).aggregate(
        overpaid=Sum("overpayment_portion", filter=Q(type__in=PAYING_TYPES)),
        refunded=Sum("amount", filter=Q(type=TransactionType.CREDIT_BALANCE_REFUND)),
    )
    return (figures["overpaid"] or ZERO) - (figures["refunded"] or ZERO)


def accrual_for(setup: LoanSetup) -> ledger.ProratedAccrual:
    """How the setup earns interest between due dates: the seam of the payoff and the replay.
    A non-recalculating loan prorates its installment's scheduled interest by days (§9); the
    interest recalculation engine (§11) returns its daily accrual here."""
    return ledger.PRORATED


def derived_periods(loan: Loan) -> list[ledger.PeriodState]:
    """The current schedule version re-derived in memory (with what the database does not keep,
    e.g. the interest a settlement credited)."""
    from loans import services

    schedule = Schedule.objects.select_related("setup").get(loan=loan, is_current=True)
    transactions = services.replay_transactions(loan, schedule)
    return services.derive_periods(loan, schedule, transactions).periods


def _payoff_state(loan: Loan, on: date):
    from loans import services

    if loan.status == LoanStatus.PENDING:
        raise LoanStateError("The loan is not active yet.", code="loan_not_active")
    schedule = Schedule.objects.select_related("setup").get(loan=loan, is_current=True)
    latest = (
        Transaction.objects.filter(loan=loan, reversed=False)
        .order_by("-date")
        .values_list("date", flat=True)
        .first()
    )
    if latest is not None and on < latest:
        raise InvalidRequestError(
            f"The payoff date {on} is before the latest transaction, dated {latest}.",
            code="date_before_last_transaction",
            errors=[field_error("date", f"On or after {latest}.", "date_before_last_transaction")],
        )
    transactions = services.replay_transactions(loan, schedule)
    result = services.derive_periods(loan, schedule, transactions)
    return schedule.setup, result


def payoff(loan: Loan, *, on: date) -> ledger.Payoff:
    """What settles the loan on ``on`` (DESIGN §9): ``ledger.payoff`` over the current schedule
    re-derived from every transaction. ``on`` may be after the business date (a quote assuming
    no payment in between), not before the latest transaction (400)."""
    setup, result = _payoff_state(loan, on)
    return ledger.payoff(
        result.periods,
        on=on,
        rounding_mode=setup.rounding_mode,
        credit=credit_balance(loan),
        accrual=accrual_for(setup),
    )


@dataclass(frozen=True)
class PayoffQuote:
    per_diem: Decimal
    credit_balance: Decimal
    quotes: tuple[ledger.Payoff, ...]


MAX_QUOTE_DAYS = 366


def payoff_quotes(loan: Loan, *, on: date, days: int = 10) -> PayoffQuote:
    """The payoff on ``on`` and each of the ``days`` following days (one derivation)."""
    if not 0 <= days <= MAX_QUOTE_DAYS or on > date.max - timedelta(days=days):
        raise InvalidRequestError(
            f"days must be between 0 and {MAX_QUOTE_DAYS}, and the last date quoted a date.",
            errors=[field_error("days", "Out of range.", "out_of_range")],
        )
    setup, result = _payoff_state(loan, on)
    credit = credit_balance(loan)
    accrual = accrual_for(setup)
    quotes = tuple(
        ledger.payoff(
            result.periods,
            on=on + timedelta(days=n),
            rounding_mode=setup.rounding_mode,
            credit=credit,
            accrual=accrual,
        )
        for n in range(days + 1)
    )
    return PayoffQuote(per_diem=quotes[0].per_diem, credit_balance=credit, quotes=quotes)


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
