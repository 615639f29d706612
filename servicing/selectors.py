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


@dataclass
class PendingCounts:
    """What ``cancel_servicing`` would cancel on one loan, in the seven counts' names."""

    cancelled_scheduled_payments: int = 0
    cancelled_call_schedules: int = 0
    cancelled_email_schedules: int = 0
    cancelled_sms_schedules: int = 0
    cancelled_calls: int = 0
    cancelled_emails: int = 0
    cancelled_sms: int = 0

    @property
    def total(self) -> int:
        return (
            self.cancelled_scheduled_payments
            + self.cancelled_call_schedules
            + self.cancelled_email_schedules
            + self.cancelled_sms_schedules
            + self.cancelled_calls
            + self.cancelled_emails
            + self.cancelled_sms
        )


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


def pending_counts(loan_ids: Iterable[int]) -> dict[int, PendingCounts]:
    """For each loan, the items still PENDING (schedules ACTIVE), counted in three grouped
    queries whatever the number of loans."""
    loan_ids = list(loan_ids)
    counts = {loan_id: PendingCounts() for loan_id in loan_ids}
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
