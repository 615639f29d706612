"""The loan core: borrowers, loans, setups (terms), schedule versions, transactions, the
business date and the append-only audit trail.

State is data: every status is a ``TextChoices``; what must never happen is a database
constraint. Money is ``DecimalField(max_digits=14, decimal_places=2)``.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

MONEY = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")


class LoanStatus(models.TextChoices):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    CLOSED = "CLOSED"
    OVERPAID = "OVERPAID"  # nothing outstanding and a credit balance (DESIGN §9)


class LoanSubStatus(models.TextChoices):
    CONTRACT_TERMINATION = "CONTRACT_TERMINATION"


class ScheduleEngine(models.TextChoices):
    DYNAMIC = "DYNAMIC"
    STANDARD = "STANDARD"


class ServicingStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    NOT_SERVICING = "NOT_SERVICING"


class StopServicingReason(models.TextChoices):
    """The 21 stop reasons of Finosu's cancel-servicing endpoint (seed 000)."""

    API_REQUEST = "API_REQUEST", "Default reason when cancelled via API"
    PAID_OFF = "PAID_OFF", "Loan has been paid in full"
    BANKRUPTCY = "BANKRUPTCY", "Customer filed for bankruptcy"
    FRAUD_CLAIM = "FRAUD_CLAIM", "Fraud detected on the account"
    MILITARY = "MILITARY", "Customer is protected under SCRA"
    DECEASED = "DECEASED", "Customer is deceased"
    INCARCERATED = "INCARCERATED", "Customer is incarcerated"
    DEBT_MANAGEMENT_COMPANY = "DEBT_MANAGEMENT_COMPANY", "Account transferred to debt management"
    NO_LOGIN_2M = "NO_LOGIN_2M", "No customer login for 2 months"
    NO_PAYMENT_OR_PLAN_3M = "NO_PAYMENT_OR_PLAN_3M", "No payment or plan for 3 months"
    NO_PLAN_PAYMENT_2M = "NO_PLAN_PAYMENT_2M", "No plan payment for 2 months"
    NO_PAYMENT_OR_PLAN_4M = "NO_PAYMENT_OR_PLAN_4M", "No payment or plan for 4 months"
    SOLD_OFF = "SOLD_OFF", "Loan sold to another servicer"
    MISTAKE = "MISTAKE", "Loan was created in error"
    NO_VALID_COMMUNICATION_CHANNEL = (
        "NO_VALID_COMMUNICATION_CHANNEL",
        "No valid way to contact customer",
    )
    DEBT_DISPUTE = "DEBT_DISPUTE", "Customer is disputing the debt"
    COMPLAINT_TRIGGER = "COMPLAINT_TRIGGER", "Triggered by customer complaint"
    HISTORICAL_INELIGIBLE = "HISTORICAL_INELIGIBLE", "Historically ineligible for servicing"
    DUPLICATE = "DUPLICATE", "Duplicate loan record"
    REFUSES_TO_PAY = "REFUSES_TO_PAY", "Customer refuses to pay"
    LMS_CLOSED = "LMS_CLOSED", "Loan closed from external LMS sync"


class DelinquencyBucket(models.TextChoices):
    """Days past due as classified by the last close of business (DESIGN §1, §10)."""

    CURRENT = "CURRENT"
    DPD_1_30 = "DPD_1_30"
    DPD_31_60 = "DPD_31_60"
    DPD_61_90 = "DPD_61_90"
    DPD_91_120 = "DPD_91_120"
    DPD_120_PLUS = "DPD_120_PLUS"


def bucket_for(days_past_due: int) -> str:
    """The delinquency bucket of a number of days past due (pure)."""
    if days_past_due <= 0:
        return DelinquencyBucket.CURRENT
    for upper, bucket in (
        (30, DelinquencyBucket.DPD_1_30),
        (60, DelinquencyBucket.DPD_31_60),
        (90, DelinquencyBucket.DPD_61_90),
        (120, DelinquencyBucket.DPD_91_120),
    ):
        if days_past_due <= upper:
            return bucket
    return DelinquencyBucket.DPD_120_PLUS


class PaymentFrequency(models.TextChoices):
    MONTHLY = "MONTHLY"
    SEMI_MONTHLY = "SEMI_MONTHLY"
    BIWEEKLY = "BIWEEKLY"
    WEEKLY = "WEEKLY"
    QUARTERLY = "QUARTERLY"
    ANNUALLY = "ANNUALLY"


class CalcType(models.TextChoices):
    EQUAL_INSTALLMENTS = "EQUAL_INSTALLMENTS"
    EQUAL_PRINCIPAL = "EQUAL_PRINCIPAL"


class DaysInYear(models.TextChoices):
    FREQUENCY = "FREQUENCY"
    ACTUAL_365 = "ACTUAL_365"
    ACTUAL_360 = "ACTUAL_360"
    ACTUAL_ACTUAL = "ACTUAL_ACTUAL"


class RoundingMode(models.TextChoices):
    HALF_UP = "HALF_UP"
    HALF_EVEN = "HALF_EVEN"


class TerminationInterest(models.TextChoices):
    ALL_OUTSTANDING = "ALL_OUTSTANDING"
    ACCRUED_TO_DATE = "ACCRUED_TO_DATE"


class TransactionType(models.TextChoices):
    DISBURSEMENT = "DISBURSEMENT"
    REPAYMENT = "REPAYMENT"
    CHARGE = "CHARGE"
    ADVANCEMENT = "ADVANCEMENT"
    CREDIT = "CREDIT"
    CONTRACT_TERMINATION = "CONTRACT_TERMINATION"
    PAYOFF = "PAYOFF"
    CREDIT_BALANCE_REFUND = "CREDIT_BALANCE_REFUND"
    CHARGE_OFF = "CHARGE_OFF"  # non-monetary, carries what was outstanding (DESIGN §12)


# Types a user posts and may undo with command=undo (DESIGN §6).
USER_REVERSIBLE_TYPES = (
    TransactionType.REPAYMENT,
    TransactionType.CHARGE,
    TransactionType.ADVANCEMENT,
    TransactionType.CREDIT,
    TransactionType.PAYOFF,
    TransactionType.CREDIT_BALANCE_REFUND,
)
# Types whose amount the borrower paid in: allocated to the loan, or booked as overpayment.
PAYING_TYPES = (TransactionType.REPAYMENT, TransactionType.CREDIT, TransactionType.PAYOFF)


class ScheduleReason(models.TextChoices):
    ACTIVATION = "ACTIVATION"
    CONTRACT_TERMINATION = "CONTRACT_TERMINATION"
    UNDO_CONTRACT_TERMINATION = "UNDO_CONTRACT_TERMINATION"
    MODIFICATION = "MODIFICATION"
    MODIFICATION_CANCELLED = "MODIFICATION_CANCELLED"
    PAYOFF = "PAYOFF"
    CHARGE_OFF = "CHARGE_OFF"
    UNDO_CHARGE_OFF = "UNDO_CHARGE_OFF"


class Borrower(models.Model):
    # Finosu's customer id, the key of the ``/borrowers/external-id/{externalId}`` paths; optional
    # (NULL for none, so the uniqueness holds only among the given ones).
    external_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA time zone")
    do_not_call = models.BooleanField(default=False)
    do_not_email = models.BooleanField(default=False)
    do_not_sms = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        indexes = [models.Index(fields=["email"])]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Loan(models.Model):
    external_id = models.CharField(max_length=100, unique=True)
    display_id = models.CharField(max_length=20, unique=True, null=True, blank=True)
    borrower = models.ForeignKey(Borrower, on_delete=models.PROTECT, related_name="loans")
    status = models.CharField(
        max_length=16, choices=LoanStatus.choices, default=LoanStatus.PENDING, db_index=True
    )
    sub_status = models.CharField(
        max_length=32, choices=LoanSubStatus.choices, null=True, blank=True, db_index=True
    )
    charged_off = models.BooleanField(default=False)
    schedule_engine = models.CharField(
        max_length=16, choices=ScheduleEngine.choices, default=ScheduleEngine.DYNAMIC
    )
    servicing_status = models.CharField(
        max_length=16,
        choices=ServicingStatus.choices,
        default=ServicingStatus.ACTIVE,
        db_index=True,
    )
    stop_servicing_reason = models.CharField(
        max_length=40, choices=StopServicingReason.choices, null=True, blank=True
    )
    servicing_changed_at = models.DateTimeField(null=True, blank=True)
    servicing_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    setup = models.ForeignKey(
        "LoanSetup", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    mod_total = models.PositiveIntegerField(default=0)
    modification_in_progress = models.BooleanField(default=False)
    delinquency_bucket = models.CharField(
        max_length=16,
        choices=DelinquencyBucket.choices,
        default=DelinquencyBucket.CURRENT,
        db_index=True,
        help_text="as classified by the last close of business",
    )
    last_closed_business_date = models.DateField(
        null=True, blank=True, help_text="the last business date the close of business ran for"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("cancel_servicing", "Can cancel loan servicing"),
            ("resume_servicing", "Can resume loan servicing"),
            ("terminate_contract", "Can terminate a contract and undo it"),
            ("modify_loan", "Can modify a loan"),
            ("post_transaction", "Can post and undo transactions, create and activate loans"),
            ("set_business_date", "Can set the business date"),
            ("run_close_of_business", "Can run the close of business and the dispatcher"),
            ("manage_autopay", "Can set up and cancel autopay"),
            ("charge_off", "Can charge off a loan and undo it"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(sub_status__isnull=True) | Q(status=LoanStatus.ACTIVE),
                name="loan_sub_status_only_when_active",
            ),
            models.CheckConstraint(
                condition=Q(servicing_status=ServicingStatus.ACTIVE)
                | Q(stop_servicing_reason__isnull=False),
                name="loan_not_servicing_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.display_id or self.external_id

    @property
    def is_terminated(self) -> bool:
        return self.sub_status == LoanSubStatus.CONTRACT_TERMINATION


class LoanSetup(models.Model):
    """The terms of a loan (LoanPro's LoanSetup). Editable only while ``active`` is False."""

    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="setups")
    loan_amount = models.DecimalField(**MONEY)
    loan_rate = models.DecimalField(max_digits=9, decimal_places=4, help_text="annual %, nominal")
    loan_term = models.DecimalField(max_digits=9, decimal_places=4)
    payment_frequency = models.CharField(
        max_length=16, choices=PaymentFrequency.choices, default=PaymentFrequency.MONTHLY
    )
    contract_date = models.DateField()
    first_payment_date = models.DateField()
    payment = models.DecimalField(**MONEY, null=True, blank=True)
    payment_is_given = models.BooleanField(
        default=False,
        help_text="True when the payment was given (or rolled); False when it is computed",
    )
    calc_type = models.CharField(
        max_length=24, choices=CalcType.choices, default=CalcType.EQUAL_INSTALLMENTS
    )
    days_in_year = models.CharField(
        max_length=16, choices=DaysInYear.choices, default=DaysInYear.FREQUENCY
    )
    rounding_mode = models.CharField(
        max_length=16, choices=RoundingMode.choices, default=RoundingMode.HALF_UP
    )
    termination_interest = models.CharField(
        max_length=20,
        choices=TerminationInterest.choices,
        default=TerminationInterest.ALL_OUTSTANDING,
    )
    interest_recalculation = models.BooleanField(
        default=False,
        help_text="DYNAMIC only: interest accrues daily on the actual outstanding principal "
        "(Fineract's progressive loan, DESIGN §11)",
    )
    late_fee_amount = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        help_text="charged once per installment still unpaid late_fee_grace_days after its due",
    )
    late_fee_grace_days = models.PositiveIntegerField(null=True, blank=True)
    mod_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="the modification that created this setup"
    )
    active = models.BooleanField(default=False, help_text="locked once activated")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(loan_amount__gt=0), name="setup_amount_positive"),
            models.CheckConstraint(condition=Q(loan_rate__gte=0), name="setup_rate_not_negative"),
            models.CheckConstraint(condition=Q(loan_term__gt=0), name="setup_term_positive"),
            models.CheckConstraint(
                condition=Q(payment__isnull=True) | Q(payment__gt=0), name="setup_payment_positive"
            ),
            models.UniqueConstraint(
                fields=["loan"], condition=Q(active=False), name="one_draft_setup_per_loan"
            ),
            models.CheckConstraint(
                condition=Q(late_fee_amount__isnull=True) | Q(late_fee_amount__gt=0),
                name="setup_late_fee_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"Setup {self.pk} of loan {self.loan_id}"

    @property
    def setup_id(self) -> int:
        return self.pk


class Schedule(models.Model):
    """One version of a loan's repayment schedule. Exactly one version is current."""

    loan = models.ForeignKey(Loan, on_delete=models.CASCADE, related_name="schedules")
    version = models.PositiveIntegerField()
    setup = models.ForeignKey(LoanSetup, on_delete=models.PROTECT, related_name="schedules")
    reason = models.CharField(max_length=32, choices=ScheduleReason.choices)
    is_current = models.BooleanField(default=True)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["loan_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["loan", "version"], name="schedule_version_unique"),
            models.UniqueConstraint(
                fields=["loan"], condition=Q(is_current=True), name="one_current_schedule_per_loan"
            ),
        ]

    def __str__(self) -> str:
        return f"Schedule v{self.version} of loan {self.loan_id}"


class SchedulePeriod(models.Model):
    """One installment. ``frozen`` periods are history kept from before a modification date:
    they are shown but no longer count towards balances, allocation or past-due figures."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="periods")
    period = models.PositiveIntegerField()
    from_date = models.DateField()
    due_date = models.DateField()
    principal_due = models.DecimalField(**MONEY)
    interest_due = models.DecimalField(**MONEY)
    fees_due = models.DecimalField(**MONEY, default=ZERO)
    principal_paid = models.DecimalField(**MONEY, default=ZERO)
    interest_paid = models.DecimalField(**MONEY, default=ZERO)
    fees_paid = models.DecimalField(**MONEY, default=ZERO)
    balance_after = models.DecimalField(**MONEY)
    complete = models.BooleanField(default=False)
    obligations_met_on_date = models.DateField(null=True, blank=True)
    frozen = models.BooleanField(default=False)
    # Principal advanced inside the period (DYNAMIC: it earns interest from its date), and the
    # part of the period's principal that earns nothing over the whole period (the amount x
    # days before its date / days in the period): what the payoff prorates by (loans.ledger).
    advanced_within = models.DecimalField(**MONEY, default=ZERO)
    unearned_principal = models.DecimalField(**MONEY, default=ZERO)

    class Meta:
        ordering = ["schedule_id", "period"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "period"], name="period_number_unique"),
            models.CheckConstraint(
                condition=Q(principal_due__gte=0)
                & Q(interest_due__gte=0)
                & Q(fees_due__gte=0)
                & Q(principal_paid__gte=0)
                & Q(interest_paid__gte=0)
                & Q(fees_paid__gte=0),
                name="period_amounts_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["schedule", "due_date"])]

    def __str__(self) -> str:
        return f"Installment {self.period} due {self.due_date}"

    @property
    def principal_outstanding(self) -> Decimal:
        return self.principal_due - self.principal_paid

    @property
    def interest_outstanding(self) -> Decimal:
        return self.interest_due - self.interest_paid

    @property
    def fees_outstanding(self) -> Decimal:
        return self.fees_due - self.fees_paid

    @property
    def total_due(self) -> Decimal:
        return self.principal_due + self.interest_due + self.fees_due

    @property
    def total_paid(self) -> Decimal:
        return self.principal_paid + self.interest_paid + self.fees_paid

    @property
    def total_outstanding(self) -> Decimal:
        return self.total_due - self.total_paid


class Transaction(models.Model):
    """Append-only: a correction is a reversal (``reversed``), never an edit or a delete.

    The allocation portions are derived when transactions are replayed (Fineract-style
    reprocessing after a back-dated change); amount, date and type never change.
    """

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="transactions")
    type = models.CharField(max_length=24, choices=TransactionType.choices)
    external_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    date = models.DateField()
    amount = models.DecimalField(**MONEY)
    principal_portion = models.DecimalField(**MONEY, default=ZERO)
    interest_portion = models.DecimalField(**MONEY, default=ZERO)
    fees_portion = models.DecimalField(**MONEY, default=ZERO)
    overpayment_portion = models.DecimalField(
        **MONEY, default=ZERO, help_text="paid beyond everything outstanding: a credit balance"
    )
    note = models.CharField(max_length=500, blank=True)
    reversed = models.BooleanField(default=False)
    reversed_on = models.DateField(null=True, blank=True)
    reversal_external_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    reversal_note = models.CharField(max_length=500, blank=True)
    reversed_at = models.DateTimeField(null=True, blank=True)
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reversed_by_modification_id = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="transaction_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(reversed=False) | Q(reversed_on__isnull=False),
                name="transaction_reversal_dated",
            ),
            models.CheckConstraint(
                condition=Q(principal_portion__gte=0)
                & Q(interest_portion__gte=0)
                & Q(fees_portion__gte=0)
                & Q(overpayment_portion__gte=0),
                name="transaction_portions_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["loan", "date", "id"])]

    def __str__(self) -> str:
        return f"{self.type} {self.amount} on {self.date}"


class EngineState(models.Model):
    """A stored state of the daily-accrual engine (``loans.progressive.Checkpoint``, DESIGN
    §11) for a recalculating setup's replay, or of the ledger replay (``ledger.ReplayState``,
    its bytes tagged ``ledger.STATE_TAG``) for any other setup: where the next command's
    replay starts instead of the loan's start. ``events``, ``key_sum`` and ``squares`` (count, sum and squares of the ids
    of the transactions it reflects) let the rebuild check it still matches the history; written only by
    ``versions.rebuild_schedule`` and (an appended transaction opening a period)
    ``versions.store_appended_state``, in the command's transaction."""

    setup = models.ForeignKey(LoanSetup, on_delete=models.CASCADE, related_name="engine_states")
    on = models.DateField()
    key = models.BigIntegerField(null=True, blank=True)  # last transaction dated ``on`` in it
    events = models.PositiveIntegerField()
    key_sum = models.BigIntegerField()
    squares = models.BigIntegerField()  # of the ids modulo 65521: a second check
    state = models.BinaryField()
    lasting = models.BooleanField(default=False)  # else replaced as the history grows

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["setup", "on"], name="engine_state_date_unique")
        ]

    def __str__(self) -> str:
        return f"Engine state of setup {self.setup_id} on {self.on}"


class BusinessDate(models.Model):
    """Fineract's business date: the one date commands are dated on. A single row (pk=1)."""

    date = models.DateField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="business_date_singleton")]

    def __str__(self) -> str:
        return self.date.isoformat()


class LoanEvent(models.Model):
    """The audit trail: one append-only row per command. Never edited or deleted."""

    loan = models.ForeignKey(
        Loan, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    command = models.CharField(max_length=64, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    business_date = models.DateField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    input = models.JSONField(default=dict, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text='{"field": [before, after]}')
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.command} on loan {self.loan_id} at {self.created_at:%Y-%m-%d %H:%M}"


class IdempotencyRecordState(models.TextChoices):
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"


class IdempotencyRecord(models.Model):
    """A stored response for an ``Idempotency-Key`` (per user and path): the exact bytes sent
    the first time (any content, NUL and escapes included), replayed as they were."""

    key = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(
        max_length=16,
        choices=IdempotencyRecordState.choices,
        default=IdempotencyRecordState.IN_PROGRESS,
    )
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_content = models.BinaryField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    # An IN_PROGRESS claim committed on its own (a view outside the request's transaction) is
    # held until then; past it the holder is dead and a retry may claim the key again.
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
