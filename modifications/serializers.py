"""Input and output serializers of the modification API (camelCase, money as 2-decimal
strings, dates YYYY-MM-DD). No business logic here."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from loans.serializers import Money, PositiveMoney, SetupSerializer, StrictCharField, TermField
from modifications.models import PERSISTENT_GROUPS, Modification
from modifications.services import ROLL_METHODS


@extend_schema_field(
    {"anyOf": [{"type": "string", "maxLength": 40}, {"type": "integer", "minimum": 1}]}
)
class TransactionIdField(StrictCharField):
    """A transaction id in ``persistentTransactions``: a string, as LoanPro's examples send it
    and the pre-mod test answers it ("2928"), or a JSON integer (2928), the same id; true,
    decimals, lists and objects are refused."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        return super().to_internal_value(data)


def _ids():
    return serializers.ListField(child=TransactionIdField(max_length=40), required=False)


class PersistentTransactionsSerializer(serializers.Serializer):
    payments = _ids()
    charges = _ids()
    advancements = _ids()
    credits = _ids()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = set(data) - set(PERSISTENT_GROUPS)
            if unknown:
                raise serializers.ValidationError(
                    {g: [f"Unknown group; use {', '.join(PERSISTENT_GROUPS)}."] for g in unknown}
                )
        return super().to_internal_value(data)


class CreateModificationSerializer(serializers.Serializer):
    modificationDate = serializers.DateField()
    persistentTransactions = PersistentTransactionsSerializer(required=False)
    note = StrictCharField(max_length=500, required=False, allow_blank=True)


class CancelModificationSerializer(serializers.Serializer):
    note = StrictCharField(max_length=500, required=False, allow_blank=True)


class RollPaymentSerializer(serializers.Serializer):
    amount = PositiveMoney()
    method = StrictCharField(max_length=64)


class PreModTransactionSerializer(serializers.Serializer):
    id = StrictCharField()
    displayId = StrictCharField()
    date = serializers.DateField()
    amount = Money()
    info = StrictCharField()


class PreModTestSerializer(serializers.Serializer):
    payments = PreModTransactionSerializer(many=True)
    charges = PreModTransactionSerializer(many=True)
    advancements = PreModTransactionSerializer(many=True)
    credits = PreModTransactionSerializer(many=True)


class CarriedBalanceSerializer(serializers.Serializer):
    principal = Money(source="carried_principal")
    interest = Money(source="carried_interest")
    fees = Money(source="carried_fees")
    total = Money(source="carried_total")


class ModificationSerializer(serializers.ModelSerializer):
    loanId = serializers.IntegerField(source="loan_id")
    # A plain string in the schema: an enum named "status" would collide with the loan's.
    status = StrictCharField(help_text="DRAFT, ACTIVE or CANCELLED")
    modificationDate = serializers.DateField(source="modification_date")
    setupId = serializers.IntegerField(source="setup_id", allow_null=True)
    previousSetupId = serializers.IntegerField(source="previous_setup_id")
    carriedBalance = CarriedBalanceSerializer(source="*")
    persistentTransactions = serializers.SerializerMethodField()
    reversedTransactionIds = serializers.SerializerMethodField()
    setup = SetupSerializer(allow_null=True)
    scheduleVersion = serializers.SerializerMethodField()
    createdBy = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    activatedBy = serializers.SerializerMethodField()
    activatedAt = serializers.DateTimeField(source="activated_at", allow_null=True)
    cancelledBy = serializers.SerializerMethodField()
    cancelledAt = serializers.DateTimeField(source="cancelled_at", allow_null=True)

    class Meta:
        model = Modification
        fields = [
            "id",
            "loanId",
            "status",
            "modificationDate",
            "setupId",
            "previousSetupId",
            "carriedBalance",
            "persistentTransactions",
            "reversedTransactionIds",
            "setup",
            "scheduleVersion",
            "note",
            "createdBy",
            "createdAt",
            "activatedBy",
            "activatedAt",
            "cancelledBy",
            "cancelledAt",
        ]

    def get_persistentTransactions(self, obj) -> dict:  # noqa: N802
        stored = obj.persistent_transactions or {}
        return {group: [str(i) for i in stored.get(group, [])] for group in PERSISTENT_GROUPS}

    def get_reversedTransactionIds(self, obj) -> list[str]:  # noqa: N802
        return [str(i) for i in obj.reversed_transaction_ids or []]

    def get_scheduleVersion(self, obj) -> int | None:  # noqa: N802
        return obj.schedule.version if obj.schedule_id else None

    @staticmethod
    def _user(user) -> str | None:
        return user.get_username() if user is not None else None

    def get_createdBy(self, obj) -> str | None:  # noqa: N802
        return self._user(obj.created_by)

    def get_activatedBy(self, obj) -> str | None:  # noqa: N802
        return self._user(obj.activated_by)

    def get_cancelledBy(self, obj) -> str | None:  # noqa: N802
        return self._user(obj.cancelled_by)


class RollResultSerializer(serializers.Serializer):
    method = serializers.ChoiceField(ROLL_METHODS)
    payment = Money()
    solution = TermField()
    setup = SetupSerializer()
