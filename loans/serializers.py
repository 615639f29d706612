"""Input and output serializers of the loan core API. camelCase on the wire; money as strings
with two decimals, rates with four; dates ``YYYY-MM-DD``. No business logic here.

Why this module is long: one input or output serializer per resource of the API contract
(DESIGN §6), the hand-built ones written out for speed; no logic beyond shaping JSON.
"""

from __future__ import annotations

import re
from datetime import UTC
from decimal import Decimal

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from loans.models import (
    Borrower,
    CalcType,
    DaysInYear,
    DelinquencyBucket,
    Loan,
    LoanEvent,
    LoanSetup,
    LoanStatus,
    LoanSubStatus,
    PaymentFrequency,
    RoundingMode,
    Schedule,
    ScheduleEngine,
    SchedulePeriod,
    ServicingStatus,
    TerminationInterest,
    Transaction,
    bucket_for,
)
from loans.terms import MAX_GRACE_DAYS, PathKeyValidator

MAX_MONEY = Decimal("999999999999.99")
MAX_ID = 2**63 - 1  # what a database key holds; a bigger id is a 400, not a 500


def decimal_pattern(*, whole_digits: int, places: int, positive: bool, signed: bool) -> str:
    """The regular expression a decimal string must match, published in the schema and applied
    by ``StrictDecimalField`` (issue 16: the two agree, so "0" where the minimum is 0.01 is
    outside the pattern, not just refused). No leading zeros, no spaces, no exponent."""
    fraction = rf"(?:\.\d{{1,{places}}})?" if places else ""
    whole = rf"[1-9]\d{{0,{whole_digits - 1}}}"
    if not positive:
        sign = "-?" if signed else ""
        return rf"^{sign}(?:0|{whole}){fraction}$"
    if not places:
        return rf"^{whole}$"
    # 0.x with at least one non-zero digit among at most ``places`` decimals
    small = "|".join(rf"\d{{{i}}}[1-9]\d{{0,{places - 1 - i}}}" for i in range(places))
    return rf"^(?:{whole}{fraction}|0\.(?:{small}))$"


class StrictDecimalField(serializers.DecimalField):
    """A decimal string that matches the schema's pattern (``decimal_pattern``) exactly, or a
    JSON number (Fineract and LoanPro accept numbers, and clients send them) with at most the
    field's decimal places as written (``12.34``; ``12.345`` is a 400 "no more than 2 decimal
    places"), inside the same bounds. The schema says both (``loans.api_schema``:
    ``anyOf`` string with the pattern | number with minimum, maximum and multipleOf). Refuses
    a blank string: DRF turns ``""`` into ``None`` on a nullable field; a blank amount is a
    mistake, not "no amount" (send ``null`` for that), and true/false, lists and objects."""

    accepts_json_number = True

    @property
    def schema_pattern(self) -> str:
        return decimal_pattern(
            whole_digits=self.max_whole_digits,
            places=self.decimal_places or 0,
            positive=self.min_value is not None and self.min_value > 0,
            signed=self.min_value is None or self.min_value < 0,
        )

    def validate_empty_values(self, data):
        if isinstance(data, str) and not data.strip():
            self.fail("invalid")
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            self.fail("invalid")
        # A float is read as its JSON text (repr: the shortest form that round-trips), so
        # 0.1 is 0.1, and DRF's own checks (places, digits, min_value, ...) apply to it.
        value = super().to_internal_value(data)
        if isinstance(data, str) and not re.fullmatch(self.schema_pattern, data):
            # Out of bounds says so, as for a JSON number ("-5.00" was "A valid number is
            # required."); anything else the pattern refuses (1e3, 007, " 5") is invalid.
            if self.min_value is not None and value < self.min_value:
                self.fail("min_value", min_value=self.min_value)
            if self.max_value is not None and value > self.max_value:
                self.fail("max_value", max_value=self.max_value)
            self.fail("invalid")
        return value


class StrictCharField(serializers.CharField):
    """Text that must be a JSON string, as the schema says (DRF's CharField turns a number
    into text: ``"phone": 5550199`` was accepted)."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false, as the schema says (DRF's BooleanField also takes 0, 1, "yes")."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, as the schema says (DRF's IntegerField also takes "5" and 5.0)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def Money(**kwargs):  # noqa: N802 - a field factory reads like a field class
    return StrictDecimalField(max_digits=14, decimal_places=2, **kwargs)


def PositiveMoney(**kwargs):  # noqa: N802
    return Money(min_value=Decimal("0.01"), max_value=MAX_MONEY, **kwargs)


class TermField(StrictDecimalField):
    """A term: whole numbers print without decimals ("36"), fractional ones with up to four."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=9, decimal_places=4, **kwargs)

    def to_representation(self, value):
        if value is None:
            return None
        value = Decimal(value)
        if value == value.to_integral_value():
            return str(value.quantize(Decimal(1)))
        return str(value.quantize(Decimal("0.0001")).normalize())


def money_str(value) -> str | None:
    """A stored two-decimal amount as its string, without DRF's per-field machinery."""
    return None if value is None else f"{value:.2f}"


def date_str(value) -> str | None:
    return None if value is None else value.isoformat()


def datetime_str(value) -> str | None:
    """DRF's ISO 8601 output for an aware datetime, in UTC with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- input


class BorrowerInputSerializer(serializers.Serializer):
    externalId = StrictCharField(
        max_length=100,
        source="external_id",
        required=False,
        allow_null=True,
        allow_blank=True,
        validators=[PathKeyValidator()],
        help_text="the borrower's unique id in the client's system (Finosu's customer id); "
        "a path segment of /borrowers/external-id/: no '/', '\\', control character, '.' or '..'",
    )
    firstName = StrictCharField(max_length=100, source="first_name")
    lastName = StrictCharField(max_length=100, source="last_name")
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    phone = StrictCharField(max_length=32, required=False, allow_blank=True)
    timezone = StrictCharField(max_length=64, required=False, default="UTC")
    doNotCall = StrictBooleanField(source="do_not_call", required=False)
    doNotEmail = StrictBooleanField(source="do_not_email", required=False)
    doNotSms = StrictBooleanField(source="do_not_sms", required=False)


class SetupInputSerializer(serializers.Serializer):
    """Setup terms; every field optional here (the service checks the complete set)."""

    loanAmount = PositiveMoney(source="loan_amount", required=False)
    loanRate = StrictDecimalField(
        max_digits=9,
        decimal_places=4,
        min_value=Decimal("0"),
        max_value=Decimal("1000"),
        source="loan_rate",
        required=False,
    )
    loanTerm = TermField(
        source="loan_term", required=False, min_value=Decimal("0.0001"), max_value=Decimal("1200")
    )
    paymentFrequency = serializers.ChoiceField(
        PaymentFrequency.choices, source="payment_frequency", required=False
    )
    contractDate = serializers.DateField(source="contract_date", required=False)
    firstPaymentDate = serializers.DateField(source="first_payment_date", required=False)
    payment = PositiveMoney(required=False, allow_null=True)
    calcType = serializers.ChoiceField(CalcType.choices, source="calc_type", required=False)
    daysInYear = serializers.ChoiceField(DaysInYear.choices, source="days_in_year", required=False)
    roundingMode = serializers.ChoiceField(
        RoundingMode.choices, source="rounding_mode", required=False
    )
    terminationInterest = serializers.ChoiceField(
        TerminationInterest.choices, source="termination_interest", required=False
    )
    interestRecalculation = StrictBooleanField(
        source="interest_recalculation",
        required=False,
        help_text="DYNAMIC only: interest accrues daily on the actual outstanding principal "
        "(Fineract's progressive loan); false keeps interest per period as scheduled.",
    )
    lateFeeAmount = PositiveMoney(
        source="late_fee_amount",
        required=False,
        allow_null=True,
        help_text="The late fee: a charge (type CHARGE) of this amount for each installment unpaid "
        "lateFeeGraceDays after its due date, once per installment (close of business). "
        "Set together with lateFeeGraceDays; both null: no late fee.",
    )
    lateFeeGraceDays = StrictIntegerField(
        source="late_fee_grace_days",
        required=False,
        allow_null=True,
        min_value=0,
        max_value=MAX_GRACE_DAYS,
        help_text="Days after a due date before the late fee is charged (0: at the close of "
        "the due date). Set together with lateFeeAmount.",
    )


class LoanCreateSerializer(serializers.Serializer):
    externalId = StrictCharField(
        max_length=100,
        required=False,
        allow_blank=False,
        source="external_id",
        validators=[PathKeyValidator()],
        help_text="a path segment of /loans/external-id/: no '/', '\\', control character, "
        "'.' or '..'",
    )
    borrower = BorrowerInputSerializer(required=False)
    borrowerId = StrictIntegerField(
        required=False, min_value=1, max_value=MAX_ID, source="borrower_id"
    )
    scheduleEngine = serializers.ChoiceField(
        ScheduleEngine.choices, default=ScheduleEngine.DYNAMIC, source="schedule_engine"
    )
    setup = SetupInputSerializer()

    def validate(self, attrs):
        if not attrs.get("borrower") and not attrs.get("borrower_id"):
            raise serializers.ValidationError(
                {"borrower": ["A borrower or a borrowerId is required."]}
            )
        return attrs


class BusinessDateSerializer(serializers.Serializer):
    date = serializers.DateField()


class TokenRequestSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=128, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = StrictCharField()


class RepaymentInputSerializer(serializers.Serializer):
    """A money command's body. The amount is ``transactionAmount`` (repayment, payoff,
    creditBalanceRefund) or ``amount`` (charge, advancement, credit), as DESIGN §6 names them;
    either name is accepted. A missing amount is reported under the command's own name (the
    context's ``amount_field``) with code ``required``, together with the other fields' errors
    (it was ``transactionAmount`` for a charge, code ``invalid``, and left out when the date
    was missing too)."""

    transactionDate = serializers.DateField()
    transactionAmount = PositiveMoney(required=False)
    amount = PositiveMoney(required=False)
    externalId = StrictCharField(max_length=100, required=False, allow_null=True)
    note = StrictCharField(max_length=500, required=False, allow_blank=True)

    def _amount_required(self) -> dict:
        field = self.context.get("amount_field", "transactionAmount")
        return {field: [ErrorDetail("This field is required.", code="required")]}

    def to_internal_value(self, data):
        try:
            attrs = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            given = {"transactionAmount", "amount"} & set(data) if isinstance(data, dict) else {1}
            if isinstance(exc.detail, dict) and not given:
                exc.detail.update(self._amount_required())
            raise
        if attrs.get("transactionAmount") is None and attrs.get("amount") is None:
            raise serializers.ValidationError(self._amount_required())
        return attrs

    @property
    def amount_value(self):
        data = self.validated_data
        value = data.get("transactionAmount")
        return value if value is not None else data.get("amount")


class _PresentInQuery:
    """A query parameter given empty (``?date=``) is invalid, not absent (DRF reads an empty
    form value of an optional field as absent; the schema says a date: schemathesis)."""

    def get_value(self, dictionary):
        return dictionary.get(self.field_name, serializers.empty)


class QueryDateField(_PresentInQuery, serializers.DateField):
    pass


class QueryIntegerField(_PresentInQuery, serializers.IntegerField):
    pass


class PayoffQuerySerializer(serializers.Serializer):
    date = QueryDateField(required=False)
    days = QueryIntegerField(required=False, min_value=0, max_value=366)


class UndoInputSerializer(serializers.Serializer):
    note = StrictCharField(max_length=500, required=False, allow_blank=True)
    reversalExternalId = StrictCharField(max_length=100, required=False, allow_null=True)


class ContractTerminationInputSerializer(serializers.Serializer):
    """Seed 002's body. ``locale`` and ``dateFormat`` are accepted for Fineract clients; the
    termination is always dated on the business date, so any date in the payload is ignored."""

    note = StrictCharField(max_length=500, required=False, allow_blank=True)
    externalId = StrictCharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    locale = StrictCharField(max_length=35, required=False, allow_blank=True)
    dateFormat = StrictCharField(max_length=50, required=False, allow_blank=True)


class ChargeOffInputSerializer(serializers.Serializer):
    """The body of command=chargeOff (DESIGN §12): dated on the business date, like Fineract's
    charge-off with its ``chargeOffReasonId`` as free text."""

    note = StrictCharField(max_length=500, required=False, allow_blank=True)
    externalId = StrictCharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    reason = StrictCharField(max_length=100, required=False, allow_blank=True)


# ---------------------------------------------------------------- output


class BorrowerSerializer(serializers.ModelSerializer):
    externalId = StrictCharField(source="external_id", allow_null=True)
    firstName = StrictCharField(source="first_name")
    lastName = StrictCharField(source="last_name")
    doNotCall = serializers.BooleanField(source="do_not_call")
    doNotEmail = serializers.BooleanField(source="do_not_email")
    doNotSms = serializers.BooleanField(source="do_not_sms")

    class Meta:
        model = Borrower
        fields = [
            "id",
            "externalId",
            "firstName",
            "lastName",
            "email",
            "phone",
            "timezone",
            "doNotCall",
            "doNotEmail",
            "doNotSms",
        ]


class SetupSerializer(serializers.ModelSerializer):
    setupId = serializers.IntegerField(source="pk")
    loanId = serializers.IntegerField(source="loan_id")
    loanAmount = Money(source="loan_amount")
    loanRate = serializers.DecimalField(max_digits=9, decimal_places=4, source="loan_rate")
    loanTerm = TermField(source="loan_term")
    paymentFrequency = StrictCharField(source="payment_frequency")
    contractDate = serializers.DateField(source="contract_date")
    firstPaymentDate = serializers.DateField(source="first_payment_date")
    payment = Money(allow_null=True)
    paymentIsGiven = serializers.BooleanField(source="payment_is_given")
    calcType = serializers.CharField(source="calc_type")
    daysInYear = serializers.CharField(source="days_in_year")
    roundingMode = serializers.CharField(source="rounding_mode")
    terminationInterest = serializers.CharField(source="termination_interest")
    interestRecalculation = serializers.BooleanField(source="interest_recalculation")
    lateFeeAmount = Money(source="late_fee_amount", allow_null=True)
    lateFeeGraceDays = serializers.IntegerField(source="late_fee_grace_days", allow_null=True)
    modId = serializers.IntegerField(source="mod_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    activatedAt = serializers.DateTimeField(source="activated_at", allow_null=True)

    class Meta:
        model = LoanSetup
        fields = [
            "setupId",
            "loanId",
            "loanAmount",
            "loanRate",
            "loanTerm",
            "paymentFrequency",
            "contractDate",
            "firstPaymentDate",
            "payment",
            "paymentIsGiven",
            "calcType",
            "daysInYear",
            "roundingMode",
            "terminationInterest",
            "interestRecalculation",
            "lateFeeAmount",
            "lateFeeGraceDays",
            "modId",
            "active",
            "createdAt",
            "activatedAt",
        ]


class PeriodSerializer(serializers.ModelSerializer):
    fromDate = serializers.DateField(source="from_date")
    dueDate = serializers.DateField(source="due_date")
    principalDue = Money(source="principal_due")
    principalPaid = Money(source="principal_paid")
    principalOutstanding = Money(source="principal_outstanding")
    interestDue = Money(source="interest_due")
    interestPaid = Money(source="interest_paid")
    interestOutstanding = Money(source="interest_outstanding")
    feesDue = Money(source="fees_due")
    feesPaid = Money(source="fees_paid")
    feesOutstanding = Money(source="fees_outstanding")
    totalDue = Money(source="total_due")
    totalPaid = Money(source="total_paid")
    totalOutstanding = Money(source="total_outstanding")
    obligationsMetOnDate = serializers.DateField(source="obligations_met_on_date", allow_null=True)
    balanceAfter = Money(source="balance_after")
    historical = serializers.BooleanField(
        source="frozen", help_text="kept from before a modification; no longer counts"
    )

    class Meta:
        model = SchedulePeriod
        fields = [
            "period",
            "fromDate",
            "dueDate",
            "principalDue",
            "principalPaid",
            "principalOutstanding",
            "interestDue",
            "interestPaid",
            "interestOutstanding",
            "feesDue",
            "feesPaid",
            "feesOutstanding",
            "totalDue",
            "totalPaid",
            "totalOutstanding",
            "complete",
            "obligationsMetOnDate",
            "balanceAfter",
            "historical",
        ]

    def to_representation(self, p):
        # Hand-built: a schedule has hundreds of rows and this is the API's hottest path. The
        # declared fields above still describe the output in the OpenAPI schema.
        pp, ip, fp = p.principal_paid, p.interest_paid, p.fees_paid
        total_due = p.principal_due + p.interest_due + p.fees_due
        total_paid = pp + ip + fp
        return {
            "period": p.period,
            "fromDate": p.from_date.isoformat(),
            "dueDate": p.due_date.isoformat(),
            "principalDue": money_str(p.principal_due),
            "principalPaid": money_str(pp),
            "principalOutstanding": money_str(p.principal_due - pp),
            "interestDue": money_str(p.interest_due),
            "interestPaid": money_str(ip),
            "interestOutstanding": money_str(p.interest_due - ip),
            "feesDue": money_str(p.fees_due),
            "feesPaid": money_str(fp),
            "feesOutstanding": money_str(p.fees_due - fp),
            "totalDue": money_str(total_due),
            "totalPaid": money_str(total_paid),
            "totalOutstanding": money_str(total_due - total_paid),
            "complete": p.complete,
            "obligationsMetOnDate": date_str(p.obligations_met_on_date),
            "balanceAfter": money_str(p.balance_after),
            "historical": p.frozen,
        }


class ScheduleSerializer(serializers.ModelSerializer):
    setupId = serializers.IntegerField(source="setup_id")
    isCurrent = serializers.BooleanField(source="is_current")
    createdAt = serializers.DateTimeField(source="created_at")
    periods = PeriodSerializer(many=True)

    class Meta:
        model = Schedule
        fields = ["version", "reason", "isCurrent", "setupId", "note", "createdAt", "periods"]

    def to_representation(self, schedule):
        # Hand-built like the periods; ``period_rows`` (``selectors.period_states``) when the
        # view read the periods as rows, else the (prefetched) related periods.
        rows = getattr(schedule, "period_rows", None)
        if rows is None:
            rows = schedule.periods.all()
        period = PeriodSerializer().to_representation
        return {
            "version": schedule.version,
            "reason": schedule.reason,
            "isCurrent": schedule.is_current,
            "setupId": schedule.setup_id,
            "note": schedule.note,
            "createdAt": datetime_str(schedule.created_at),
            "periods": [period(p) for p in rows],
        }


class TransactionSerializer(serializers.ModelSerializer):
    loanId = serializers.IntegerField(source="loan_id")
    externalId = StrictCharField(source="external_id", allow_null=True)
    principalPortion = Money(source="principal_portion")
    interestPortion = Money(source="interest_portion")
    feesPortion = Money(source="fees_portion")
    overpaymentPortion = Money(source="overpayment_portion")
    amount = Money()
    reversedOn = serializers.DateField(source="reversed_on", allow_null=True)
    reversalExternalId = StrictCharField(source="reversal_external_id", allow_null=True)
    reversalNote = StrictCharField(source="reversal_note")
    reversedByModificationId = serializers.IntegerField(
        source="reversed_by_modification_id", allow_null=True
    )
    createdBy = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Transaction
        fields = [
            "id",
            "loanId",
            "externalId",
            "type",
            "date",
            "amount",
            "principalPortion",
            "interestPortion",
            "feesPortion",
            "overpaymentPortion",
            "note",
            "reversed",
            "reversedOn",
            "reversalExternalId",
            "reversalNote",
            "reversedByModificationId",
            "createdBy",
            "createdAt",
        ]

    def get_createdBy(self, obj) -> str | None:  # noqa: N802
        return obj.created_by.get_username() if obj.created_by_id else None

    def to_representation(self, t):
        # Hand-built for speed (a loan may have thousands); fields above document the schema.
        # ``t`` is a model instance or a ``selectors.transaction_rows`` tuple (same JSON).
        if isinstance(t, tuple):
            return transaction_json(t)
        return transaction_json(
            (
                t.pk,
                t.loan_id,
                t.external_id,
                t.type,
                t.date,
                t.amount,
                t.principal_portion,
                t.interest_portion,
                t.fees_portion,
                t.note,
                t.reversed,
                t.reversed_on,
                t.reversal_external_id,
                t.reversal_note,
                t.reversed_by_modification_id,
                self.get_createdBy(t),
                t.created_at,
                t.overpayment_portion,
            )
        )


def transaction_json(r: tuple) -> dict:
    """A transaction's JSON from a row in ``selectors.TRANSACTION_ROW`` order."""
    return {
        "id": r[0],
        "loanId": r[1],
        "externalId": r[2],
        "type": r[3],
        "date": r[4].isoformat(),
        "amount": money_str(r[5]),
        "principalPortion": money_str(r[6]),
        "interestPortion": money_str(r[7]),
        "feesPortion": money_str(r[8]),
        "overpaymentPortion": money_str(r[17]),
        "note": r[9],
        "reversed": r[10],
        "reversedOn": date_str(r[11]),
        "reversalExternalId": r[12],
        "reversalNote": r[13],
        "reversedByModificationId": r[14],
        "createdBy": r[15],
        "createdAt": datetime_str(r[16]),
    }


class BucketField(serializers.ChoiceField):
    """The delinquency bucket of a number of days past due."""

    def __init__(self, **kwargs):
        super().__init__(DelinquencyBucket.choices, **kwargs)

    def to_representation(self, value):
        return bucket_for(value)


class SummarySerializer(serializers.Serializer):
    principalOutstanding = Money(source="principal_outstanding")
    interestOutstanding = Money(source="interest_outstanding")
    feesOutstanding = Money(source="fees_outstanding")
    totalOutstanding = Money(source="total_outstanding")
    principalPaid = Money(source="principal_paid")
    interestPaid = Money(source="interest_paid")
    feesPaid = Money(source="fees_paid")
    nextDueDate = serializers.DateField(source="next_due_date", allow_null=True)
    amountPastDue = Money(source="amount_past_due")
    daysPastDue = serializers.IntegerField(source="days_past_due")
    # The live classification of daysPastDue as of the business date (the loan's own
    # delinquencyBucket is what the last close of business recorded).
    delinquencyBucket = BucketField(source="days_past_due", read_only=True)
    creditBalance = Money(source="credit_balance", help_text="overpaid, refundable (§9)")
    payoffToday = Money(
        source="payoff_today",
        allow_null=True,
        help_text="the payoff total on the business date (§9)",
    )


class PayoffQuoteRowSerializer(serializers.Serializer):
    date = serializers.DateField(source="on")
    principal = Money()
    interest = Money()
    fees = Money()
    total = Money()


class PayoffQuoteSerializer(serializers.Serializer):
    """``GET /loans/{id}/payoff``: what settles the loan on the date and each following day."""

    perDiem = Money(source="per_diem", help_text="the interest one more day adds")
    creditBalance = Money(source="credit_balance")
    quotes = PayoffQuoteRowSerializer(many=True)


class LoanSerializer(serializers.ModelSerializer):
    externalId = StrictCharField(source="external_id")
    displayId = StrictCharField(source="display_id")
    borrower = BorrowerSerializer()
    status = serializers.ChoiceField(LoanStatus.choices)
    subStatus = serializers.ChoiceField(LoanSubStatus.choices, source="sub_status", allow_null=True)
    chargedOff = serializers.BooleanField(source="charged_off")
    scheduleEngine = StrictCharField(source="schedule_engine")
    servicingStatus = serializers.ChoiceField(ServicingStatus.choices, source="servicing_status")
    stopServicingReason = StrictCharField(source="stop_servicing_reason", allow_null=True)
    modificationInProgress = serializers.BooleanField(source="modification_in_progress")
    modTotal = serializers.IntegerField(source="mod_total")
    delinquencyBucket = serializers.ChoiceField(
        DelinquencyBucket.choices, source="delinquency_bucket", read_only=True
    )
    lastClosedBusinessDate = serializers.DateField(
        source="last_closed_business_date", allow_null=True, read_only=True
    )
    setupId = serializers.IntegerField(source="setup_id", allow_null=True)
    setup = SetupSerializer()
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Loan
        fields = [
            "id",
            "externalId",
            "displayId",
            "borrower",
            "status",
            "subStatus",
            "chargedOff",
            "scheduleEngine",
            "servicingStatus",
            "stopServicingReason",
            "modificationInProgress",
            "modTotal",
            "delinquencyBucket",
            "lastClosedBusinessDate",
            "setupId",
            "setup",
            "createdAt",
        ]


class LoanDetailSerializer(LoanSerializer):
    """A loan with its summary and, on request (``associations``), schedule and transactions."""

    # Present only when asked for with ``associations`` (see ``loans.api_schema``).
    schema_optional_fields = ("repaymentSchedule", "transactions")

    summary = SummarySerializer(source="summary_figures")
    repaymentSchedule = serializers.SerializerMethodField()
    transactions = serializers.SerializerMethodField()

    class Meta(LoanSerializer.Meta):
        fields = [*LoanSerializer.Meta.fields, "summary", "repaymentSchedule", "transactions"]

    def get_repaymentSchedule(self, obj) -> dict | None:  # noqa: N802
        schedule = getattr(obj, "current_schedule_version", None)
        if schedule is None:
            return None
        return ScheduleSerializer(schedule).data

    def get_transactions(self, obj) -> list[dict] | None:
        rows = getattr(obj, "transaction_rows", None)
        if rows is None:
            return None
        return TransactionSerializer(rows, many=True).data

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for key in ("repaymentSchedule", "transactions"):
            if data.get(key) is None and not hasattr(instance, _ATTRS[key]):
                data.pop(key, None)
        return data


_ATTRS = {"repaymentSchedule": "current_schedule_version", "transactions": "transaction_rows"}


class ActivationResultSerializer(LoanDetailSerializer):
    """The activate command's response: ``activated`` (false when there was nothing to
    activate) and the loan with its summary."""

    activated = serializers.BooleanField(source="activation_result")

    class Meta(LoanDetailSerializer.Meta):
        fields = ["activated", *LoanDetailSerializer.Meta.fields]


class LoanEventSerializer(serializers.ModelSerializer):
    loanId = serializers.IntegerField(source="loan_id", allow_null=True)
    actor = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    businessDate = serializers.DateField(source="business_date", allow_null=True)

    class Meta:
        model = LoanEvent
        fields = [
            "id",
            "loanId",
            "command",
            "actor",
            "createdAt",
            "businessDate",
            "reason",
            "input",
            "changes",
            "result",
        ]

    def get_actor(self, obj) -> str | None:
        return obj.actor.get_username() if obj.actor_id else None


class TerminationCommandSerializer(serializers.Serializer):
    """The response of contractTermination and undoContractTermination (Fineract's shape)."""

    loanId = serializers.IntegerField()
    resourceId = serializers.IntegerField(help_text="the CONTRACT_TERMINATION transaction's id")
    resourceExternalId = StrictCharField(
        allow_null=True,
        help_text="the transaction's externalId (its reversalExternalId for the undo)",
    )
    subStatus = serializers.ChoiceField(LoanSubStatus.choices, allow_null=True)
    transaction = TransactionSerializer()


class LoanCommandResultSerializer(TerminationCommandSerializer):
    """The documented shape of the answer to contractTermination, undoContractTermination,
    chargeOff and undoChargeOff: one schema for the four (chargedOff only on the charge-off
    commands), so a response matches exactly one branch of TransactionCommandResult's oneOf."""

    chargedOff = serializers.BooleanField(
        required=False, help_text="chargeOff and undoChargeOff only: the loan's flag after it"
    )


class ChargeOffCommandSerializer(serializers.Serializer):
    """The response of chargeOff and undoChargeOff (contractTermination's shape)."""

    loanId = serializers.IntegerField()
    resourceId = serializers.IntegerField(help_text="the CHARGE_OFF transaction's id")
    resourceExternalId = StrictCharField(
        allow_null=True,
        help_text="the transaction's externalId (its reversalExternalId for the undo)",
    )
    subStatus = serializers.ChoiceField(LoanSubStatus.choices, allow_null=True)
    chargedOff = serializers.BooleanField()
    transaction = TransactionSerializer()
