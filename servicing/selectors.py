"""Reads of the servicing app worth naming."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce

from loans.models import Loan, LoanStatus, LoanSubStatus, SchedulePeriod, ServicingStatus
from servicing.models import (
    Channel,
    CommunicationSchedule,
    CommunicationScheduleStatus,
    CommunicationStatus,
    ScheduledCommunication,
    ScheduledPayment,
    ScheduledPaymentStatus,
)


@dataclass(kw_only=True)
class CancelCounts:
    """The seven counts of cancel servicing: what ``cancel_servicing`` cancelled (its result
    extends this) or would cancel on one loan (``pending_counts``)."""

    cancelled_scheduled_payments: int = 0
    cancelled_call_schedules: int = 0
    cancelled_email_schedules: int = 0
    cancelled_sms_schedules: int = 0
    cancelled_calls: int = 0
    cancelled_emails: int = 0
    cancelled_sms: int = 0

    COUNT_FIELDS = (
        "cancelled_scheduled_payments",
        "cancelled_call_schedules",
        "cancelled_email_schedules",
        "cancelled_sms_schedules",
        "cancelled_calls",
        "cancelled_emails",
        "cancelled_sms",
    )

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNT_FIELDS}

    @property
    def total(self) -> int:
        return sum(self.counts().values())


COMMUNICATION_FIELD = {
    Channel.CALL: "cancelled_calls",
    Channel.EMAIL: "cancelled_emails",
    Channel.SMS: "cancelled_sms",
}
SCHEDULE_FIELD = {
    Channel.CALL: "cancelled_call_schedules",
    Channel.EMAIL: "cancelled_email_schedules",
    Channel.SMS: "cancelled_sms_schedules",
}


def pending_counts(loan_ids: Iterable[int]) -> dict[int, CancelCounts]:
    """For each loan, the items still PENDING (schedules ACTIVE), counted in three grouped
    queries whatever the number of loans."""
    loan_ids = list(loan_ids)
    counts = {loan_id: CancelCounts() for loan_id in loan_ids}
    if not loan_ids:
        return counts
    payments = (
        ScheduledPayment.objects.filter(loan_id__in=loan_ids, status=ScheduledPaymentStatus.PENDING)
        .order_by()
        .values("loan_id")
        .annotate(n=Count("id"))
    )
    for row in payments:
        counts[row["loan_id"]].cancelled_scheduled_payments = row["n"]
    communications = (
        ScheduledCommunication.objects.filter(
            loan_id__in=loan_ids, status=CommunicationStatus.PENDING
        )
        .order_by()
        .values("loan_id", "channel")
        .annotate(n=Count("id"))
    )
    for row in communications:
        setattr(counts[row["loan_id"]], COMMUNICATION_FIELD[row["channel"]], row["n"])
    schedules = (
        CommunicationSchedule.objects.filter(
            loan_id__in=loan_ids, status=CommunicationScheduleStatus.ACTIVE
        )
        .order_by()
        .values("loan_id", "channel")
        .annotate(n=Count("id"))
    )
    for row in schedules:
        setattr(counts[row["loan_id"]], SCHEDULE_FIELD[row["channel"]], row["n"])
    return counts


# ------------------------------------------------------------------ the portfolio


PORTFOLIO_DIMENSIONS = {
    # summary key -> (Loan field, the values it can take; None = "no sub-status")
    "byStatus": ("status", None),
    "bySubStatus": ("sub_status", None),
    "byServicingStatus": ("servicing_status", None),
}


def _dimension_values() -> dict[str, list]:
    return {
        "byStatus": list(LoanStatus.values),
        "bySubStatus": [None, *LoanSubStatus.values],
        "byServicingStatus": list(ServicingStatus.values),
    }


def portfolio_summary(*, as_of) -> dict:
    """Counts and amounts of every loan by status, sub-status, servicing status and delinquency
    bucket, in two grouped queries whatever the number of loans: the loans counted by the
    combination of the four, and the live installments of their current schedules summed by the
    same combination; each dimension is then rolled up from those few combinations.

    Amounts are ``principalOutstanding``, ``totalOutstanding`` and ``amountPastDue`` (due
    before ``as_of`` and unpaid), as ``Decimal``; every value of each dimension is listed, with
    zeros where no loan has it."""
    money_field = DecimalField(max_digits=14, decimal_places=2)
    zero = Decimal("0.00")
    fields = [field for field, _values in PORTFOLIO_DIMENSIONS.values()]
    counts = {
        tuple(row[f] for f in fields): row["n"]
        for row in Loan.objects.values(*fields).annotate(n=Count("id")).order_by()
    }
    outstanding = ExpressionWrapper(
        F("principal_due")
        + F("interest_due")
        + F("fees_due")
        - F("principal_paid")
        - F("interest_paid")
        - F("fees_paid"),
        output_field=money_field,
    )
    amounts = {
        tuple(row[f"schedule__loan__{f}"] for f in fields): row
        for row in SchedulePeriod.objects.filter(schedule__is_current=True, frozen=False)
        .values(*[f"schedule__loan__{f}" for f in fields])
        .annotate(
            principal=Coalesce(
                Sum(
                    ExpressionWrapper(
                        F("principal_due") - F("principal_paid"), output_field=money_field
                    )
                ),
                zero,
                output_field=money_field,
            ),
            total=Coalesce(Sum(outstanding), zero, output_field=money_field),
            past_due=Coalesce(
                Sum(outstanding, filter=Q(complete=False, due_date__lt=as_of)),
                zero,
                output_field=money_field,
            ),
        )
        .order_by()
    }

    def empty(value) -> dict:
        return {
            "value": value,
            "count": 0,
            "principalOutstanding": zero,
            "totalOutstanding": zero,
            "amountPastDue": zero,
        }

    def add(bucket: dict, key: tuple) -> None:
        bucket["count"] += counts.get(key, 0)
        row = amounts.get(key)
        if row:
            bucket["principalOutstanding"] += _cents(row["principal"])
            bucket["totalOutstanding"] += _cents(row["total"])
            bucket["amountPastDue"] += _cents(row["past_due"])

    keys = set(counts) | set(amounts)
    total = empty(None)
    for key in keys:
        add(total, key)
    summary = {"businessDate": as_of, "total": total}
    values = _dimension_values()
    for index, name in enumerate(PORTFOLIO_DIMENSIONS):
        groups = {value: empty(value) for value in values[name]}
        for key in keys:
            groups.setdefault(key[index], empty(key[index]))
            add(groups[key[index]], key)
        summary[name] = list(groups.values())
    return summary


def _cents(value) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))
