"""DRF views of the loan core (DESIGN §6). Thin: parse input, call a service, render output.

Why this module is long: it holds every loan-core operation of the API contract (DESIGN §6)
with its schema, error responses and request examples; each view is thin.
"""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import generics, permissions, status
from rest_framework.response import Response

from loans import selectors, services
from loans.api_common import (
    COMMAND_ERRORS,
    READ_ERRORS,
    APIView,
    BooleanFilter,
    EnumFilter,
    IdFilter,
    LoanAPIView,
    error_responses,
    parse,
)
from loans.exceptions import InvalidRequestError, NotFoundError
from loans.models import (
    DelinquencyBucket,
    Loan,
    LoanEvent,
    LoanSetup,
    LoanStatus,
    LoanSubStatus,
    Schedule,
    ScheduleEngine,
    SchedulePeriod,
    ServicingStatus,
    TransactionType,
)
from loans.serializers import (
    ActivationResultSerializer,
    BusinessDateSerializer,
    ChargeOffCommandSerializer,
    ChargeOffInputSerializer,
    ContractTerminationInputSerializer,
    LoanCommandResultSerializer,
    LoanCreateSerializer,
    LoanDetailSerializer,
    LoanEventSerializer,
    LoanSerializer,
    PayoffQuerySerializer,
    PayoffQuoteSerializer,
    RepaymentInputSerializer,
    ScheduleSerializer,
    SetupInputSerializer,
    SetupSerializer,
    TerminationCommandSerializer,
    TransactionSerializer,
    UndoInputSerializer,
)


def parse_query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# ------------------------------------------------------------------ auth and business date


class BusinessDateView(APIView):
    command_permissions = {"PUT": "set_business_date"}

    @extend_schema(responses={200: BusinessDateSerializer, **error_responses(401)})
    def get(self, request):
        return Response({"date": selectors.get_business_date().isoformat()})

    @extend_schema(
        request=BusinessDateSerializer,
        responses={200: BusinessDateSerializer, **error_responses(400, 401, 403)},
    )
    def put(self, request):
        data = parse(BusinessDateSerializer, request).validated_data
        row = services.set_business_date(new_date=data["date"], actor=request.user)
        return Response({"date": row.date.isoformat()})


# ------------------------------------------------------------------ loans


class LoanFilter(django_filters.FilterSet):
    status = EnumFilter(choices=LoanStatus.choices)
    subStatus = EnumFilter(field_name="sub_status", choices=LoanSubStatus.choices)
    servicingStatus = EnumFilter(field_name="servicing_status", choices=ServicingStatus.choices)
    scheduleEngine = EnumFilter(field_name="schedule_engine", choices=ScheduleEngine.choices)
    delinquencyBucket = EnumFilter(
        field_name="delinquency_bucket", choices=DelinquencyBucket.choices
    )
    externalId = django_filters.CharFilter(field_name="external_id")
    borrower = IdFilter(field_name="borrower_id")
    chargedOff = BooleanFilter(field_name="charged_off")

    class Meta:
        model = Loan
        fields: list = []


class LoanListCreateView(APIView, generics.ListAPIView):
    serializer_class = LoanSerializer
    filterset_class = LoanFilter
    command_permissions = {"POST": "post_transaction"}
    queryset = Loan.objects.select_related("borrower", "setup").order_by("id")

    @extend_schema(responses={200: LoanSerializer(many=True), **error_responses(400, 401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=LoanCreateSerializer,
        responses={201: LoanSerializer, **error_responses(400, 401, 403, 404)},
        examples=[
            OpenApiExample(
                "A new borrower",
                request_only=True,
                value={
                    "borrower": {
                        "firstName": "Grace",
                        "lastName": "Hopper",
                        "email": "grace@example.com",
                        "timezone": "America/New_York",
                    },
                    "scheduleEngine": "DYNAMIC",
                    "setup": {
                        "loanAmount": "1000.00",
                        "loanRate": "12.0000",
                        "loanTerm": "12",
                        "paymentFrequency": "MONTHLY",
                        "contractDate": "2026-01-01",
                        "firstPaymentDate": "2026-02-01",
                    },
                },
            ),
            OpenApiExample(
                "Interest recalculation (daily accrual, DYNAMIC only)",
                request_only=True,
                value={
                    "borrowerId": 1,
                    "scheduleEngine": "DYNAMIC",
                    "setup": {
                        "loanAmount": "100.00",
                        "loanRate": "7.0000",
                        "loanTerm": "6",
                        "paymentFrequency": "MONTHLY",
                        "contractDate": "2024-01-01",
                        "firstPaymentDate": "2024-02-01",
                        "roundingMode": "HALF_EVEN",
                        "terminationInterest": "ACCRUED_TO_DATE",
                        "interestRecalculation": True,
                    },
                },
            ),
        ],
    )
    def post(self, request):
        data = parse(LoanCreateSerializer, request).validated_data
        loan = services.create_loan(
            actor=request.user,
            setup=dict(data["setup"]),
            borrower_data=dict(data["borrower"]) if data.get("borrower") else None,
            borrower_id=data.get("borrower_id") if not data.get("borrower") else None,
            external_id=data.get("external_id"),
            schedule_engine=data["schedule_engine"],
        )
        loan = selectors.get_loan(loan_id=loan.pk)
        return Response(LoanSerializer(loan).data, status=status.HTTP_201_CREATED)


ASSOCIATIONS = {"repaymentSchedule", "transactions"}


def loan_detail_payload(loan: Loan, associations: set[str] | None = None) -> dict:
    """The loan with its summary and the requested associations, in a constant query count."""
    associations = associations or set()
    as_of = selectors.get_business_date()
    schedule = Schedule.objects.filter(loan=loan, is_current=True).first()
    # Rows, not model instances: a 30-year loan has 360 periods and maybe thousands of
    # transactions, and instantiating them was a third of this view's time.
    periods = selectors.period_states(schedule)
    loan.summary_figures = selectors.loan_summary(
        loan, as_of=as_of, schedule=schedule, periods=periods
    )
    if "repaymentSchedule" in associations:
        if schedule is not None:
            schedule.period_rows = periods
        loan.current_schedule_version = schedule
    if "transactions" in associations:
        loan.transaction_rows = selectors.transaction_rows(loan)
    try:
        return LoanDetailSerializer(loan).data
    finally:  # the loan may outlive the request in reference cycles: drop the rows now
        for attr in ("transaction_rows", "current_schedule_version", "summary_figures"):
            loan.__dict__.pop(attr, None)


class LoanDetailView(LoanAPIView):
    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        # DRF keeps ``view.response`` and ``response.renderer_context["view"]``: a reference
        # cycle holding this half-megabyte payload until the next full garbage collection, so
        # a worker's memory grew by ~40 MiB over 1,000 requests. Without the view's link the
        # payload is freed as soon as the response has been sent.
        self.response = None
        return response

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "associations",
                OpenApiTypes.STR,
                description="all, or a comma list of repaymentSchedule, transactions",
            )
        ],
        responses={200: LoanDetailSerializer, **READ_ERRORS},
    )
    def get(self, request, **kwargs):
        loan = self.get_loan()
        raw = request.query_params.get("associations", "")
        requested = {a.strip() for a in raw.split(",") if a.strip()}
        if "all" in requested:
            requested = set(ASSOCIATIONS)
        unknown = requested - ASSOCIATIONS
        if unknown:
            raise InvalidRequestError(
                f"Unknown associations: {', '.join(sorted(unknown))}; use all, "
                "repaymentSchedule or transactions.",
                code="invalid_associations",
            )
        return Response(loan_detail_payload(loan, requested))


class LoanSchedulesView(LoanAPIView):
    """Every schedule version of the loan, newest first (earlier versions stay readable)."""

    @extend_schema(responses={200: ScheduleSerializer(many=True), **READ_ERRORS})
    def get(self, request, **kwargs):
        loan = self.get_loan()
        versions = (
            Schedule.objects.filter(loan=loan)
            .prefetch_related(
                Prefetch("periods", queryset=SchedulePeriod.objects.order_by("period"))
            )
            .order_by("-version")
        )
        return Response(ScheduleSerializer(versions, many=True).data)


class LoanSetupView(LoanAPIView):
    """The draft setup while a modification is in progress, else the setup in force."""

    @extend_schema(responses={200: SetupSerializer, **READ_ERRORS})
    def get(self, request, **kwargs):
        loan = self.get_loan()
        draft = LoanSetup.objects.filter(loan=loan, active=False).first()
        return Response(SetupSerializer(draft or loan.setup).data)


class SetupUpdateView(APIView):
    def required_permission(self, request):
        if request.method in permissions.SAFE_METHODS:
            return None
        setup = LoanSetup.objects.filter(pk=self.kwargs["setup_id"]).only("mod_id").first()
        return "modify_loan" if setup is not None and setup.mod_id else "post_transaction"

    def get_setup(self) -> LoanSetup:
        setup = LoanSetup.objects.filter(pk=self.kwargs["setup_id"]).first()
        if setup is None:
            raise NotFoundError(
                f"Setup {self.kwargs['setup_id']} was not found.", code="setup_not_found"
            )
        return setup

    @extend_schema(responses={200: SetupSerializer, **READ_ERRORS})
    def get(self, request, setup_id):
        return Response(SetupSerializer(self.get_setup()).data)

    @extend_schema(
        request=SetupInputSerializer,
        responses={200: SetupSerializer, **COMMAND_ERRORS},
        examples=[
            OpenApiExample(
                "New amount and rate",
                request_only=True,
                value={"loanAmount": "1500.00", "loanRate": "9.5000"},
            ),
            OpenApiExample(
                "Switch interest recalculation on",
                request_only=True,
                value={"interestRecalculation": True},
            ),
        ],
    )
    def patch(self, request, setup_id):
        setup = self.get_setup()
        changes = dict(parse(SetupInputSerializer, request).validated_data)
        setup = services.update_setup(setup=setup, changes=changes, actor=request.user)
        return Response(SetupSerializer(setup).data)

    put = patch


class ActivateView(LoanAPIView):
    """``POST /loans/{id}/activate`` for the core: a PENDING loan, under ``post_transaction``.

    The modifications app routes the path to its subclass, which activates a draft
    modification (under ``modify_loan``) and hands every other loan to ``activate``.
    """

    def required_permission(self, request):
        return "post_transaction"

    def activate(self, loan, actor):
        return services.activate_loan(loan=loan, actor=actor)

    @extend_schema(request=None, responses={200: ActivationResultSerializer, **COMMAND_ERRORS})
    def post(self, request, **kwargs):
        result = self.activate(self.get_loan(), request.user)
        payload = loan_detail_payload(selectors.get_loan(loan_id=result.loan.pk))
        return Response({"activated": result.activated, **payload})


# ------------------------------------------------------------------ transactions

TRANSACTION_COMMANDS = {
    "repayment": TransactionType.REPAYMENT,
    "charge": TransactionType.CHARGE,
    "advancement": TransactionType.ADVANCEMENT,
    "credit": TransactionType.CREDIT,
}

# DESIGN §9: the payoff (exactly the payoff total for the date) and the credit balance refund
# (at most the credit balance); the same body as a repayment, a transaction back.
SETTLEMENT_COMMANDS = {
    "payoff": services.post_payoff,
    "creditBalanceRefund": services.post_credit_balance_refund,
}

# The other commands on the transactions resource and the permission each needs (their
# handlers are ``contract_termination_command`` and ``undo_contract_termination_command``).
TERMINATION_COMMANDS = {
    "contractTermination": "terminate_contract",
    "undoContractTermination": "terminate_contract",
    "chargeOff": "charge_off",
    "undoChargeOff": "charge_off",
}


class TransactionsView(LoanAPIView):
    def required_permission(self, request):
        if request.method in permissions.SAFE_METHODS:
            return None
        command = request.query_params.get("command", "")
        return TERMINATION_COMMANDS.get(command, "post_transaction")

    @extend_schema(responses={200: TransactionSerializer(many=True), **READ_ERRORS})
    def get(self, request, **kwargs):
        loan = self.get_loan()
        return Response(TransactionSerializer(selectors.loan_transactions(loan), many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "command",
                OpenApiTypes.STR,
                required=True,
                enum=[
                    *TRANSACTION_COMMANDS,
                    *SETTLEMENT_COMMANDS,
                    "contractTermination",
                    "undoContractTermination",
                    "chargeOff",
                    "undoChargeOff",
                ],
            )
        ],
        request=PolymorphicProxySerializer(
            component_name="TransactionCommandInput",
            serializers=[
                RepaymentInputSerializer,
                ContractTerminationInputSerializer,
                ChargeOffInputSerializer,
                UndoInputSerializer,
            ],
            resource_type_field_name=None,
        ),
        responses={
            200: PolymorphicProxySerializer(
                component_name="TransactionCommandResult",
                serializers=[
                    TransactionSerializer,
                    LoanCommandResultSerializer,
                ],
                resource_type_field_name=None,
            ),
            **COMMAND_ERRORS,
        },
        description="repayment, charge, advancement, credit: a RepaymentInput body, the "
        "transaction back. payoff: a RepaymentInput body whose transactionAmount must be the "
        "payoff total for the transactionDate (GET .../payoff; else 400 payoff_amount_mismatch "
        "giving it); the loan is CLOSED. creditBalanceRefund: a RepaymentInput body, at most "
        "the credit balance (400 refund_above_credit_balance). contractTermination (a ContractTerminationInput body) and "
        "undoContractTermination (an UndoInput body): a TerminationCommand back. chargeOff "
        "(a ChargeOffInput body; permission charge_off): a non-cash CHARGE_OFF transaction on "
        "the business date carrying everything outstanding, interest stops accruing; 409 "
        "charge_off_not_allowed naming each failed check (loan_not_active, "
        "already_charged_off, modification_in_progress). undoChargeOff (an UndoInput body): "
        "only while the charge-off is the latest transaction (409 charge_off_not_latest, "
        "not_charged_off). Both answer a ChargeOffCommand.",
        examples=[
            OpenApiExample(
                "A repayment",
                request_only=True,
                value={"transactionDate": "2026-02-18", "transactionAmount": "10.00"},
            )
        ],
    )
    def post(self, request, **kwargs):
        command = request.query_params.get("command", "")
        if command == "contractTermination":
            return contract_termination_command(self, request, self.get_loan())
        if command == "undoContractTermination":
            return undo_contract_termination_command(self, request, self.get_loan())
        if command == "chargeOff":
            return charge_off_command(self, request, self.get_loan())
        if command == "undoChargeOff":
            return undo_charge_off_command(self, request, self.get_loan())
        if command in SETTLEMENT_COMMANDS:
            loan = self.get_loan()
            serializer = parse(RepaymentInputSerializer, request)
            data = serializer.validated_data
            tx = SETTLEMENT_COMMANDS[command](
                loan=loan,
                on=data["transactionDate"],
                amount=serializer.amount_value,
                external_id=data.get("externalId"),
                note=data.get("note", ""),
                actor=request.user,
            )
            return Response(TransactionSerializer(tx).data)
        if command not in TRANSACTION_COMMANDS:
            known = ", ".join([*TRANSACTION_COMMANDS, *SETTLEMENT_COMMANDS, *TERMINATION_COMMANDS])
            raise InvalidRequestError(
                f"Unknown or missing command {command!r}; use one of {known}.",
                code="unknown_command",
            )
        loan = self.get_loan()
        amount_field = "transactionAmount" if command == "repayment" else "amount"
        serializer = parse(
            RepaymentInputSerializer, request, context={"amount_field": amount_field}
        )
        data = serializer.validated_data
        tx = services.post_transaction(
            loan=loan,
            type=TRANSACTION_COMMANDS[command],
            on=data["transactionDate"],
            amount=serializer.amount_value,
            external_id=data.get("externalId"),
            note=data.get("note", ""),
            actor=request.user,
        )
        return Response(TransactionSerializer(tx).data)


class TransactionDetailView(LoanAPIView):
    def required_permission(self, request):
        return None if request.method in permissions.SAFE_METHODS else "post_transaction"

    @extend_schema(responses={200: TransactionSerializer, **READ_ERRORS})
    def get(self, request, tx_id, **kwargs):
        loan = self.get_loan()
        tx = selectors.loan_transactions(loan).filter(pk=tx_id).first()
        if tx is None:
            raise NotFoundError(f"Transaction {tx_id} was not found.", code="transaction_not_found")
        return Response(TransactionSerializer(tx).data)

    @extend_schema(
        parameters=[OpenApiParameter("command", OpenApiTypes.STR, required=True, enum=["undo"])],
        request=UndoInputSerializer,
        responses={200: TransactionSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, tx_id, **kwargs):
        command = request.query_params.get("command", "")
        if command != "undo":
            raise InvalidRequestError(
                f"Unknown or missing command {command!r}; use undo.", code="unknown_command"
            )
        loan = self.get_loan()
        data = parse(UndoInputSerializer, request).validated_data
        tx = services.reverse_transaction(
            loan=loan,
            transaction_id=tx_id,
            note=data.get("note", ""),
            reversal_external_id=data.get("reversalExternalId"),
            actor=request.user,
        )
        return Response(TransactionSerializer(tx).data)


class LoanPayoffView(LoanAPIView):
    """The payoff quote (DESIGN §9): what settles the loan on the date and on each of the
    following days, assuming no payment in between."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "date",
                OpenApiTypes.DATE,
                description="the first date quoted (default: the business date); not before "
                "the latest transaction (400 date_before_last_transaction)",
            ),
            OpenApiParameter(
                "days",
                OpenApiTypes.INT,
                description=f"how many following days to quote (default 10, 0 to "
                f"{selectors.MAX_QUOTE_DAYS})",
            ),
        ],
        responses={200: PayoffQuoteSerializer, **READ_ERRORS, **error_responses(409)},
    )
    def get(self, request, **kwargs):
        loan = self.get_loan()
        query = parse_query(PayoffQuerySerializer, request)
        on = query.get("date") or selectors.get_business_date()
        quote = selectors.payoff_quotes(loan, on=on, days=query.get("days", 10))
        return Response(PayoffQuoteSerializer(quote).data)


class LoanEventsView(LoanAPIView):
    """The loan's audit trail, newest first. Read-only."""

    @extend_schema(responses={200: LoanEventSerializer(many=True), **READ_ERRORS})
    def get(self, request, **kwargs):
        loan = self.get_loan()
        events = LoanEvent.objects.filter(loan=loan).select_related("actor")
        return Response(LoanEventSerializer(events, many=True).data)


# ------------------------------------------------------------------ contract termination (seed 002)


def termination_payload(result: services.TerminationResult, resource_external_id) -> dict:
    return TerminationCommandSerializer(
        {
            "loanId": result.loan.pk,
            "resourceId": result.transaction.pk,
            "resourceExternalId": resource_external_id,
            "subStatus": result.loan.sub_status,
            "transaction": result.transaction,
        }
    ).data


def contract_termination_command(view, request, loan: Loan) -> Response:
    """``POST .../transactions?command=contractTermination``: dated on the business date."""
    data = parse(ContractTerminationInputSerializer, request).validated_data
    result = services.terminate_contract(
        loan=loan,
        actor=request.user,
        note=data.get("note", ""),
        external_id=data.get("externalId") or None,
    )
    return Response(termination_payload(result, result.transaction.external_id))


def undo_contract_termination_command(view, request, loan: Loan) -> Response:
    """``POST .../transactions?command=undoContractTermination``."""
    data = parse(UndoInputSerializer, request).validated_data
    result = services.undo_contract_termination(
        loan=loan,
        actor=request.user,
        note=data.get("note", ""),
        reversal_external_id=data.get("reversalExternalId") or None,
    )
    return Response(termination_payload(result, result.transaction.reversal_external_id))


# ------------------------------------------------------------------ charge-off (DESIGN §12)


def charge_off_payload(result: services.ChargeOffResult, resource_external_id) -> dict:
    return ChargeOffCommandSerializer(
        {
            "loanId": result.loan.pk,
            "resourceId": result.transaction.pk,
            "resourceExternalId": resource_external_id,
            "subStatus": result.loan.sub_status,
            "chargedOff": result.loan.charged_off,
            "transaction": result.transaction,
        }
    ).data


def charge_off_command(view, request, loan: Loan) -> Response:
    """``POST .../transactions?command=chargeOff``: dated on the business date."""
    data = parse(ChargeOffInputSerializer, request).validated_data
    result = services.charge_off(
        loan,
        actor=request.user,
        note=data.get("note", ""),
        external_id=data.get("externalId") or None,
        reason=data.get("reason", ""),
    )
    return Response(charge_off_payload(result, result.transaction.external_id))


def undo_charge_off_command(view, request, loan: Loan) -> Response:
    """``POST .../transactions?command=undoChargeOff``."""
    data = parse(UndoInputSerializer, request).validated_data
    result = services.undo_charge_off(
        loan,
        actor=request.user,
        note=data.get("note", ""),
        reversal_external_id=data.get("reversalExternalId") or None,
    )
    return Response(charge_off_payload(result, result.transaction.reversal_external_id))


# ------------------------------------------------------------------ the API root


class ApiRootView(APIView):
    """``GET /api/v1/``: where the documentation is (public, not an operation of the schema)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(exclude=True)
    def get(self, request):
        return Response(
            {
                "name": "Loan servicing API",
                "version": "v1",
                "docs": request.build_absolute_uri(reverse("swagger-ui")),
                "schema": request.build_absolute_uri(reverse("schema")),
                "admin": request.build_absolute_uri(reverse("admin:index")),
                "authentication": "Authorization: Token <key> (POST /api/v1/auth/token)",
            }
        )
