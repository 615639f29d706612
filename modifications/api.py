"""DRF views of loan modifications (seed 004, DESIGN §6). Thin: parse, call a service, render."""

from __future__ import annotations

from datetime import date

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response

from loans import api as loan_api
from loans.api_common import COMMAND_ERRORS, READ_ERRORS, LoanAPIView, parse
from loans.exceptions import InvalidRequestError, field_error
from loans.models import LoanStatus
from modifications import selectors, services
from modifications.models import Modification
from modifications.serializers import (
    CancelModificationSerializer,
    CreateModificationSerializer,
    ModificationSerializer,
    PreModTestSerializer,
    RollPaymentSerializer,
    RollResultSerializer,
)


def _modifications(loan):
    return (
        Modification.objects.filter(loan=loan)
        .select_related("setup", "schedule", "created_by", "activated_by", "cancelled_by")
        .order_by("-id")
    )


class PreModTestView(LoanAPIView):
    """Step 1 (optional): the transactions dated after a proposed modification date."""

    @extend_schema(
        parameters=[OpenApiParameter("date", OpenApiTypes.DATE, required=True)],
        responses={200: PreModTestSerializer, **READ_ERRORS},
    )
    def get(self, request, **kwargs):
        loan = self.get_loan()
        raw = request.query_params.get("date", "")
        try:
            on = date.fromisoformat(raw)
        except ValueError:
            raise InvalidRequestError(
                "The query parameter date (YYYY-MM-DD) is required.",
                code="invalid_date",
                errors=[field_error("date", "A date YYYY-MM-DD is required.", "invalid")],
            )
        result = selectors.pre_modification_test(loan=loan, on=on)
        return Response(PreModTestSerializer(result).data)


class ModificationsView(LoanAPIView):
    """Step 2: create a modification (POST); its history (GET, newest first)."""

    command_permissions = {"POST": "modify_loan"}

    @extend_schema(responses={200: ModificationSerializer(many=True), **READ_ERRORS})
    def get(self, request, **kwargs):
        loan = self.get_loan()
        return Response(ModificationSerializer(_modifications(loan), many=True).data)

    @extend_schema(
        request=CreateModificationSerializer,
        responses={201: ModificationSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, **kwargs):
        loan = self.get_loan()
        data = parse(CreateModificationSerializer, request).validated_data
        modification = services.create_modification(
            loan=loan,
            modification_date=data["modificationDate"],
            persistent_transactions=dict(data.get("persistentTransactions") or {}),
            note=data.get("note", ""),
            actor=request.user,
        )
        modification = _modifications(loan).get(pk=modification.pk)
        return Response(ModificationSerializer(modification).data, status=status.HTTP_201_CREATED)


class RollPaymentView(LoanAPIView):
    """Step 5 (optional): roll the payment of the draft (or a PENDING loan's) setup."""

    def required_permission(self, request):
        if request.method in permissions.SAFE_METHODS:
            return None
        loan = self.get_loan()
        return "post_transaction" if loan.status == LoanStatus.PENDING else "modify_loan"

    @extend_schema(
        request=RollPaymentSerializer,
        responses={200: RollResultSerializer, **COMMAND_ERRORS},
        description=f"method: one of {', '.join(services.ROLL_METHODS)}",
    )
    def post(self, request, **kwargs):
        loan = self.get_loan()
        data = parse(RollPaymentSerializer, request).validated_data
        result = services.roll_payment(
            loan=loan, amount=data["amount"], method=data["method"], actor=request.user
        )
        return Response(RollResultSerializer(result).data)


class CancelModificationView(LoanAPIView):
    """Cancel the newest modification (a draft or an activated one)."""

    command_permissions = {"POST": "modify_loan"}

    @extend_schema(
        request=CancelModificationSerializer,
        responses={200: ModificationSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, **kwargs):
        loan = self.get_loan()
        data = parse(CancelModificationSerializer, request).validated_data
        modification = services.cancel_modification(
            loan=loan, actor=request.user, note=data.get("note", "")
        )
        return Response(ModificationSerializer(_modifications(loan).get(pk=modification.pk)).data)


class ActivateView(loan_api.ActivateView):
    """``POST /loans/{id}/activate``: a loan whose modification is in progress has its draft
    activated (``activate_modification``, under ``modify_loan``); any other loan goes to the
    core's activation (``activate_loan``, under ``post_transaction``). Routed from this app
    because ``loans`` imports no other app."""

    def required_permission(self, request):
        if self.get_loan().modification_in_progress:
            return "modify_loan"
        return super().required_permission(request)

    def activate(self, loan, actor):
        if loan.modification_in_progress:
            return services.activate_modification(loan=loan, actor=actor)
        return super().activate(loan, actor)
