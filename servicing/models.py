"""Scheduled payments and communications of a loan, the communication schedules that generate
them, and the append-only servicing event log (DESIGN §1 and §2, seed 000).

State is data: every status is a ``TextChoices`` and the statuses an item may be cancelled
from are named beside it (``CANCELLABLE``). What must never happen is a database constraint.
Rows change only through ``servicing.services``; nothing here has a ``save()`` override or a
signal.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from loans.models import MONEY, Loan, StopServicingReason


class PaymentMethod(models.TextChoices):
    ACH = "ACH", "ACH"  # an acronym: not Django's default label "Ach"
    CARD = "CARD"
    CHECK = "CHECK"


class ScheduledPaymentStatus(models.TextChoices):
    PENDING = "PENDING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Channel(models.TextChoices):
    CALL = "CALL"
    EMAIL = "EMAIL"
    SMS = "SMS", "SMS"


class CommunicationStatus(models.TextChoices):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class CommunicationScheduleStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class ServicingEventKind(models.TextChoices):
    CANCEL = "CANCEL"
    RESUME = "RESUME"


# The transitions the servicing commands make: only these statuses may become CANCELLED.
# (PROCESSED / SENT / FAILED / COMPLETED are written by the executors, outside this issue.)
CANCELLABLE = {
    "payment": ScheduledPaymentStatus.PENDING,
    "communication": CommunicationStatus.PENDING,
    "schedule": CommunicationScheduleStatus.ACTIVE,
}


class CancellableMixin(models.Model):
    """Who created the row, and who cancelled it, when and why."""

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancel_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        abstract = True


class ScheduledPayment(CancellableMixin):
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="scheduled_payments")
    amount = models.DecimalField(**MONEY)
    scheduled_date = models.DateField()
    method = models.CharField(
        max_length=8, choices=PaymentMethod.choices, default=PaymentMethod.ACH
    )
    status = models.CharField(
        max_length=12,
        choices=ScheduledPaymentStatus.choices,
        default=ScheduledPaymentStatus.PENDING,
    )

    class Meta:
        ordering = ["scheduled_date", "id"]
        indexes = [models.Index(fields=["loan", "status"], name="sched_payment_loan_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="scheduled_payment_amount_positive"
            ),
            models.CheckConstraint(
                condition=~Q(status=ScheduledPaymentStatus.CANCELLED)
                | Q(cancelled_at__isnull=False),
                name="scheduled_payment_cancel_dated",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.amount} on {self.scheduled_date} ({self.status})"


class CommunicationSchedule(CancellableMixin):
    """A cadence (every N days from ``start_date``, until ``end_date`` or for ``occurrences``)
    that generated its upcoming ``ScheduledCommunication`` rows when it was created."""

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="communication_schedules")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    every_days = models.PositiveIntegerField()
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    occurrences = models.PositiveIntegerField(null=True, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(
        max_length=12,
        choices=CommunicationScheduleStatus.choices,
        default=CommunicationScheduleStatus.ACTIVE,
    )

    class Meta:
        ordering = ["start_date", "id"]
        indexes = [
            models.Index(fields=["loan", "status", "channel"], name="comm_sched_loan_status")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(every_days__gte=1), name="comm_schedule_every_days_min_1"
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=False, occurrences__isnull=True)
                | Q(end_date__isnull=True, occurrences__isnull=False),
                name="comm_schedule_end_xor_occurrences",
            ),
            models.CheckConstraint(
                condition=Q(occurrences__isnull=True) | Q(occurrences__gte=1),
                name="comm_schedule_occurrences_min_1",
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="comm_schedule_end_after_start",
            ),
            models.CheckConstraint(
                condition=~Q(status=CommunicationScheduleStatus.CANCELLED)
                | Q(cancelled_at__isnull=False),
                name="comm_schedule_cancel_dated",
            ),
        ]

    def __str__(self) -> str:
        until = f"until {self.end_date}" if self.end_date else f"x{self.occurrences}"
        return f"{self.channel} every {self.every_days} days from {self.start_date} {until}"


class ScheduledCommunication(CancellableMixin):
    loan = models.ForeignKey(
        Loan, on_delete=models.PROTECT, related_name="scheduled_communications"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    scheduled_at = models.DateTimeField()
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True, help_text="message body, or the call script")
    schedule = models.ForeignKey(
        CommunicationSchedule,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="communications",
    )
    status = models.CharField(
        max_length=12, choices=CommunicationStatus.choices, default=CommunicationStatus.PENDING
    )

    class Meta:
        ordering = ["scheduled_at", "id"]
        # (loan, status, channel) serves both the (loan, status) lists and the per-channel
        # cancel UPDATEs; (schedule, status) serves cancelling one schedule's communications.
        indexes = [
            models.Index(fields=["loan", "status", "channel"], name="sched_comm_loan_status"),
            models.Index(fields=["schedule", "status"], name="sched_comm_schedule_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=CommunicationStatus.CANCELLED) | Q(cancelled_at__isnull=False),
                name="scheduled_comm_cancel_dated",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} at {self.scheduled_at:%Y-%m-%d %H:%M} ({self.status})"


class ServicingEvent(models.Model):
    """Append-only: one row per servicing status change, with the seven counts of a cancel."""

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="servicing_events")
    kind = models.CharField(max_length=8, choices=ServicingEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    business_date = models.DateField()
    reason = models.CharField(
        max_length=40, choices=StopServicingReason.choices, blank=True, help_text="stop reason"
    )
    previous_reason = models.CharField(max_length=40, blank=True)
    note = models.CharField(max_length=500, blank=True)
    cancelled_scheduled_payments = models.PositiveIntegerField(default=0)
    cancelled_call_schedules = models.PositiveIntegerField(default=0)
    cancelled_email_schedules = models.PositiveIntegerField(default=0)
    cancelled_sms_schedules = models.PositiveIntegerField(default=0)
    cancelled_calls = models.PositiveIntegerField(default=0)
    cancelled_emails = models.PositiveIntegerField(default=0)
    cancelled_sms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["loan", "at"], name="servicing_event_loan_at")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=ServicingEventKind.RESUME) | ~Q(reason=""),
                name="servicing_event_cancel_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of loan {self.loan_id} at {self.at:%Y-%m-%d %H:%M}"
