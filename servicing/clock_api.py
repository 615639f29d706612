"""DRF views of the servicing clock (DESIGN §6, §10, §11). Thin: parse, call a service, render.

Permissions (``loans.Loan`` codenames): ``POST /jobs`` and ``POST /dispatch`` need
``run_close_of_business``; ``POST /loans/{id}/autopay`` and ``POST /autopays/{id}/cancel`` need
``manage_autopay``; reads need an authenticated user.
"""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from loans.api_common import READ_ERRORS, APIView, LoanAPIView, error_responses
from servicing import autopay as autopay_services
from servicing import jobs as job_services
from servicing.clock_serializers import (
    AutopayCancelledSerializer,
    AutopayInputSerializer,
    AutopaySerializer,
    DispatchAttemptSerializer,
    DispatchInputSerializer,
    DispatchResultSerializer,
    JobDetailSerializer,
    JobInputSerializer,
    JobSerializer,
    SnapshotQuerySerializer,
    SnapshotSerializer,
)
from servicing.dispatcher import dispatch_due
from servicing.models import Autopay, DispatchAttempt, Job, JobFailure, LoanDailySnapshot
from servicing.serializers import CancelItemInputSerializer

CLOCK_PERMISSION = "run_close_of_business"
AUTOPAY_PERMISSION = "manage_autopay"


def parse(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class JobsView(generics.GenericAPIView, APIView):
    command_permissions = {"POST": CLOCK_PERMISSION}
    # The job row commits before its task is sent (a worker must find it) and a broker failure
    # commits the job as FAILED: the command commits in steps, so an Idempotency-Key is leased
    # in its own committed row, not claimed in one transaction around the view
    # (loans.idempotency).
    idempotency_in_transaction = False
    queryset = Job.objects.order_by("-id")
    serializer_class = JobSerializer

    @extend_schema(
        summary="Close-of-business runs",
        description=(
            "The close-of-business jobs, newest first, paginated: each with its business date, "
            "status, progress (done / total, failed) and who started it."
        ),
        responses={200: JobSerializer(many=True)},
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(JobSerializer(page, many=True).data)

    @extend_schema(
        summary="Run the close of business",
        description=(
            "Queues a close of business for businessDate (default: the business date) and "
            "answers 202 with the job; GET /jobs/{id} shows its progress. 503 "
            "broker_unavailable when the task broker (Redis) cannot be reached."
        ),
        request=JobInputSerializer,
        responses={202: JobSerializer, **error_responses(400, 401, 403, 503)},
    )
    def post(self, request):
        data = parse(JobInputSerializer, request.data)
        job = job_services.enqueue_close_of_business(
            business_date=data.get("businessDate"), actor=request.user
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobDetailView(APIView):
    @extend_schema(
        summary="One close-of-business run with its failed loans",
        responses={200: JobDetailSerializer, **error_responses(401, 404)},
    )
    def get(self, request, job_id: int):
        job = (
            Job.objects.prefetch_related(
                Prefetch("failures", queryset=JobFailure.objects.order_by("loan_id"))
            )
            .filter(pk=job_id)
            .first()
        )
        if job is None:
            from loans.exceptions import NotFoundError

            raise NotFoundError(f"Job {job_id} was not found.", code="not_found")
        return Response(JobDetailSerializer(job).data)


class DispatchView(APIView):
    command_permissions = {"POST": CLOCK_PERMISSION}
    # The dispatcher claims, commits, calls the provider with no lock held and records each
    # item in its own transactions (DESIGN §11): one transaction around the view would hold
    # the claims and row locks across the provider calls and make every per-item commit a
    # savepoint. So an Idempotency-Key is leased in a committed row, its answer stored after.
    idempotency_in_transaction = False

    @extend_schema(
        summary="Run the dispatcher once now",
        description="Executes what is due now; `limit` caps how many items are claimed.",
        request=DispatchInputSerializer,
        responses={200: DispatchResultSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request):
        data = parse(DispatchInputSerializer, request.data)
        result = dispatch_due(limit=data.get("limit"))
        return Response(DispatchResultSerializer(result).data)


class LoanAutopayView(LoanAPIView):
    command_permissions = {"POST": AUTOPAY_PERMISSION}

    @extend_schema(
        summary="The loan's autopays", responses={200: AutopaySerializer(many=True), **READ_ERRORS}
    )
    def get(self, request, **kwargs):
        loan = self.get_loan()
        rows = Autopay.objects.filter(loan=loan).order_by("-id")
        return Response(AutopaySerializer(rows, many=True).data)

    @extend_schema(
        summary="Set up autopay",
        request=AutopayInputSerializer,
        responses={201: AutopaySerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, **kwargs):
        loan = self.get_loan()
        data = parse(AutopayInputSerializer, request.data)
        autopay = autopay_services.setup_autopay(
            loan=loan,
            method=data["method"],
            amount_type=data["amountType"],
            amount=data.get("amount"),
            process_days_before=data["processDaysBefore"],
            actor=request.user,
        )
        return Response(AutopaySerializer(autopay).data, status=status.HTTP_201_CREATED)


class CancelAutopayView(APIView):
    command_permissions = {"POST": AUTOPAY_PERMISSION}

    @extend_schema(
        summary="Cancel an autopay and its pending payments",
        request=CancelItemInputSerializer,
        responses={200: AutopayCancelledSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, autopay_id: int):
        data = parse(CancelItemInputSerializer, request.data)
        result = autopay_services.cancel_autopay(
            autopay_id=autopay_id, reason=data.get("reason", ""), actor=request.user
        )
        autopay = result.autopay
        autopay.cancelled_scheduled_payments = result.cancelled_scheduled_payments
        return Response(AutopayCancelledSerializer(autopay).data)


class LoanSnapshotsView(LoanAPIView, generics.GenericAPIView):
    serializer_class = SnapshotSerializer
    queryset = LoanDailySnapshot.objects.none()

    @extend_schema(
        summary="The loan's daily snapshots (close of business)",
        parameters=[
            OpenApiParameter("from", str, description="YYYY-MM-DD, inclusive"),
            OpenApiParameter("to", str, description="YYYY-MM-DD, inclusive"),
        ],
        responses={200: SnapshotSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request, **kwargs):
        loan = self.get_loan()
        query = {k: v for k in ("from", "to") if (v := request.query_params.get(k)) is not None}
        bounds = parse(SnapshotQuerySerializer, query)
        rows = LoanDailySnapshot.objects.filter(loan=loan).order_by("business_date")
        if "from" in bounds:
            rows = rows.filter(business_date__gte=bounds["from"])
        if "to" in bounds:
            rows = rows.filter(business_date__lte=bounds["to"])
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(SnapshotSerializer(page, many=True).data)


class LoanDispatchAttemptsView(LoanAPIView, generics.GenericAPIView):
    serializer_class = DispatchAttemptSerializer
    queryset = DispatchAttempt.objects.none()

    @extend_schema(
        summary="Every execution attempt of the loan's scheduled items",
        responses={200: DispatchAttemptSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request, **kwargs):
        loan = self.get_loan()
        rows = DispatchAttempt.objects.filter(loan=loan).order_by("-started_at", "-id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(DispatchAttemptSerializer(page, many=True).data)
