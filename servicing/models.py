"""Scheduled payments and communications of a loan, the communication schedules that generate
them, and the append-only servicing event log (DESIGN §1 and §2, seed 000).

State is data: every status is a ``TextChoices`` and the statuses an item may be cancelled
from are named beside it (``CANCELLABLE``). What must never happen is a database constraint.
Rows change only through ``servicing.services``; nothing here has a ``save()`` override or a
signal.

Why this module is long: it holds every table of the servicing app (scheduled items, events,
the clock's jobs, snapshots and dispatch attempts, autopay, the outbox, API tokens), one model
a concept, each small; Django finds an app's models here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from loans.models import MONEY, DelinquencyBucket, Loan, StopServicingReason


class PaymentMethod(models.TextChoices):
    ACH = "ACH", "ACH"  # an acronym: not Django's default label "Ach"
    CARD = "CARD"
    CHECK = "CHECK"


class ScheduledPaymentStatus(models.TextChoices):
    PENDING = "PENDING"
    IN_FLIGHT = "IN_FLIGHT"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Channel(models.TextChoices):
    CALL = "CALL"
    EMAIL = "EMAIL"
    SMS = "SMS", "SMS"


class CommunicationStatus(models.TextChoices):
    PENDING = "PENDING"
    IN_FLIGHT = "IN_FLIGHT"
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
# (IN_FLIGHT / PROCESSED / SENT / FAILED / COMPLETED are written by the dispatcher.)
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
    autopay = models.ForeignKey(
        "Autopay", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    due_date = models.DateField(
        null=True, blank=True, help_text="the installment due date an autopay payment pays"
    )
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="deferred or retried: not executed before this instant"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    in_flight_since = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    transaction = models.ForeignKey(
        "loans.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    return_code = models.CharField(max_length=16, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["scheduled_date", "id"]
        indexes = [
            models.Index(fields=["loan", "status"], name="sched_payment_loan_status"),
            models.Index(fields=["status", "scheduled_date"], name="sched_payment_due"),
        ]
        constraints = [
            # Never two autopay payments for one due date (a cancelled one does not count).
            models.UniqueConstraint(
                fields=["autopay", "due_date"],
                condition=Q(autopay__isnull=False) & ~Q(status=ScheduledPaymentStatus.CANCELLED),
                name="one_autopay_payment_per_due_date",
            ),
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
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="deferred or retried: not executed before this instant"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    in_flight_since = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_reference = models.CharField(max_length=100, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["scheduled_at", "id"]
        # (loan, status, channel) serves both the (loan, status) lists and the per-channel
        # cancel UPDATEs; (schedule, status) serves cancelling one schedule's communications.
        indexes = [
            models.Index(fields=["loan", "status", "channel"], name="sched_comm_loan_status"),
            models.Index(fields=["schedule", "status"], name="sched_comm_schedule_status"),
            models.Index(fields=["status", "scheduled_at"], name="sched_comm_due"),
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


# --------------------------------------------------------------------------------------------
# The servicing clock (DESIGN §10, §11): jobs, snapshots, delinquency, autopay, dispatch
# --------------------------------------------------------------------------------------------


class JobKind(models.TextChoices):
    CLOSE_OF_BUSINESS = "CLOSE_OF_BUSINESS"


class JobStatus(models.TextChoices):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


# QUEUED -> RUNNING -> DONE | FAILED (FAILED also straight from QUEUED: the broker refused it).
JOB_TRANSITIONS = {
    JobStatus.QUEUED: {JobStatus.RUNNING, JobStatus.FAILED},
    JobStatus.RUNNING: {JobStatus.DONE, JobStatus.FAILED},
    JobStatus.DONE: set(),
    JobStatus.FAILED: set(),
}


class Job(models.Model):
    """One close-of-business run. Progress is data: ``done`` and ``failed`` grow with ``F()``
    updates from every worker; the run ends when ``done + failed == total``. A run ends
    ``FAILED`` when at least one loan failed (each failure is a ``JobFailure`` row, retried by
    the next run) or the broker refused it."""

    kind = models.CharField(max_length=32, choices=JobKind.choices)
    business_date = models.DateField()
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    advance_business_date = models.BooleanField(
        default=False, help_text="the nightly run moves the business date on when it ends"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["kind", "business_date"], name="job_kind_date")]
        constraints = [
            models.CheckConstraint(
                condition=Q(done__lte=models.F("total") - models.F("failed")),
                name="job_progress_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.business_date} ({self.status})"

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status in (JobStatus.DONE, JobStatus.FAILED) else 0
        return int(100 * (self.done + self.failed) / self.total)


class JobFailure(models.Model):
    """A loan whose close of business failed in a job, with the error; the next run (or the
    retry action) closes it again."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="failures")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="+")
    business_date = models.DateField(help_text="the day that failed")
    error = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    retried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job_id", "loan_id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "loan"], name="one_failure_per_job_and_loan")
        ]

    def __str__(self) -> str:
        return f"Loan {self.loan_id} failed on {self.business_date}"


class LoanDailySnapshot(models.Model):
    """What a loan looked like at the close of one business day (step 4 of §10)."""

    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="daily_snapshots")
    business_date = models.DateField()
    status = models.CharField(max_length=16)
    sub_status = models.CharField(max_length=32, null=True, blank=True)
    servicing_status = models.CharField(max_length=16)
    delinquency_bucket = models.CharField(max_length=16, choices=DelinquencyBucket.choices)
    days_past_due = models.PositiveIntegerField(default=0)
    amount_past_due = models.DecimalField(**MONEY)
    principal_outstanding = models.DecimalField(**MONEY)
    interest_outstanding = models.DecimalField(**MONEY)
    fees_outstanding = models.DecimalField(**MONEY)
    payoff_total = models.DecimalField(**MONEY)
    job = models.ForeignKey(
        "Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["loan_id", "business_date"]
        indexes = [models.Index(fields=["business_date"], name="snapshot_business_date")]
        constraints = [
            models.UniqueConstraint(
                fields=["loan", "business_date"], name="one_snapshot_per_loan_and_day"
            )
        ]

    def __str__(self) -> str:
        return f"Loan {self.loan_id} on {self.business_date}"


class DelinquencyChange(models.Model):
    """A loan moved from one delinquency bucket to another at a close of business."""

    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="delinquency_changes")
    business_date = models.DateField()
    from_bucket = models.CharField(max_length=16, choices=DelinquencyBucket.choices)
    to_bucket = models.CharField(max_length=16, choices=DelinquencyBucket.choices)
    days_past_due = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["loan_id", "business_date", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["loan", "business_date"], name="one_bucket_change_per_loan_and_day"
            ),
            models.CheckConstraint(
                condition=~Q(from_bucket=models.F("to_bucket")), name="bucket_change_changes"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"Loan {self.loan_id}: {self.from_bucket} -> {self.to_bucket} on {self.business_date}"
        )


class AutopayAmountType(models.TextChoices):
    SCHEDULED_PAYMENT = "SCHEDULED_PAYMENT"
    FIXED = "FIXED"


class AutopayStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"


class Autopay(CancellableMixin):
    """LoanPro's autopay: the close of business turns it into one scheduled payment per due
    date inside ``AUTOPAY_HORIZON_DAYS``, for due dates on or after ``start_date`` (the business
    date it was set up on)."""

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="autopays")
    method = models.CharField(max_length=8, choices=PaymentMethod.choices, default="ACH")
    amount_type = models.CharField(
        max_length=20,
        choices=AutopayAmountType.choices,
        default=AutopayAmountType.SCHEDULED_PAYMENT,
    )
    amount = models.DecimalField(**MONEY, null=True, blank=True)
    process_days_before = models.PositiveIntegerField(default=0)
    start_date = models.DateField(help_text="the business date it was set up on")
    status = models.CharField(
        max_length=12, choices=AutopayStatus.choices, default=AutopayStatus.ACTIVE
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["loan", "status"], name="autopay_loan_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_type=AutopayAmountType.SCHEDULED_PAYMENT, amount__isnull=True)
                | Q(amount_type=AutopayAmountType.FIXED, amount__gt=0),
                name="autopay_fixed_has_amount",
            ),
            models.CheckConstraint(
                condition=~Q(status=AutopayStatus.CANCELLED) | Q(cancelled_at__isnull=False),
                name="autopay_cancel_dated",
            ),
            models.UniqueConstraint(
                fields=["loan"],
                condition=Q(status=AutopayStatus.ACTIVE),
                name="one_active_autopay_per_loan",
            ),
        ]

    def __str__(self) -> str:
        what = self.amount if self.amount_type == AutopayAmountType.FIXED else "installment"
        return f"Autopay {self.method} {what} ({self.status})"


class ItemKind(models.TextChoices):
    PAYMENT = "PAYMENT"
    COMMUNICATION = "COMMUNICATION"


class AttemptStatus(models.TextChoices):
    IN_FLIGHT = "IN_FLIGHT"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class DispatchAttempt(models.Model):
    """One numbered execution attempt of a scheduled payment or communication. Its id is the
    provider's idempotency key (``idempotency_key``), so a delivery retried with the same
    attempt never executes twice."""

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="dispatch_attempts")
    kind = models.CharField(max_length=16, choices=ItemKind.choices)
    scheduled_payment = models.ForeignKey(
        ScheduledPayment, null=True, blank=True, on_delete=models.PROTECT, related_name="attempts"
    )
    scheduled_communication = models.ForeignKey(
        ScheduledCommunication,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="attempts",
    )
    channel = models.CharField(max_length=8, blank=True, help_text="CALL, EMAIL, SMS or ACH...")
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=12, choices=AttemptStatus.choices, default=AttemptStatus.IN_FLIGHT
    )
    amount = models.DecimalField(**MONEY, null=True, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    provider_reference = models.CharField(max_length=100, blank=True)
    return_code = models.CharField(max_length=16, blank=True)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["loan", "channel", "started_at"], name="attempt_loan_channel"),
            models.Index(fields=["status", "started_at"], name="attempt_status_started"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind=ItemKind.PAYMENT,
                    scheduled_payment__isnull=False,
                    scheduled_communication__isnull=True,
                )
                | Q(
                    kind=ItemKind.COMMUNICATION,
                    scheduled_payment__isnull=True,
                    scheduled_communication__isnull=False,
                ),
                name="attempt_of_one_item",
            ),
            models.UniqueConstraint(
                fields=["scheduled_payment", "number"],
                condition=Q(scheduled_payment__isnull=False),
                name="one_attempt_number_per_payment",
            ),
            models.UniqueConstraint(
                fields=["scheduled_communication", "number"],
                condition=Q(scheduled_communication__isnull=False),
                name="one_attempt_number_per_communication",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="attempt_number_from_1"),
        ]

    def __str__(self) -> str:
        return f"Attempt {self.number} of {self.kind.lower()} ({self.status})"

    @property
    def idempotency_key(self) -> str:
        return f"attempt-{self.pk}"


class OutboxChannel(models.TextChoices):
    ACH = "ACH"
    EMAIL = "EMAIL"
    SMS = "SMS"
    CALL = "CALL"


class OutboxMessage(models.Model):
    """What the built-in providers sent: one row per idempotency key (a repeat of the same key
    returns this row's outcome and sends nothing). The SMS and call providers are outboxes:
    this table is all they do; the simulated ACH provider and the e-mail provider record here
    what they did."""

    channel = models.CharField(max_length=8, choices=OutboxChannel.choices)
    idempotency_key = models.CharField(max_length=100, unique=True)
    loan = models.ForeignKey(
        Loan, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox_messages"
    )
    recipient = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    amount = models.DecimalField(**MONEY, null=True, blank=True)
    succeeded = models.BooleanField(default=True)
    reference = models.CharField(max_length=100, blank=True)
    return_code = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["channel", "created_at"], name="outbox_channel_created")]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient or '-'} [{self.idempotency_key}]"


class ApiToken(models.Model):
    """An API token (``Authorization: Token <key>``, DESIGN §6; issue 16). The key itself is
    never stored: ``digest`` is its SHA-256, by which a request's key is looked up, and
    ``prefix`` its first characters, enough to tell tokens apart in the admin. A token dies at
    ``expires_at`` (``settings.API_TOKEN_TTL`` after it was issued) and when its user's
    password changes: ``credential`` is the user's session hash at issue time (an HMAC of the
    password hash, as Django's sessions use), compared on every request."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    credential = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user}, expires {self.expires_at:%Y-%m-%d %H:%M})"
