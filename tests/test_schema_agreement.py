"""Issue 16, finding 6: the schema and the validation agree. A decimal string is accepted
exactly when it matches the schema's pattern ("0" where the minimum is 0.01 is outside it);
an empty filter and a number where the schema says string are refused."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from rest_framework import serializers

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


def test_zero_is_outside_the_schema_of_a_positive_amount():
    schema = api_schema()["components"]["schemas"]
    pattern = schema["ScheduledPaymentInputRequest"]["properties"]["amount"]["pattern"]
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
