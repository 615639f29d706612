"""Serializers of the servicing clock's API (jobs, dispatch, autopay, snapshots, attempts)."""

from __future__ import annotations

from rest_framework import serializers

from loans.models import DelinquencyBucket
from loans.serializers import Money, PositiveMoney, StrictIntegerField
from servicing.models import (
    AttemptStatus,
    Autopay,
    AutopayAmountType,
    AutopayStatus,
    DispatchAttempt,
    ItemKind,
    Job,
    JobKind,
    JobStatus,
    LoanDailySnapshot,
    PaymentMethod,
)


class JobInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(JobKind.choices)
    businessDate = serializers.DateField(
        required=False, allow_null=True, help_text="default: the business date"
    )


class JobFailureSerializer(serializers.Serializer):
    loanId = serializers.IntegerField(source="loan_id")
    businessDate = serializers.DateField(source="business_date")
    error = serializers.CharField()
    retriedAt = serializers.DateTimeField(source="retried_at", allow_null=True)


class JobSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(JobKind.choices)
    businessDate = serializers.DateField(source="business_date")
    status = serializers.ChoiceField(JobStatus.choices)
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    error = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "businessDate",
            "status",
            "total",
            "done",
            "failed",
            "error",
            "createdAt",
            "startedAt",
            "finishedAt",
        ]


class JobDetailSerializer(JobSerializer):
    failures = JobFailureSerializer(many=True)

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "failures"]


class DispatchInputSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)


class DispatchResultSerializer(serializers.Serializer):
    claimed = serializers.IntegerField()
    executed = serializers.IntegerField()
    deferred = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    reconciled = serializers.IntegerField()


class AutopayInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(PaymentMethod.choices, default=PaymentMethod.ACH)
    amountType = serializers.ChoiceField(
        AutopayAmountType.choices, default=AutopayAmountType.SCHEDULED_PAYMENT
    )
    amount = PositiveMoney(required=False, allow_null=True)
    processDaysBefore = StrictIntegerField(min_value=0, max_value=30, default=0)


class AutopaySerializer(serializers.ModelSerializer):
    loanId = serializers.IntegerField(source="loan_id")
    method = serializers.ChoiceField(PaymentMethod.choices)
    amountType = serializers.ChoiceField(AutopayAmountType.choices, source="amount_type")
    amount = Money(allow_null=True)
    processDaysBefore = serializers.IntegerField(source="process_days_before")
    startDate = serializers.DateField(source="start_date")
    status = serializers.ChoiceField(AutopayStatus.choices)
    createdAt = serializers.DateTimeField(source="created_at")
    cancelledAt = serializers.DateTimeField(source="cancelled_at", allow_null=True)
    cancelReason = serializers.CharField(source="cancel_reason")

    class Meta:
        model = Autopay
        fields = [
            "id",
            "loanId",
            "method",
            "amountType",
            "amount",
            "processDaysBefore",
            "startDate",
            "status",
            "createdAt",
            "cancelledAt",
            "cancelReason",
        ]


class AutopayCancelledSerializer(AutopaySerializer):
    cancelledScheduledPayments = serializers.IntegerField(source="cancelled_scheduled_payments")

    class Meta(AutopaySerializer.Meta):
        fields = [*AutopaySerializer.Meta.fields, "cancelledScheduledPayments"]


class SnapshotSerializer(serializers.ModelSerializer):
    businessDate = serializers.DateField(source="business_date")
    subStatus = serializers.CharField(source="sub_status", allow_null=True)
    servicingStatus = serializers.CharField(source="servicing_status")
    delinquencyBucket = serializers.ChoiceField(
        DelinquencyBucket.choices, source="delinquency_bucket"
    )
    daysPastDue = serializers.IntegerField(source="days_past_due")
    amountPastDue = Money(source="amount_past_due")
    principalOutstanding = Money(source="principal_outstanding")
    interestOutstanding = Money(source="interest_outstanding")
    feesOutstanding = Money(source="fees_outstanding")
    payoffTotal = Money(source="payoff_total")

    class Meta:
        model = LoanDailySnapshot
        fields = [
            "businessDate",
            "status",
            "subStatus",
            "servicingStatus",
            "delinquencyBucket",
            "daysPastDue",
            "amountPastDue",
            "principalOutstanding",
            "interestOutstanding",
            "feesOutstanding",
            "payoffTotal",
        ]


class SnapshotQuerySerializer(serializers.Serializer):
    """``?from=&to=``: the fields carry the query parameters' own names (keywords in Python),
    so a 400 names the parameter the client sent."""

    def get_fields(self):
        return {
            "from": serializers.DateField(required=False),
            "to": serializers.DateField(required=False),
        }

    def validate(self, attrs):
        # An empty range is a mistake in the query, not an empty answer (acceptance audit).
        if "from" in attrs and "to" in attrs and attrs["to"] < attrs["from"]:
            raise serializers.ValidationError(
                {"to": serializers.ErrorDetail("Before the from date.", code="end_before_start")}
            )
        return attrs


class DispatchAttemptSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(ItemKind.choices)
    scheduledPaymentId = serializers.IntegerField(source="scheduled_payment_id", allow_null=True)
    scheduledCommunicationId = serializers.IntegerField(
        source="scheduled_communication_id", allow_null=True
    )
    channel = serializers.CharField()
    number = serializers.IntegerField()
    status = serializers.ChoiceField(AttemptStatus.choices)
    amount = Money(allow_null=True)
    idempotencyKey = serializers.CharField(source="idempotency_key")
    provider = serializers.CharField()
    providerReference = serializers.CharField(source="provider_reference")
    returnCode = serializers.CharField(source="return_code")
    error = serializers.CharField()
    startedAt = serializers.DateTimeField(source="started_at")
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)

    class Meta:
        model = DispatchAttempt
        fields = [
            "id",
            "kind",
            "scheduledPaymentId",
            "scheduledCommunicationId",
            "channel",
            "number",
            "status",
            "amount",
            "idempotencyKey",
            "provider",
            "providerReference",
            "returnCode",
            "error",
            "startedAt",
            "finishedAt",
        ]
