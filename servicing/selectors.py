"""Reads of the servicing app worth naming."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count

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
