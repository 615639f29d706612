"""Builders of the servicing tests: seed 000's mix of scheduled items, and noise (items
already processed, sent, failed or cancelled) that must never be counted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from servicing import services
from servicing.models import (
    Channel,
    CommunicationSchedule,
    CommunicationScheduleStatus,
    CommunicationStatus,
    ScheduledCommunication,
    ScheduledPayment,
    ScheduledPaymentStatus,
)

AS_OF = date(2026, 2, 18)


def at(day: int, hour: int = 15) -> datetime:
    """An aware datetime in March 2026 (UTC)."""
    return datetime(2026, 3, day, hour, 0, tzinfo=UTC)


def add_seed_000_mix(loan, actor) -> None:
    """Seed 000's example through the services: 3 payments; a call, an email and an SMS
    schedule; 5 calls (2 generated + 3 one-off), 2 emails (1 + 1), 3 SMS (2 + 1)."""
    for n, amount in enumerate(["100.00", "100.00", "250.55"]):
        services.schedule_payment(
            loan=loan,
            amount=Decimal(amount),
            scheduled_date=AS_OF + timedelta(days=7 * (n + 1)),
            actor=actor,
        )
    for channel, occurrences, one_off in [
        (Channel.CALL, 2, 3),
        (Channel.EMAIL, 1, 1),
        (Channel.SMS, 2, 1),
    ]:
        services.create_communication_schedule(
            loan=loan,
            channel=channel,
            every_days=7,
            start_date=date(2026, 3, 1),
            occurrences=occurrences,
            subject=f"{channel} reminder",
            actor=actor,
        )
        for n in range(one_off):
            services.schedule_communication(
                loan=loan, channel=channel, scheduled_at=at(10 + n), body="hello", actor=actor
            )


def add_noise(loan) -> None:
    """Items in every other status: none of them may be counted or changed by a cancel."""
    now = timezone.now()
    for status in (ScheduledPaymentStatus.PROCESSED, ScheduledPaymentStatus.FAILED):
        ScheduledPayment.objects.create(
            loan=loan, amount=Decimal("10.00"), scheduled_date=AS_OF, status=status
        )
    ScheduledPayment.objects.create(
        loan=loan,
        amount=Decimal("10.00"),
        scheduled_date=AS_OF,
        status=ScheduledPaymentStatus.CANCELLED,
        cancelled_at=now,
        cancel_reason="earlier",
    )
    for channel in Channel.values:
        ScheduledCommunication.objects.create(
            loan=loan, channel=channel, scheduled_at=now, status=CommunicationStatus.SENT
        )
        ScheduledCommunication.objects.create(
            loan=loan, channel=channel, scheduled_at=now, status=CommunicationStatus.FAILED
        )
        ScheduledCommunication.objects.create(
            loan=loan,
            channel=channel,
            scheduled_at=now,
            status=CommunicationStatus.CANCELLED,
            cancelled_at=now,
        )
        CommunicationSchedule.objects.create(
            loan=loan,
            channel=channel,
            every_days=1,
            start_date=AS_OF,
            occurrences=1,
            status=CommunicationScheduleStatus.COMPLETED,
        )
        CommunicationSchedule.objects.create(
            loan=loan,
            channel=channel,
            every_days=1,
            start_date=AS_OF,
            occurrences=1,
            status=CommunicationScheduleStatus.CANCELLED,
            cancelled_at=now,
        )


SEED_000_COUNTS = {
    "cancelled_scheduled_payments": 3,
    "cancelled_call_schedules": 1,
    "cancelled_email_schedules": 1,
    "cancelled_sms_schedules": 1,
    "cancelled_calls": 5,
    "cancelled_emails": 2,
    "cancelled_sms": 3,
}
