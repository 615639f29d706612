"""Reads of the servicing app worth naming."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce

from loans.models import (
    DelinquencyBucket,
    Loan,
    LoanStatus,
    LoanSubStatus,
    SchedulePeriod,
    ServicingStatus,
)
from servicing.models import (
    AttemptStatus,
    Channel,
    CommunicationSchedule,
    CommunicationScheduleStatus,
    CommunicationStatus,
    DispatchAttempt,
    ItemKind,
    LoanDailySnapshot,
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
    "byDelinquencyBucket": ("delinquency_bucket", None),
}


def _dimension_values() -> dict[str, list]:
    return {
        "byStatus": list(LoanStatus.values),
        "bySubStatus": [None, *LoanSubStatus.values],
        "byServicingStatus": list(ServicingStatus.values),
        "byDelinquencyBucket": list(DelinquencyBucket.values),
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


CHART_DAYS = 90


def snapshot_series(*, as_of, days: int = CHART_DAYS) -> dict:
    """The portfolio over the last ``days`` business dates up to ``as_of``, from the daily
    snapshots in ONE grouped query (by date and bucket): per date the total outstanding, the
    amount past due and the number of loans in each delinquency bucket. A window reaching back
    before 0001-01-01 starts there (``as_of - 89 days`` was an OverflowError)."""
    since = as_of - timedelta(days=min(days - 1, (as_of - date.min).days))
    money_field = DecimalField(max_digits=14, decimal_places=2)
    rows = (
        LoanDailySnapshot.objects.filter(business_date__gte=since, business_date__lte=as_of)
        .values("business_date", "delinquency_bucket")
        .annotate(
            loans=Count("id"),
            outstanding=Sum(
                F("principal_outstanding") + F("interest_outstanding") + F("fees_outstanding"),
                output_field=money_field,
            ),
            past_due=Sum("amount_past_due", output_field=money_field),
        )
        .order_by("business_date")
    )
    outstanding: dict = {}
    past_due: dict = {}
    buckets: dict = {bucket: {} for bucket in DelinquencyBucket.values}
    for row in rows:
        day = row["business_date"]
        outstanding[day] = outstanding.get(day, Decimal("0")) + _cents(row["outstanding"] or 0)
        past_due[day] = past_due.get(day, Decimal("0")) + _cents(row["past_due"] or 0)
        buckets.setdefault(row["delinquency_bucket"], {})[day] = row["loans"]
    days_seen = sorted(outstanding)
    return {
        "dates": days_seen,
        "outstanding": [(d, outstanding[d]) for d in days_seen],
        "past_due": [(d, past_due[d]) for d in days_seen],
        "buckets": {
            bucket: [(d, counts.get(d, 0)) for d in days_seen] for bucket, counts in buckets.items()
        },
    }


def dispatcher_queue(*, as_of, now) -> dict:
    """The dispatcher's queue: items due now (pending, dated by now, not deferred), deferred
    (pending, ``not_before`` later), in flight, and attempts failed today (UTC)."""
    not_deferred = Q(not_before__isnull=True) | Q(not_before__lte=now)
    payments = ScheduledPayment.objects.aggregate(
        due=Count(
            "id",
            filter=Q(status=ScheduledPaymentStatus.PENDING, scheduled_date__lte=as_of)
            & not_deferred,
        ),
        deferred=Count("id", filter=Q(status=ScheduledPaymentStatus.PENDING, not_before__gt=now)),
        in_flight=Count("id", filter=Q(status=ScheduledPaymentStatus.IN_FLIGHT)),
    )
    communications = ScheduledCommunication.objects.aggregate(
        due=Count(
            "id",
            filter=Q(status=CommunicationStatus.PENDING, scheduled_at__lte=now) & not_deferred,
        ),
        deferred=Count("id", filter=Q(status=CommunicationStatus.PENDING, not_before__gt=now)),
        in_flight=Count("id", filter=Q(status=CommunicationStatus.IN_FLIGHT)),
    )
    start_of_day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    failed = dict(
        DispatchAttempt.objects.filter(status=AttemptStatus.FAILED, started_at__gte=start_of_day)
        .values_list("kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    payments["failed_today"] = failed.get(ItemKind.PAYMENT, 0)
    communications["failed_today"] = failed.get(ItemKind.COMMUNICATION, 0)
    return {"payments": payments, "communications": communications}
