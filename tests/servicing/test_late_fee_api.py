"""Late fees set through the setup API (issue 12): ``lateFeeAmount`` and ``lateFeeGraceDays`` on
POST /loans, GET /loans/{id}/setup and PATCH /loan-setups/{id}; set together or not at all;
a close of business charges the fee set this way."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from loans.models import Loan, LoanEvent, LoanSetup, Transaction, TransactionType
from servicing import close_of_business as cob
from tests.api_catalog import api_schema
from tests.factories import set_business_date

pytestmark = pytest.mark.django_db

SETUP = {
    "loanAmount": "1000.00",
    "loanRate": "12",
    "loanTerm": 12,
    "paymentFrequency": "MONTHLY",
    "contractDate": "2026-01-01",
    "firstPaymentDate": "2026-02-01",
}
BORROWER = {"firstName": "Ada", "lastName": "Lovelace", "timezone": "UTC"}


def create(api, **setup):
    body = {"borrower": BORROWER, "setup": {**SETUP, **setup}}
    return api.post("/api/v1/loans", body, format="json")


def errors(response) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


def test_round_trip_create_read_patch_and_clear(api):
    set_business_date(date(2026, 1, 15))
    created = create(api, lateFeeAmount="15.00", lateFeeGraceDays=10)
    assert created.status_code == 201, created.content
    loan_id = created.json()["id"]
    setup = api.get(f"/api/v1/loans/{loan_id}/setup").json()
    assert (setup["lateFeeAmount"], setup["lateFeeGraceDays"]) == ("15.00", 10)
    stored = LoanSetup.objects.get(pk=setup["setupId"])
    assert (stored.late_fee_amount, stored.late_fee_grace_days) == (Decimal("15.00"), 10)

    patched = api.patch(
        f"/api/v1/loan-setups/{setup['setupId']}",
        {"lateFeeAmount": "20.5", "lateFeeGraceDays": 0},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    assert (patched.json()["lateFeeAmount"], patched.json()["lateFeeGraceDays"]) == ("20.50", 0)
    event = LoanEvent.objects.filter(loan_id=loan_id, command="update_setup").get()
    assert event.changes["late_fee_amount"] == ["15.00", "20.50"]
    assert event.changes["late_fee_grace_days"] == [10, 0]

    cleared = api.patch(
        f"/api/v1/loan-setups/{setup['setupId']}",
        {"lateFeeAmount": None, "lateFeeGraceDays": None},
        format="json",
    )
    assert cleared.status_code == 200, cleared.content
    assert (cleared.json()["lateFeeAmount"], cleared.json()["lateFeeGraceDays"]) == (None, None)


def test_without_a_late_fee_both_are_null(api):
    created = create(api)
    assert created.status_code == 201, created.content
    setup = api.get(f"/api/v1/loans/{created.json()['id']}/setup").json()
    assert (setup["lateFeeAmount"], setup["lateFeeGraceDays"]) == (None, None)


@pytest.mark.parametrize(
    ("late_fee", "expected"),
    [
        # the serializer: the schema's pattern and bounds
        # (a decimal string below the bound says so, as a JSON number does: min_value)
        ({"lateFeeAmount": "0.00", "lateFeeGraceDays": 5}, [("setup.lateFeeAmount", "min_value")]),
        ({"lateFeeAmount": "0", "lateFeeGraceDays": 5}, [("setup.lateFeeAmount", "min_value")]),
        (
            {"lateFeeAmount": "-5.00", "lateFeeGraceDays": 5},
            [("setup.lateFeeAmount", "min_value")],
        ),
        (
            {"lateFeeAmount": "15.001", "lateFeeGraceDays": 5},
            [("setup.lateFeeAmount", "max_decimal_places")],
        ),
        ({"lateFeeAmount": "", "lateFeeGraceDays": 5}, [("setup.lateFeeAmount", "invalid")]),
        (
            {"lateFeeAmount": "15.00", "lateFeeGraceDays": -1},
            [("setup.lateFeeGraceDays", "min_value")],
        ),
        (
            {"lateFeeAmount": "15.00", "lateFeeGraceDays": 367},
            [("setup.lateFeeGraceDays", "max_value")],
        ),
        (
            {"lateFeeAmount": "15.00", "lateFeeGraceDays": "5"},
            [("setup.lateFeeGraceDays", "invalid")],
        ),
        (
            {"lateFeeAmount": "15.00", "lateFeeGraceDays": 1.5},
            [("setup.lateFeeGraceDays", "invalid")],
        ),
        # validate_terms: set together
        ({"lateFeeAmount": "15.00"}, [("lateFeeGraceDays", "late_fee_incomplete")]),
        (
            {"lateFeeAmount": "15.00", "lateFeeGraceDays": None},
            [("lateFeeGraceDays", "late_fee_incomplete")],
        ),
        ({"lateFeeGraceDays": 5}, [("lateFeeAmount", "late_fee_incomplete")]),
    ],
)
def test_invalid_late_fees_are_400_with_field_errors_and_create_nothing(api, late_fee, expected):
    before = Loan.objects.count()
    response = create(api, **late_fee)
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) >= {"code", "detail", "errors"}
    assert errors(response) == expected
    if not expected[0][0].startswith("setup."):
        assert body["code"] == "invalid_terms"
    assert Loan.objects.count() == before


def test_a_patch_that_leaves_one_half_is_refused_and_changes_nothing(api):
    set_business_date(date(2026, 1, 15))
    loan_id = create(api, lateFeeAmount="15.00", lateFeeGraceDays=10).json()["id"]
    setup_id = api.get(f"/api/v1/loans/{loan_id}/setup").json()["setupId"]
    response = api.patch(f"/api/v1/loan-setups/{setup_id}", {"lateFeeAmount": None}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_terms"
    assert errors(response) == [("lateFeeAmount", "late_fee_incomplete")]
    stored = LoanSetup.objects.get(pk=setup_id)
    assert (stored.late_fee_amount, stored.late_fee_grace_days) == (Decimal("15.00"), 10)
    assert not LoanEvent.objects.filter(loan_id=loan_id, command="update_setup").exists()


def test_validate_terms_names_every_late_fee_problem():
    from loans import terms
    from loans.exceptions import InvalidRequestError

    values = {
        **terms.SETUP_DEFAULTS,
        "loan_amount": Decimal("1000.00"),
        "loan_rate": Decimal("12"),
        "loan_term": Decimal("12"),
        "contract_date": date(2026, 1, 1),
        "first_payment_date": date(2026, 2, 1),
    }
    cleaned = terms.validate_terms({**values, "late_fee_amount": "7.5", "late_fee_grace_days": 3})
    assert (cleaned["late_fee_amount"], cleaned["late_fee_grace_days"]) == (Decimal("7.5"), 3)
    with pytest.raises(InvalidRequestError) as caught:
        terms.validate_terms({**values, "late_fee_amount": "0", "late_fee_grace_days": 400})
    assert caught.value.code == "invalid_terms"
    assert [(e["field"], e["code"]) for e in caught.value.errors] == [
        ("lateFeeAmount", "min_value"),
        ("lateFeeGraceDays", "out_of_range"),
    ]
    with pytest.raises(InvalidRequestError) as caught:
        terms.validate_terms({**values, "late_fee_amount": "1.005", "late_fee_grace_days": True})
    assert [(e["field"], e["code"]) for e in caught.value.errors] == [
        ("lateFeeAmount", "max_decimal_places"),
        ("lateFeeGraceDays", "invalid"),
    ]


def test_close_of_business_charges_the_fee_set_through_the_api(api, operator):
    set_business_date(date(2026, 1, 15))
    loan_id = create(api, lateFeeAmount="25.00", lateFeeGraceDays=5).json()["id"]
    assert api.post(f"/api/v1/loans/{loan_id}/activate").status_code == 200
    set_business_date(date(2026, 2, 5))
    cob.close_business_day(business_date=date(2026, 2, 5), actor=operator)
    assert not Transaction.objects.filter(loan_id=loan_id, type=TransactionType.CHARGE).exists()
    set_business_date(date(2026, 2, 6))
    job = cob.close_business_day(business_date=date(2026, 2, 6), actor=operator)
    assert (job.status, job.done, job.failed) == ("DONE", 1, 0)
    fee = Transaction.objects.get(loan_id=loan_id, type=TransactionType.CHARGE)
    assert (fee.date, fee.amount, fee.external_id) == (
        date(2026, 2, 6),
        Decimal("25.00"),
        f"late-fee-{loan_id}-2026-02-01",
    )
    charges = api.get(f"/api/v1/loans/{loan_id}?associations=transactions").json()["transactions"]
    assert [(t["type"], t["date"], t["amount"]) for t in charges if t["type"] == "CHARGE"] == [
        ("CHARGE", "2026-02-06", "25.00")
    ]


def test_the_schema_documents_the_late_fee_fields_as_validated():
    schemas = api_schema()["components"]["schemas"]
    given = schemas["SetupInputRequest"]["properties"]
    given_amount, grace = given["lateFeeAmount"], given["lateFeeGraceDays"]
    amount, number = given_amount["anyOf"]  # a decimal string, or a JSON number (issue 16)
    assert (amount["type"], given_amount.get("nullable"), amount["format"]) == (
        "string",
        True,
        "decimal",
    )
    assert (number["minimum"], number["multipleOf"]) == (0.01, 0.01)
    for value, matches in [("15.00", True), ("0.01", True), ("0", False), ("0.00", False)]:
        assert bool(re.fullmatch(amount["pattern"], value)) is matches, value
    assert (grace["type"], grace.get("nullable"), grace["minimum"], grace["maximum"]) == (
        "integer",
        True,
        0,
        366,
    )
    shown = schemas["Setup"]["properties"]
    assert shown["lateFeeAmount"]["nullable"] is True
    assert shown["lateFeeGraceDays"] == {"type": "integer", "nullable": True}
    assert {"lateFeeAmount", "lateFeeGraceDays"} <= set(schemas["Setup"]["required"])
