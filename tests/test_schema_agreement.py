"""Issue 16, finding 6: the schema and the validation agree. A decimal string is accepted
exactly when it matches the schema's pattern ("0" where the minimum is 0.01 is outside it);
an empty filter and a number where the schema says string are refused."""

from __future__ import annotations

import re
from decimal import Decimal

import jsonschema_rs
import pytest
from rest_framework import serializers

from loans.api_schema import decimal_request_schema
from loans.serializers import (
    Money,
    PositiveMoney,
    SetupInputSerializer,
    StrictDecimalField,
    TermField,
)
from tests.api_catalog import api_schema

CANDIDATES = [
    "0", "0.0", "0.00", "0.01", "0.1", "0.10", "0.5", "1", "1.0", "10.50", "10.505", "007",
    "00.50", "1.", ".5", "-1", "-0.01", "+1", " 1.00", "1.00 ", "1e3", "NaN", "999999999999.99",
    "9999999999999", "0.0001", "360", "12.5", "1200", "1201",
]  # fmt: skip
FIELDS = {
    "positive money": PositiveMoney(),
    "money": Money(),
    "rate": StrictDecimalField(
        max_digits=9, decimal_places=4, min_value=Decimal("0"), max_value=Decimal("1000")
    ),
    "term": TermField(min_value=Decimal("0.0001"), max_value=Decimal("1200")),
    "late fee": SetupInputSerializer().fields["lateFeeAmount"],
}


def accepts(field, value) -> bool:
    try:
        field.run_validation(value)
    except serializers.ValidationError:
        return False
    return True


@pytest.mark.parametrize("name", FIELDS)
def test_a_decimal_string_is_accepted_exactly_when_it_matches_the_pattern(name):
    field = FIELDS[name]
    pattern = field.schema_pattern
    bounded = [
        v
        for v in CANDIDATES
        if re.fullmatch(pattern, v) and not (field.max_value and Decimal(v) > field.max_value)
    ]
    assert [v for v in CANDIDATES if accepts(field, v)] == bounded


NUMBER_CANDIDATES = [
    0, 0.0, -0.0, 0.01, 0.001, 0.1, 0.5, 1, 1.5, 10.5, 10.505, 12.34, 12.345, 0.07, 0.57, -1,
    -0.01, 1e3, 1e-05, 0.0001, 0.00001, 360, 12.5, 1200, 1201, 1200.0001, 999999999999.99,
    1e12, 1e20, 10**15, True, False,
]  # fmt: skip


def request_schema(field) -> dict:
    string = {"type": "string", "format": "decimal", "pattern": field.schema_pattern}
    return decimal_request_schema(field, string)


@pytest.mark.parametrize("name", FIELDS)
def test_a_json_number_is_accepted_exactly_when_the_schema_allows_it(name):
    """Fineract and LoanPro take JSON numbers for amounts, so the API does, and the schema says
    so: a number with at most the field's places inside its bounds (multipleOf, minimum,
    maximum), validated here as schemathesis validates it (jsonschema-rs)."""
    field = FIELDS[name]
    validator = jsonschema_rs.validator_for(request_schema(field))
    allowed = [v for v in NUMBER_CANDIDATES if validator.is_valid(v)]
    assert [v for v in NUMBER_CANDIDATES if accepts(field, v)] == allowed
    assert allowed  # the bounds leave numbers to accept


def test_the_number_branch_of_a_positive_amount():
    assert request_schema(PositiveMoney())["anyOf"][1] == {
        "type": "number",
        "minimum": 0.01,
        "maximum": 999999999999.99,
        "multipleOf": 0.01,
    }
    assert request_schema(FIELDS["rate"])["anyOf"][1] == {
        "type": "number",
        "minimum": 0.0,
        "maximum": 1000.0,
        "multipleOf": 0.0001,
    }


@pytest.mark.django_db
def test_a_loan_created_with_json_numbers_reads_them_as_written(api):
    body = {
        "externalId": "NUM-1",
        "borrower": {"firstName": "A", "lastName": "B", "email": "a@b.example"},
        "setup": {
            "loanAmount": 1000.5,
            "loanRate": 12.25,
            "loanTerm": 12,
            "contractDate": "2026-01-01",
            "firstPaymentDate": "2026-02-01",
        },
    }
    response = api.post("/api/v1/loans", body, format="json")
    assert response.status_code == 201, response.content
    setup = api.get(f"/api/v1/loans/{response.json()['id']}/setup").json()
    assert (setup["loanAmount"], setup["loanRate"], setup["loanTerm"]) == (
        "1000.50",
        "12.2500",
        "12",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "code", "detail"),
    [
        ("loanAmount", 12.345, "max_decimal_places", "Ensure that there are no more than 2 decimal places."),
        ("loanAmount", 0, "min_value", "Ensure this value is greater than or equal to 0.01."),
        ("loanAmount", True, "invalid", "A valid number is required."),
        ("loanAmount", [1], "invalid", "A valid number is required."),
        ("loanRate", 12.00001, "max_decimal_places", "Ensure that there are no more than 4 decimal places."),
        ("loanTerm", 1201, "max_value", "Ensure this value is less than or equal to 1200."),
    ],
)  # fmt: skip
def test_a_json_number_outside_the_schema_is_refused(api, field, value, code, detail):
    from tests.factories import make_loan

    setup_id = make_loan(external_id="NUM-2").setup_id
    url = f"/api/v1/loan-setups/{setup_id}"
    response = api.patch(url, {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"] == [{"field": field, "detail": detail, "code": code}]
    response = api.patch(url, {"loanAmount": 250.75}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["loanAmount"] == "250.75"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "code", "detail"),
    [
        ("loanAmount", "-5.00", "min_value", "Ensure this value is greater than or equal to 0.01."),
        ("loanAmount", "0", "min_value", "Ensure this value is greater than or equal to 0.01."),
        ("loanAmount", "0.00", "min_value", "Ensure this value is greater than or equal to 0.01."),
        ("loanRate", "-1", "min_value", "Ensure this value is greater than or equal to 0."),
        ("loanTerm", "1201", "max_value", "Ensure this value is less than or equal to 1200."),
        ("loanAmount", "1e3", "invalid", "A valid number is required."),
        ("loanAmount", "007", "invalid", "A valid number is required."),
        ("loanAmount", "10.001", "max_decimal_places", "Ensure that there are no more than 2 decimal places."),
    ],
)  # fmt: skip
def test_a_decimal_string_out_of_bounds_says_so(api, field, value, code, detail):
    """As a JSON number does: "-5.00" was "A valid number is required." (code invalid)."""
    from tests.factories import make_loan

    setup_id = make_loan(external_id="NUM-3").setup_id
    response = api.patch(f"/api/v1/loan-setups/{setup_id}", {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"] == [{"field": field, "detail": detail, "code": code}]


def test_zero_is_outside_the_schema_of_a_positive_amount():
    schema = api_schema()["components"]["schemas"]
    amount = schema["ScheduledPaymentInputRequest"]["properties"]["amount"]
    assert amount["anyOf"][1]["minimum"] == 0.01
    pattern = amount["anyOf"][0]["pattern"]
    assert not re.fullmatch(pattern, "0")
    assert not re.fullmatch(pattern, "0.00")
    assert re.fullmatch(pattern, "0.01")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/loans/{loan}/scheduled-payments?scheduledDateTo=",
        "/api/v1/loans/{loan}/scheduled-payments?status=",
        "/api/v1/loans?externalId=",
        "/api/v1/loans?status=",
        "/api/v1/loans?borrower=",
    ],
)
def test_an_empty_filter_is_refused(api, baseline_b, query):
    response = api.get(query.format(loan=baseline_b.pk))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"][0]["detail"] == "May not be blank."


@pytest.mark.django_db
def test_a_filter_with_a_value_still_filters(api, baseline_b):
    response = api.get("/api/v1/loans?externalId=BASELINE-B")
    assert [loan["externalId"] for loan in response.json()["results"]] == ["BASELINE-B"]


def test_text_filters_need_a_value_in_the_schema():
    params = api_schema()["paths"]["/api/v1/loans"]["get"]["parameters"]
    external = next(p for p in params if p["name"] == "externalId")
    assert external["schema"] == {"type": "string", "minLength": 1}


@pytest.mark.django_db
@pytest.mark.parametrize("phone", [5550199, 1.5, True])
def test_a_number_for_phone_is_refused(api, phone):
    body = {
        "borrower": {"firstName": "A", "lastName": "B", "email": "a@b.example", "phone": phone},
        "setup": {
            "loanAmount": "100.00",
            "loanRate": "12",
            "loanTerm": "12",
            "contractDate": "2026-01-01",
            "firstPaymentDate": "2026-02-01",
        },
    }
    response = api.post("/api/v1/loans", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "borrower.phone"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query", ["pageSize=null", "pageSize=null&pageSize=null", "pageSize=0", "pageSize=1.5"]
)
def test_a_page_size_that_is_not_a_whole_number_from_1_is_refused(api, baseline_b, query):
    """Found by schemathesis (negative data): ``?pageSize=null`` was the default page."""
    response = api.get(f"/api/v1/loans?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "pageSize"


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["page=", "page=last", "page=1&page=1", "page=x", "page=1.0"])
def test_a_page_that_is_not_one_whole_number_is_refused(api, baseline_b, query):
    """Found by schemathesis (negative data): ``?page=`` was page 1, ``?page=last`` the last."""
    response = api.get(f"/api/v1/loans/{baseline_b.pk}/communication-schedules?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [
        {"field": "page", "detail": "A whole number is required.", "code": "invalid"}
    ]
    assert api.get(f"/api/v1/loans?{query.replace('page=', 'pageSize=')}").status_code == 400
    assert api.get("/api/v1/loans?page=1").json()["count"] == 1
    assert api.get("/api/v1/loans?page=2").status_code == 404


@pytest.mark.django_db
def test_a_page_size_above_the_maximum_reads_the_maximum(api, baseline_b):
    body = api.get("/api/v1/loans?pageSize=100000").json()
    assert [loan["externalId"] for loan in body["results"]] == ["BASELINE-B"]
    assert api.get("/api/v1/loans?pageSize=1").json()["count"] == 1


def test_page_and_page_size_start_at_1_in_the_schema():
    params = api_schema()["paths"]["/api/v1/loans"]["get"]["parameters"]
    by_name = {p["name"]: p["schema"] for p in params}
    assert by_name["page"] == {"type": "integer", "minimum": 1}
    assert by_name["pageSize"] == {"type": "integer", "minimum": 1}


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "field"), [("date=", "date"), ("days=", "days")])
def test_an_empty_payoff_parameter_is_refused(api, baseline_b, query, field):
    """Found by schemathesis (negative data): ``?date=`` was the business date's quote."""
    response = api.get(f"/api/v1/loans/{baseline_b.pk}/payoff?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == field
    assert (
        api.get(f"/api/v1/loans/{baseline_b.pk}/payoff?date=2026-02-18&days=0").status_code == 200
    )


@pytest.mark.django_db
def test_a_boolean_filter_that_is_not_a_boolean_is_refused(api, baseline_b):
    """Found by schemathesis (negative data): ``?chargedOff=x`` listed every loan."""
    response = api.get("/api/v1/loans?chargedOff=x")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "chargedOff"
    assert api.get("/api/v1/loans?chargedOff=true").json()["count"] == 0
    assert api.get("/api/v1/loans?chargedOff=false").json()["count"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize("value", [0, 1, "true", "yes", None])
def test_a_boolean_field_takes_only_true_or_false(api, value):
    """Found by schemathesis (negative data): ``"interestRecalculation": 0`` was accepted."""
    from tests.factories import make_loan

    setup_id = make_loan(external_id="BOOL-1").setup_id
    url = f"/api/v1/loan-setups/{setup_id}"
    response = api.patch(url, {"interestRecalculation": value}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "interestRecalculation"
    assert api.patch(url, {"interestRecalculation": False}, format="json").status_code == 200
