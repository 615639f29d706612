"""What every API module shares: the one exception handler (the error shape of DESIGN §6),
pagination, per-command permissions, the API view base class and the two path forms of a loan.

**Every API view must inherit from ``loans.api_common.APIView``** (or ``LoanAPIView``), never
from ``rest_framework.views.APIView`` directly; generic views combine it first, e.g.
``class V(APIView, generics.ListAPIView)``. The base gives every POST command the
``Idempotency-Key`` behaviour of ``loans.idempotency``. ``tests/test_idempotency.py`` walks the
URLconf and fails for a view that does not inherit it.
"""

from __future__ import annotations

import logging
from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.urls import path
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, serializers, views
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from loans.api_policies import CommandPermission
from loans.exceptions import DomainError
from loans.idempotency import IdempotentMixin
from loans.selectors import get_loan

logger = logging.getLogger(__name__)


def parse(serializer_class, request, **kwargs):
    """The request body validated by ``serializer_class`` (a 400 with field errors if not);
    returns the serializer (``.validated_data`` and any parsed extras)."""
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer


DRF_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def _flatten(detail, prefix: str = "") -> list[dict]:
    """DRF's nested ValidationError detail -> [{"field", "detail", "code"}]."""
    items: list[dict] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = prefix if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else key)
            items.extend(_flatten(value, name))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list) and not isinstance(value, str):
                items.extend(_flatten(value, f"{prefix}[{index}]" if prefix else str(index)))
            else:
                items.extend(_flatten(value, prefix))
    else:
        items.append(
            {
                "field": prefix or None,
                "detail": str(detail),
                "code": getattr(detail, "code", "invalid"),
            }
        )
    return items


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def django_validation_errors(exc: DjangoValidationError) -> list[dict]:
    """A Django ``ValidationError`` as field errors, keeping its field names (in the API's
    camelCase; ``__all__`` is no field)."""
    if not hasattr(exc, "error_dict"):
        return [
            {"field": None, "detail": m, "code": e.code or "invalid"}
            for e in exc.error_list
            for m in e.messages
        ]
    return [
        {
            "field": None if field == "__all__" else _camel(field),
            "detail": m,
            "code": e.code or "invalid",
        }
        for field, errors in exc.error_dict.items()
        for e in errors
        for m in e.messages
    ]


def error_body(code: str, detail: str, errors: list | None = None) -> dict:
    """The one error shape: exactly ``{code, detail, errors}`` (anything more about one field,
    e.g. the values it accepts, goes in that field's item of ``errors``)."""
    return {"code": code, "detail": detail, "errors": errors or []}


TOO_LARGE_DETAIL = "The request body is too large."


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("request_too_large", TOO_LARGE_DETAIL), status=413)
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.errors), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        errors = django_validation_errors(exc)
        return Response(
            error_body("invalid", "; ".join(e["detail"] for e in errors), errors), status=400
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first = errors[0] if errors else {"field": None, "detail": "Invalid input."}
        detail = f"{first['field']}: {first['detail']}" if first.get("field") else first["detail"]
        response.data = error_body("invalid", f"Invalid input. {detail}", errors)
        return response
    code = DRF_CODES.get(type(exc))
    if code is None:
        code = getattr(exc, "default_code", "error")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    response.data = error_body(code, str(detail))
    return response


class APIView(IdempotentMixin, views.APIView):
    """The base of every API view: DRF's APIView plus ``Idempotency-Key`` on POST."""


class LoanAPIView(APIView):
    """An API view under one of the two loan path forms."""

    permission_classes = [CommandPermission]

    def get_loan(self):
        return get_loan(
            loan_id=self.kwargs.get("loan_id"), external_id=self.kwargs.get("external_id")
        )


def loan_paths(suffix: str, view, name: str) -> list:
    """Both forms of a loan path: ``loans/{id}{suffix}`` and ``loans/external-id/{externalId}...``."""
    return [
        path(f"loans/<int:loan_id>{suffix}", view, name=name),
        path(f"loans/external-id/<str:external_id>{suffix}", view, name=f"{name}-by-external-id"),
    ]


ERROR_SERIALIZER = inline_serializer(
    name="Error",
    fields={
        "code": serializers.CharField(),
        "detail": serializers.CharField(),
        "errors": serializers.ListField(child=serializers.DictField(), required=False),
    },
)


def error_responses(*statuses: int) -> dict:
    descriptions = {
        400: "Invalid input",
        401: "Not authenticated",
        403: "Permission denied",
        404: "Not found",
        409: "Conflict with the loan's state",
        503: "A service the request needs (the task broker) is unavailable",
    }
    return {s: OpenApiResponse(ERROR_SERIALIZER, description=descriptions[s]) for s in statuses}


COMMAND_ERRORS = error_responses(400, 401, 403, 404, 409)
READ_ERRORS = error_responses(400, 401, 404)

LOAN_ID_PARAMETERS = [
    OpenApiParameter("loan_id", int, OpenApiParameter.PATH, required=False),
    OpenApiParameter("external_id", str, OpenApiParameter.PATH, required=False),
]


class FilterBackend(DjangoFilterBackend):
    """django-filter, refusing a filter given with an empty value (``?scheduledDateTo=``)
    instead of ignoring it: the schema says what a value must be (``minLength: 1`` on text
    filters, ``loans.api_schema``), and the API agrees (issue 16)."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            refused = {}
            for name in filterset.filters:
                values = request.query_params.getlist(name)
                if not all(v.strip() for v in values):
                    refused[name] = ["May not be blank."]
                elif len(values) > 1:  # django-filter would use the last and drop the others
                    refused[name] = ["Give one value."]
            if refused:
                raise exceptions.ValidationError(refused)
        return filterset


class EnumFilter(django_filters.ChoiceFilter):
    """One of ``choices`` (a ``TextChoices``' choices); any other value is a 400 naming the
    parameter and listing the values it accepts, never ignored (``?delinquencyBucket=NOPE``)."""

    def __init__(self, *args, choices, **kwargs):
        allowed = ", ".join(value for value, _ in choices)
        kwargs.setdefault("error_messages", {"invalid_choice": f"Must be one of {allowed}."})
        super().__init__(*args, choices=choices, **kwargs)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": 2**63 - 1})
class IdFilter(django_filters.NumberFilter):
    """An id: a whole number a database key can hold (a float or 1e82 is a 400, not a 500)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date and time, converted to UTC: Python accepts offsets PostgreSQL refuses
    (+21:24), and a time near year 1 or 9999 can fall outside the range once shifted."""

    def to_python(self, value):
        try:
            value = super().to_python(value)
            return value if value is None else value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Out of the supported date range.", code="overflow")


class StrictBooleanField(forms.Field):
    """``true`` or ``false``, as the schema's boolean reads in a query; anything else is a 400
    (django-filter's own BooleanFilter ignores it and filters nothing: schemathesis)."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value in ("true", "True", "1"):
            return True
        if value in ("false", "False", "0"):
            return False
        raise DjangoValidationError("Must be true or false.", code="invalid")


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
