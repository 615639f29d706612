"""DRF views of the servicing app (DESIGN §6). Thin: parse input, call a service, render output.

Permissions (``loans.Loan`` codenames, checked by ``CommandPermission`` before anything else):

* ``cancel-servicing``: ``cancel_servicing``; ``resume-servicing``: ``resume_servicing``.
* A borrower's ``cancel-servicing`` and ``cancel-communications``: ``cancel_servicing`` (the
  stronger stop permission covers the "do not contact me" request too).
* Scheduling (POST on ``scheduled-payments``, ``scheduled-communications``,
  ``communication-schedules``) and cancelling one scheduled item: ``post_transaction``, the
  permission of day-to-day loan operations (posting payments, creating and activating loans).
  Whoever may schedule an item may also unschedule it; stopping *all* servicing is the separate,
  stronger ``cancel_servicing``.
* Lists: any authenticated user.
"""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from loans import selectors as loan_selectors
from loans.api_common import (
    COMMAND_ERRORS,
    READ_ERRORS,
    APIView,
    DateTimeFilter,
    EnumFilter,
    IdFilter,
    LoanAPIView,
    error_responses,
    parse,
)
from loans.models import StopServicingReason
from loans.serializers import LoanSerializer
from servicing import selectors, services
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
from servicing.serializers import (
    BorrowerCancelCommunicationsResultSerializer,
    BorrowerCancelServicingResultSerializer,
    CancelItemInputSerializer,
    CancelServicingInputSerializer,
    CancelServicingResultSerializer,
    CommunicationScheduleCancelledSerializer,
    CommunicationScheduleCreatedSerializer,
    CommunicationScheduleInputSerializer,
    CommunicationScheduleSerializer,
    PortfolioSummarySerializer,
    ResumeServicingInputSerializer,
    ScheduledCommunicationInputSerializer,
    ScheduledCommunicationSerializer,
    ScheduledPaymentInputSerializer,
    ScheduledPaymentSerializer,
)

SCHEDULE_PERMISSION = "post_transaction"


# ------------------------------------------------------------------ cancel / resume servicing


class CancelServicingView(LoanAPIView):
    command_permissions = {"POST": "cancel_servicing"}

    @extend_schema(
        summary="Cancel loan servicing",
        description=(
            "Sets the loan's servicing status to NOT_SERVICING, records the reason (default "
            "API_REQUEST) and cancels every pending scheduled payment, call, email and SMS and "
            "every active call, email and SMS schedule. Idempotent: on a loan that is already "
            "NOT_SERVICING it succeeds with zero counts and keeps the original reason."
        ),
        request=CancelServicingInputSerializer,
        responses={200: CancelServicingResultSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, **kwargs):
        loan = self.get_loan()
        data = parse(CancelServicingInputSerializer, request).validated_data
        reason = data.get("reason")
        result = services.cancel_servicing(
            loan=loan,
            reason=StopServicingReason.API_REQUEST if reason is None else reason,
            actor=request.user,
        )
        return Response(CancelServicingResultSerializer(result).data)


class ResumeServicingView(LoanAPIView):
    command_permissions = {"POST": "resume_servicing"}

    @extend_schema(
        summary="Resume loan servicing",
        description="Sets servicing ACTIVE again; cancelled items stay cancelled.",
        request=ResumeServicingInputSerializer,
        responses={200: LoanSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, **kwargs):
        loan = self.get_loan()
        data = parse(ResumeServicingInputSerializer, request).validated_data
        services.resume_servicing(loan=loan, note=data.get("note", ""), actor=request.user)
        return Response(LoanSerializer(loan_selectors.get_loan(loan_id=loan.pk)).data)


# ------------------------------------------------------------------ a borrower's loans (§12)


class BorrowerAPIView(APIView):
    """An API view under one of the two borrower path forms (``borrowers/{id}`` and
    ``borrowers/external-id/{externalId}``)."""

    def get_borrower(self):
        return loan_selectors.get_borrower(
            borrower_id=self.kwargs.get("borrower_id"), external_id=self.kwargs.get("external_id")
        )


class BorrowerCancelServicingView(BorrowerAPIView):
    command_permissions = {"POST": "cancel_servicing"}

    @extend_schema(
        summary="Cancel servicing of every loan of a borrower",
        description=(
            "Finosu's customer-level stop: cancel servicing (as POST /loans/{id}/cancel-servicing "
            "does) on each of the borrower's loans, in one transaction. A loan already "
            "NOT_SERVICING keeps its original reason and is not counted in loansUpdated. The "
            "counts are summed over the loans; a borrower without loans answers zeros. id is "
            "the borrower's externalId (null when it has none), borrowerId its id."
        ),
        request=CancelServicingInputSerializer,
        responses={
            200: BorrowerCancelServicingResultSerializer,
            **error_responses(400, 401, 403, 404),
        },
    )
    def post(self, request, **kwargs):
        data = parse(CancelServicingInputSerializer, request).validated_data
        reason = data.get("reason")
        reason = StopServicingReason.API_REQUEST if reason is None else reason
        services.validate_reason(reason)  # 400 before 404, as for one loan
        result = services.cancel_borrower_servicing(
            self.get_borrower(), reason=reason, actor=request.user
        )
        return Response(BorrowerCancelServicingResultSerializer(result).data)


class BorrowerCancelCommunicationsView(BorrowerAPIView):
    command_permissions = {"POST": "cancel_servicing"}

    @extend_schema(
        summary="Cancel every communication of a borrower",
        description=(
            'A borrower\'s "do not contact me": cancels every pending call, email and SMS and '
            "every active call, email and SMS schedule of each of the borrower's loans. "
            "Servicing status, scheduled payments and autopays are left alone. Needs the "
            "cancel_servicing permission. id is the borrower's externalId (null when it has "
            "none), borrowerId its id; total sums the six counts."
        ),
        request=None,
        responses={
            200: BorrowerCancelCommunicationsResultSerializer,
            **error_responses(401, 403, 404),
        },
    )
    def post(self, request, **kwargs):
        result = services.cancel_borrower_communications(self.get_borrower(), actor=request.user)
        return Response(BorrowerCancelCommunicationsResultSerializer(result).data)


# ------------------------------------------------------------------ filters


class ScheduledPaymentFilter(django_filters.FilterSet):
    status = EnumFilter(choices=ScheduledPaymentStatus.choices)
    method = EnumFilter(choices=PaymentMethod.choices)
    scheduledDateFrom = django_filters.DateFilter(field_name="scheduled_date", lookup_expr="gte")
    scheduledDateTo = django_filters.DateFilter(field_name="scheduled_date", lookup_expr="lte")

    class Meta:
        model = ScheduledPayment
        fields: list = []


class ScheduledCommunicationFilter(django_filters.FilterSet):
    status = EnumFilter(choices=CommunicationStatus.choices)
    channel = EnumFilter(choices=Channel.choices)
    scheduleId = IdFilter(field_name="schedule_id")
    scheduledFrom = DateTimeFilter(field_name="scheduled_at", lookup_expr="gte")
    scheduledTo = DateTimeFilter(field_name="scheduled_at", lookup_expr="lte")

    class Meta:
        model = ScheduledCommunication
        fields: list = []


class CommunicationScheduleFilter(django_filters.FilterSet):
    status = EnumFilter(choices=CommunicationScheduleStatus.choices)
    channel = EnumFilter(choices=Channel.choices)
    startDateFrom = django_filters.DateFilter(field_name="start_date", lookup_expr="gte")
    startDateTo = django_filters.DateFilter(field_name="start_date", lookup_expr="lte")

    class Meta:
        model = CommunicationSchedule
        fields: list = []


# ------------------------------------------------------------------ lists and creation


class LoanItemsView(LoanAPIView, generics.GenericAPIView):
    """GET: the loan's items, filtered and paginated. POST: schedule one (201)."""

    command_permissions = {"POST": SCHEDULE_PERMISSION}

    def get_queryset(self):
        queryset = self.queryset.select_related("created_by", "cancelled_by")
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        return queryset.filter(loan=self.get_loan())

    def list_response(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class ScheduledPaymentsView(LoanItemsView):
    queryset = ScheduledPayment.objects.order_by("scheduled_date", "id")
    serializer_class = ScheduledPaymentSerializer
    filterset_class = ScheduledPaymentFilter

    @extend_schema(responses={200: ScheduledPaymentSerializer(many=True), **READ_ERRORS})
    def get(self, request, **kwargs):
        return self.list_response(request)

    @extend_schema(
        request=ScheduledPaymentInputSerializer,
        responses={201: ScheduledPaymentSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, **kwargs):
        loan = self.get_loan()
        data = parse(ScheduledPaymentInputSerializer, request).validated_data
        payment = services.schedule_payment(
            loan=loan,
            amount=data["amount"],
            scheduled_date=data["scheduledDate"],
            method=data["method"],
            actor=request.user,
        )
        return Response(ScheduledPaymentSerializer(payment).data, status=status.HTTP_201_CREATED)


class ScheduledCommunicationsView(LoanItemsView):
    queryset = ScheduledCommunication.objects.order_by("scheduled_at", "id")
    serializer_class = ScheduledCommunicationSerializer
    filterset_class = ScheduledCommunicationFilter

    @extend_schema(responses={200: ScheduledCommunicationSerializer(many=True), **READ_ERRORS})
    def get(self, request, **kwargs):
        return self.list_response(request)

    @extend_schema(
        request=ScheduledCommunicationInputSerializer,
        responses={201: ScheduledCommunicationSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, **kwargs):
        loan = self.get_loan()
        data = parse(ScheduledCommunicationInputSerializer, request).validated_data
        communication = services.schedule_communication(
            loan=loan,
            channel=data["channel"],
            scheduled_at=data["scheduledAt"],
            subject=data.get("subject", ""),
            body=data.get("body", ""),
            actor=request.user,
        )
        return Response(
            ScheduledCommunicationSerializer(communication).data, status=status.HTTP_201_CREATED
        )


class CommunicationSchedulesView(LoanItemsView):
    queryset = CommunicationSchedule.objects.order_by("start_date", "id")
    serializer_class = CommunicationScheduleSerializer
    filterset_class = CommunicationScheduleFilter

    @extend_schema(responses={200: CommunicationScheduleSerializer(many=True), **READ_ERRORS})
    def get(self, request, **kwargs):
        return self.list_response(request)

    @extend_schema(
        request=CommunicationScheduleInputSerializer,
        responses={201: CommunicationScheduleCreatedSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, **kwargs):
        loan = self.get_loan()
        data = parse(CommunicationScheduleInputSerializer, request).validated_data
        schedule = services.create_communication_schedule(
            loan=loan,
            channel=data["channel"],
            every_days=data["everyDays"],
            start_date=data["startDate"],
            end_date=data.get("endDate"),
            occurrences=data.get("occurrences"),
            subject=data.get("subject", ""),
            body=data.get("body", ""),
            actor=request.user,
        )
        schedule = (
            CommunicationSchedule.objects.select_related("created_by", "cancelled_by")
            .prefetch_related(
                Prefetch(
                    "communications",
                    queryset=ScheduledCommunication.objects.select_related(
                        "created_by", "cancelled_by"
                    ).order_by("scheduled_at", "id"),
                )
            )
            .get(pk=schedule.pk)
        )
        return Response(
            CommunicationScheduleCreatedSerializer(schedule).data, status=status.HTTP_201_CREATED
        )


# ------------------------------------------------------------------ cancel one item


class CancelItemView(APIView):
    command_permissions = {"POST": SCHEDULE_PERMISSION}


class CancelScheduledPaymentView(CancelItemView):
    @extend_schema(
        request=CancelItemInputSerializer,
        responses={200: ScheduledPaymentSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, item_id):
        data = parse(CancelItemInputSerializer, request).validated_data
        payment = services.cancel_scheduled_payment(
            payment_id=item_id, reason=data.get("reason", ""), actor=request.user
        )
        return Response(ScheduledPaymentSerializer(payment).data)


class CancelScheduledCommunicationView(CancelItemView):
    @extend_schema(
        request=CancelItemInputSerializer,
        responses={
            200: ScheduledCommunicationSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    def post(self, request, item_id):
        data = parse(CancelItemInputSerializer, request).validated_data
        communication = services.cancel_scheduled_communication(
            communication_id=item_id, reason=data.get("reason", ""), actor=request.user
        )
        return Response(ScheduledCommunicationSerializer(communication).data)


class CancelCommunicationScheduleView(CancelItemView):
    @extend_schema(
        request=CancelItemInputSerializer,
        responses={
            200: CommunicationScheduleCancelledSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
    )
    def post(self, request, item_id):
        data = parse(CancelItemInputSerializer, request).validated_data
        result = services.cancel_communication_schedule(
            schedule_id=item_id, reason=data.get("reason", ""), actor=request.user
        )
        schedule = result.schedule
        schedule.cancelled_communications = result.cancelled_communications
        return Response(CommunicationScheduleCancelledSerializer(schedule).data)


# ------------------------------------------------------------------ the portfolio


class PortfolioSummaryView(APIView):
    """Any authenticated user may read it (like the other lists)."""

    @extend_schema(
        summary="Portfolio summary",
        description=(
            "Counts and amounts (principal outstanding, total outstanding, amount past due on "
            "the business date) of every loan, in total and by status, sub-status, servicing "
            "status and delinquency bucket. Every value of each dimension is listed, with zeros "
            "where no loan has it. The admin's Portfolio page shows the same figures."
        ),
        responses={200: PortfolioSummarySerializer, **error_responses(401)},
    )
    def get(self, request):
        summary = selectors.portfolio_summary(as_of=loan_selectors.get_business_date())
        return Response(PortfolioSummarySerializer(summary).data)
