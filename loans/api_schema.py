"""The project's OpenAPI schema class (``DEFAULT_SCHEMA_CLASS``).

It documents, for every operation, what the cross-cutting machinery can answer, so views added
later are described correctly without each one repeating it:

* the error responses (one shape, ``loans.api_common.ERROR_SERIALIZER``): 400 everywhere, 401
  where authentication is required, 403 and 409 on commands (unsafe methods; 409 also covers a
  reused ``Idempotency-Key``), 404 on paths with parameters, 413 where a body is read, 429
  (throttling). A view's own
  ``@extend_schema(responses=...)`` wins where it documents the same status;
* the ``Idempotency-Key`` request header and ``Idempotent-Replayed`` response header on the
  methods ``loans.idempotency.IdempotentMixin`` handles;
* output fields a serializer only includes on request (``schema_optional_fields``) are not
  marked required;
* distinct operation ids for commands on one item (``POST /x/{id}``);
* text filters with ``minLength: 1`` (an empty filter is refused);
* decimal strings that need at least one digit (drf-spectacular's default pattern accepts
  ``""``, ``"-"`` and ``"."``, which the API rejects), without a sign when the field's minimum
  is not negative.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import permissions, serializers
from rest_framework.settings import api_settings

from loans.idempotency import HEADER, MAX_KEY_LENGTH, REPLAYED_HEADER, IdempotentMixin

# What a stored response can be (a 401 or a throttled request never reaches the view).
REPLAYABLE_STATUSES = [200, 201, 202, 204, 400, 403, 404, 409]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
BODY_METHODS = {"POST", "PUT", "PATCH"}
ERROR_DESCRIPTIONS = {
    400: "Invalid input",
    401: "Not authenticated",
    403: "Permission denied",
    404: "Not found",
    409: "Conflict with the loan's state, or a reused Idempotency-Key",
    413: "The request body is too large",
    429: "Too many requests (throttled)",
}


# Swagger's one-line summary of each operation a view does not name itself with
# ``@extend_schema(summary=...)``; both path forms of a loan share one entry.
# ``tests/test_api_docs.py`` fails for an operation without a summary or a description.
SUMMARIES = {
    ("POST", "/auth/token"): "Get an API token",
    ("GET", "/business-date"): "Read the business date",
    ("PUT", "/business-date"): "Set the business date",
    ("GET", "/loan-setups/{setup_id}"): "Read a setup",
    ("PUT", "/loan-setups/{setup_id}"): "Replace a setup's terms",
    ("PATCH", "/loan-setups/{setup_id}"): "Change a setup's terms",
    ("GET", "/loans"): "List loans",
    ("POST", "/loans"): "Create a loan",
    ("GET", "/loans/{loan}"): "Read a loan",
    ("POST", "/loans/{loan}/activate"): "Activate a loan",
    ("GET", "/loans/{loan}/communication-schedules"): "List communication schedules",
    ("POST", "/loans/{loan}/communication-schedules"): "Create a communication schedule",
    ("GET", "/loans/{loan}/events"): "Read the loan's audit trail",
    ("GET", "/loans/{loan}/payoff"): "Quote the payoff for a date and the following days",
    ("GET", "/loans/{loan}/modifications"): "List modifications",
    ("POST", "/loans/{loan}/modifications"): "Start a modification",
    ("POST", "/loans/{loan}/modifications/cancel"): "Cancel the newest modification",
    ("GET", "/loans/{loan}/modifications/pre-mod-test"): "Transactions after a date",
    ("POST", "/loans/{loan}/roll-payment"): "Roll the payment",
    ("GET", "/loans/{loan}/scheduled-communications"): "List scheduled communications",
    ("POST", "/loans/{loan}/scheduled-communications"): "Schedule a communication",
    ("GET", "/loans/{loan}/scheduled-payments"): "List scheduled payments",
    ("POST", "/loans/{loan}/scheduled-payments"): "Schedule a payment",
    ("GET", "/loans/{loan}/schedules"): "List schedule versions",
    ("GET", "/loans/{loan}/setup"): "Read the setup in force (or the draft)",
    ("GET", "/loans/{loan}/transactions"): "List transactions",
    ("POST", "/loans/{loan}/transactions"): "Post a transaction command",
    ("GET", "/loans/{loan}/transactions/{tx_id}"): "Read a transaction",
    ("POST", "/loans/{loan}/transactions/{tx_id}"): "Undo a transaction",
    ("POST", "/communication-schedules/{item_id}/cancel"): "Cancel a communication schedule",
    ("POST", "/scheduled-communications/{item_id}/cancel"): "Cancel a scheduled communication",
    ("POST", "/scheduled-payments/{item_id}/cancel"): "Cancel a scheduled payment",
}


def summary_key(method: str, path: str) -> tuple[str, str]:
    """``("GET", "/loans/{loan}/setup")`` for both path forms of a loan."""
    path = path.removeprefix("/api/v1")
    for form in ("/loans/external-id/{external_id}", "/loans/{loan_id}"):
        if path.startswith(form):
            path = "/loans/{loan}" + path[len(form) :]
    return method.upper(), path


class AutoSchema(openapi.AutoSchema):
    def get_summary(self):
        return super().get_summary() or SUMMARIES.get(summary_key(self.method, self.path))

    def _requires_auth(self) -> bool:
        if not self.view.get_authenticators():
            return False
        return not any(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions())

    def _is_idempotent(self) -> bool:
        return isinstance(self.view, IdempotentMixin) and self.method in getattr(
            self.view, "idempotent_methods", ()
        )

    def default_error_statuses(self) -> list[int]:
        statuses = [400]
        if self._requires_auth():
            statuses.append(401)
            if self.method in UNSAFE:
                statuses.append(403)
        paginated = self._is_list_view() and getattr(self.view, "pagination_class", None)
        if "{" in self.path or paginated:  # an unknown id, or a page past the end
            statuses.append(404)
        if self.method in UNSAFE:
            statuses.append(409)
        if self.method in BODY_METHODS:
            statuses.append(413)
        statuses.append(429)
        return statuses

    def _get_filter_parameters(self):
        """A filter given must have a value (``loans.api_common.FilterBackend`` refuses
        ``?name=``)."""
        parameters = super()._get_filter_parameters()
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if schema.get("type") == "string":
                schema.setdefault("minLength", 1)
        return parameters

    def get_operation_id(self):
        """drf-spectacular names POST ``/x`` and POST ``/x/{id}`` both ``x_create``; the second
        is a command on one item (e.g. ``?command=undo`` on a transaction)."""
        operation_id = super().get_operation_id()
        if self.method == "POST" and self.path.rstrip("/").endswith("}"):
            return operation_id.removesuffix("_create") + "_item_command"
        return operation_id

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self._is_idempotent() and self._requires_auth():
            parameters += [
                OpenApiParameter(
                    HEADER,
                    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
                    OpenApiParameter.HEADER,
                    required=False,
                    description="Makes a retry safe: the same key, user, path and body replay "
                    "the stored response instead of running the command again (24 h).",
                ),
                OpenApiParameter(
                    REPLAYED_HEADER,
                    {"type": "string", "enum": ["true"]},
                    OpenApiParameter.HEADER,
                    response=REPLAYABLE_STATUSES,
                    description="Present when the response is a replay of a stored one.",
                ),
            ]
        return parameters

    def _get_response_bodies(self, direction="response"):
        from loans.api_common import ERROR_SERIALIZER  # api_common imports DRF views

        responses = super()._get_response_bodies(direction)
        for status in self.default_error_statuses():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    OpenApiResponse(ERROR_SERIALIZER, description=ERROR_DESCRIPTIONS[status]),
                    str(status),
                    direction=direction,
                )
        return responses

    def _map_basic_serializer(self, serializer, direction):
        """A serializer lists in ``schema_optional_fields`` the output fields it leaves out
        unless asked for (drf-spectacular marks every read-only field required)."""
        schema = super()._map_basic_serializer(serializer, direction)
        optional = set(getattr(serializer, "schema_optional_fields", ()))
        if optional and "required" in schema:
            schema["required"] = [name for name in schema["required"] if name not in optional]
            if not schema["required"]:
                del schema["required"]
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            isinstance(field, serializers.DecimalField)
            and isinstance(schema, dict)
            and "pattern" in schema
            and getattr(field, "coerce_to_string", None) is not False
            and api_settings.COERCE_DECIMAL_TO_STRING
            and field.max_whole_digits
        ):
            if hasattr(field, "schema_pattern"):  # the pattern the field itself applies
                schema["pattern"] = field.schema_pattern
            else:
                sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
                places = rf"(?:\.\d{{1,{field.decimal_places}}})?" if field.decimal_places else ""
                schema["pattern"] = rf"^{sign}\d{{1,{field.max_whole_digits}}}{places}$"
        if direction == "request" and getattr(field, "accepts_json_number", False):
            schema = decimal_request_schema(field, schema)
        return schema


def decimal_request_schema(field, string_schema: dict) -> dict:
    """An input decimal is the documented string or a JSON number with the same constraints
    (``loans.serializers.StrictDecimalField``; Fineract and LoanPro take numbers too):
    ``{"anyOf": [string with the pattern, number with minimum, maximum and multipleOf]}``.
    ``multipleOf`` 0.01 is "at most two decimal places" as the JSON text says it: ``12.345``
    is outside the schema and refused, ``12.34`` in it and taken at its written value."""
    string_schema = dict(string_schema)
    shared = {
        key: string_schema.pop(key)
        for key in ("nullable", "description", "readOnly", "writeOnly", "default")
        if key in string_schema
    }
    places = field.decimal_places or 0
    largest = Decimal(10) ** field.max_whole_digits - Decimal(1).scaleb(-places)
    number = {"type": "number"}
    number["minimum"] = float(field.min_value) if field.min_value is not None else float(-largest)
    maximum = largest if field.max_value is None else min(largest, field.max_value)
    number["maximum"] = float(maximum)
    if places:
        number["multipleOf"] = float(Decimal(1).scaleb(-places))
    else:
        number["type"] = "integer"
    return {"anyOf": [string_schema, number], **shared}
