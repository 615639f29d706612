"""Input and output serializers of the servicing API. camelCase on the wire, money as strings
with two decimals. No business logic: the services validate state and reasons."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from loans.models import ServicingStatus, StopServicingReason
from loans.serializers import Money, PositiveMoney, StrictCharField, StrictIntegerField
from servicing.models import (
    Channel,
    CommunicationSchedule,
    CommunicationScheduleStatus,
    CommunicationStatus,
    PaymentMethod,
    ScheduledCommunication,
    ScheduledPayment,
    ScheduledPaymentStatus,
)


@extend_schema_field(
    {
        "type": "string",
        "enum": StopServicingReason.values,
        "default": StopServicingReason.API_REQUEST,
        "description": "Reason for stopping servicing. Defaults to API_REQUEST.",
    }
)
class ReasonField(serializers.CharField):
    """A plain string here: the service checks it against the 21 reasons, so an unknown value
    is the documented 400 ``invalid_reason`` listing the valid values."""


# ---------------------------------------------------------------- input


class CancelServicingInputSerializer(serializers.Serializer):
    reason = ReasonField(required=False, allow_null=True, allow_blank=True)


class ResumeServicingInputSerializer(serializers.Serializer):
    note = StrictCharField(max_length=500, required=False, allow_blank=True)


class CancelItemInputSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True)


class ScheduledPaymentInputSerializer(serializers.Serializer):
    amount = PositiveMoney()
    scheduledDate = serializers.DateField()
    method = serializers.ChoiceField(PaymentMethod.choices, default=PaymentMethod.ACH)


class ScheduledCommunicationInputSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(Channel.choices)
    scheduledAt = serializers.DateTimeField(
        help_text="ISO 8601 with an offset; a time without one is read as UTC"
    )
    subject = StrictCharField(max_length=200, required=False, allow_blank=True)
    body = StrictCharField(
        max_length=10000, required=False, allow_blank=True, help_text="message or call script"
    )


class CommunicationScheduleInputSerializer(serializers.Serializer):
    """``everyDays`` and ``occurrences`` are JSON integers, as the schema says (they took "7"
    and 7.0, which every other integer of the API refuses)."""

    channel = serializers.ChoiceField(Channel.choices)
    everyDays = StrictIntegerField(min_value=1, max_value=366)
    startDate = serializers.DateField()
    endDate = serializers.DateField(required=False, allow_null=True)
    occurrences = StrictIntegerField(min_value=1, max_value=500, required=False, allow_null=True)
    subject = StrictCharField(max_length=200, required=False, allow_blank=True)
    body = StrictCharField(max_length=10000, required=False, allow_blank=True)


# ---------------------------------------------------------------- output


class CancelServicingResultSerializer(serializers.Serializer):
    """Seed 000's response; ``id`` is the loan's external id."""

    id = StrictCharField(source="loan.external_id", help_text="Loan external reference ID")
    servicingStatus = serializers.ChoiceField(
        ServicingStatus.choices, source="loan.servicing_status"
    )
    stopServicingReason = serializers.ChoiceField(
        StopServicingReason.choices, source="loan.stop_servicing_reason"
    )
    cancelledScheduledPayments = serializers.IntegerField(source="cancelled_scheduled_payments")
    cancelledCallSchedules = serializers.IntegerField(source="cancelled_call_schedules")
    cancelledEmailSchedules = serializers.IntegerField(source="cancelled_email_schedules")
    cancelledSmsSchedules = serializers.IntegerField(source="cancelled_sms_schedules")
    cancelledCalls = serializers.IntegerField(source="cancelled_calls")
    cancelledEmails = serializers.IntegerField(source="cancelled_emails")
    cancelledSms = serializers.IntegerField(source="cancelled_sms")


class _CancellableSerializer(serializers.ModelSerializer):
    loanId = serializers.IntegerField(source="loan_id")
    createdAt = serializers.DateTimeField(source="created_at")
    createdBy = serializers.SerializerMethodField()
    cancelledAt = serializers.DateTimeField(source="cancelled_at", allow_null=True)
    cancelledBy = serializers.SerializerMethodField()
    cancelReason = StrictCharField(source="cancel_reason")

    COMMON = ["createdAt", "createdBy", "cancelledAt", "cancelledBy", "cancelReason"]

    def get_createdBy(self, obj) -> str | None:  # noqa: N802
        return obj.created_by.get_username() if obj.created_by_id else None

    def get_cancelledBy(self, obj) -> str | None:  # noqa: N802
        return obj.cancelled_by.get_username() if obj.cancelled_by_id else None


class ScheduledPaymentSerializer(_CancellableSerializer):
    amount = Money()
    scheduledDate = serializers.DateField(source="scheduled_date")
    method = serializers.ChoiceField(PaymentMethod.choices)
    status = serializers.ChoiceField(ScheduledPaymentStatus.choices)
    # PROCESSED "with its transaction" (DESIGN §1), FAILED with the provider's return code.
    autopayId = serializers.IntegerField(source="autopay_id", allow_null=True)
    transactionId = serializers.IntegerField(source="transaction_id", allow_null=True)
    executedAt = serializers.DateTimeField(source="executed_at", allow_null=True)
    returnCode = StrictCharField(source="return_code")
    failureReason = StrictCharField(source="failure_reason")

    class Meta:
        model = ScheduledPayment
        fields = [
            "id",
            "loanId",
            "amount",
            "scheduledDate",
            "method",
            "status",
            "autopayId",
            "transactionId",
            "executedAt",
            "returnCode",
            "failureReason",
            *_CancellableSerializer.COMMON,
        ]


class ScheduledCommunicationSerializer(_CancellableSerializer):
    channel = serializers.ChoiceField(Channel.choices)
    scheduledAt = serializers.DateTimeField(source="scheduled_at")
    scheduleId = serializers.IntegerField(source="schedule_id", allow_null=True)
    status = serializers.ChoiceField(CommunicationStatus.choices)

    class Meta:
        model = ScheduledCommunication
        fields = [
            "id",
            "loanId",
            "channel",
            "scheduledAt",
            "subject",
            "body",
            "scheduleId",
            "status",
            *_CancellableSerializer.COMMON,
        ]


class CommunicationScheduleSerializer(_CancellableSerializer):
    channel = serializers.ChoiceField(Channel.choices)
    everyDays = serializers.IntegerField(source="every_days")
    startDate = serializers.DateField(source="start_date")
    endDate = serializers.DateField(source="end_date", allow_null=True)
    occurrences = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(CommunicationScheduleStatus.choices)

    class Meta:
        model = CommunicationSchedule
        fields = [
            "id",
            "loanId",
            "channel",
            "everyDays",
            "startDate",
            "endDate",
            "occurrences",
            "subject",
            "body",
            "status",
            *_CancellableSerializer.COMMON,
        ]


class CommunicationScheduleCreatedSerializer(CommunicationScheduleSerializer):
    """A new schedule with the communications it generated."""

    communications = ScheduledCommunicationSerializer(many=True)

    class Meta(CommunicationScheduleSerializer.Meta):
        fields = [*CommunicationScheduleSerializer.Meta.fields, "communications"]


class CommunicationScheduleCancelledSerializer(CommunicationScheduleSerializer):
    cancelledCommunications = serializers.IntegerField(source="cancelled_communications")

    class Meta(CommunicationScheduleSerializer.Meta):
        fields = [*CommunicationScheduleSerializer.Meta.fields, "cancelledCommunications"]


class PortfolioGroupSerializer(serializers.Serializer):
    value = serializers.CharField(
        allow_null=True, help_text="The group's value (null: no sub-status)."
    )
    count = serializers.IntegerField(help_text="Number of loans.")
    principalOutstanding = Money()
    totalOutstanding = Money()
    amountPastDue = Money(help_text="Due before the business date and unpaid.")


class PortfolioSummarySerializer(serializers.Serializer):
    businessDate = serializers.DateField()
    total = PortfolioGroupSerializer()
    byStatus = PortfolioGroupSerializer(many=True)
    bySubStatus = PortfolioGroupSerializer(many=True)
    byServicingStatus = PortfolioGroupSerializer(many=True)
    byDelinquencyBucket = PortfolioGroupSerializer(many=True)


def _count(source: str):
    return serializers.IntegerField(source=f"totals.{source}")


class BorrowerCancelServicingResultSerializer(serializers.Serializer):
    """Finosu's customer-level stop; ``id`` is the borrower's external id (null when it has
    none: ``borrowerId``, the borrower's own id, always names it), the counts are summed over
    the borrower's loans."""

    id = StrictCharField(
        source="borrower.external_id",
        allow_null=True,
        help_text="the borrower's externalId; null when it has none (borrowerId names it)",
    )
    borrowerId = serializers.IntegerField(
        source="borrower.pk", help_text="the borrower's id (the /borrowers/{id} path form)"
    )
    loansUpdated = serializers.IntegerField(
        source="loans_updated", help_text="loans stopped now (not those already stopped)"
    )
    stopServicingReason = serializers.ChoiceField(StopServicingReason.choices, source="reason")
    cancelledScheduledPayments = _count("cancelled_scheduled_payments")
    cancelledCallSchedules = _count("cancelled_call_schedules")
    cancelledEmailSchedules = _count("cancelled_email_schedules")
    cancelledSmsSchedules = _count("cancelled_sms_schedules")
    cancelledCalls = _count("cancelled_calls")
    cancelledEmails = _count("cancelled_emails")
    cancelledSms = _count("cancelled_sms")


class BorrowerCancelCommunicationsResultSerializer(serializers.Serializer):
    """The borrower's "do not contact me": what was cancelled over all of its loans."""

    id = StrictCharField(
        source="borrower.external_id",
        allow_null=True,
        help_text="the borrower's externalId; null when it has none (borrowerId names it)",
    )
    borrowerId = serializers.IntegerField(
        source="borrower.pk", help_text="the borrower's id (the /borrowers/{id} path form)"
    )
    cancelledCalls = _count("cancelled_calls")
    cancelledEmails = _count("cancelled_emails")
    cancelledSms = _count("cancelled_sms")
    cancelledCallSchedules = _count("cancelled_call_schedules")
    cancelledEmailSchedules = _count("cancelled_email_schedules")
    cancelledSmsSchedules = _count("cancelled_sms_schedules")
    total = serializers.IntegerField(source="totals.total")
