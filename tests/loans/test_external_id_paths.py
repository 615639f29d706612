"""External ids are path keys (DESIGN §6: ``/loans/external-id/{externalId}/...`` and
``/borrowers/external-id/{externalId}/...``). Found by the audit: a loan created with
externalId "A/1" could never be reached by those paths (the server decodes %2F before routing).
The choice: refuse what a path segment cannot carry ("/", "\\", control characters, "." and
"..") wherever a loan's or borrower's externalId is accepted; everything else is reachable
percent-encoded."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from urllib.parse import quote

import pytest

from loans.models import Borrower, Loan
from tests.loans.test_api import BORROWER, create
from tests.loans.test_operator_admin import CREATE, NEW_BORROWER, TERMS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("bad", ["A/1", "/", "A\\1", "tab\there", "del\x7f", ".", ".."])
def test_api_refuses_a_loan_external_id_no_path_can_carry(api, bad):
    response = create(api, externalId=bad)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert [(e["field"], e["code"]) for e in body["errors"]] == [
        ("externalId", "invalid_external_id")
    ]
    assert not Loan.objects.exists() and not Borrower.objects.exists()


def test_api_refuses_a_borrower_external_id_no_path_can_carry(api):
    response = create(api, borrower={**BORROWER, "externalId": "C/7"})
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("borrower.externalId", "invalid_external_id")
    ]
    assert not Loan.objects.exists() and not Borrower.objects.exists()


def test_the_service_refuses_it_too(operator):
    from loans import services
    from loans.exceptions import InvalidRequestError

    with pytest.raises(InvalidRequestError) as refused:
        services.create_loan(
            actor=operator,
            external_id="S/1",
            borrower_data={"first_name": "A", "last_name": "B"},
            setup={
                "loan_amount": Decimal("100.00"),
                "loan_rate": Decimal("7"),
                "loan_term": Decimal("6"),
                "contract_date": date(2025, 1, 1),
                "first_payment_date": date(2025, 2, 1),
            },
        )
    assert refused.value.code == "invalid_external_id"
    assert not Loan.objects.exists()


def test_the_schema_publishes_the_rule(api):
    import re

    schema = api.get("/api/v1/schema?format=json").json()
    pattern = schema["components"]["schemas"]["LoanCreateRequest"]["properties"]["externalId"][
        "pattern"
    ]
    assert not re.search(pattern, "A/1") and not re.search(pattern, "..")
    assert re.search(pattern, "A?1#b%c d.é")


def test_what_is_accepted_is_reachable_by_its_path(api):
    odd = "A?1#b%c d.é"
    assert create(api, externalId=odd, borrower={**BORROWER, "externalId": odd}).status_code == 201
    loan = api.get(f"/api/v1/loans/external-id/{quote(odd, safe='')}")
    assert loan.status_code == 200 and loan.json()["externalId"] == odd
    setup = api.get(f"/api/v1/loans/external-id/{quote(odd, safe='')}/setup")
    assert setup.status_code == 200


def test_admin_create_refuses_it_with_a_message(client, operator):
    client.force_login(operator)
    response = client.post(CREATE, {**NEW_BORROWER, **TERMS, "external_id": "NEW/1"})
    assert response.status_code == 200
    assert "path segment cannot carry" in response.content.decode()
    assert not Loan.objects.exists()


def test_borrower_admin_refuses_it_as_a_form_error(admin_client):
    borrower = Borrower.objects.create(first_name="B", last_name="C", timezone="UTC")
    url = f"/admin/loans/borrower/{borrower.pk}/change/"
    data = {"first_name": "B", "last_name": "C", "timezone": "UTC", "external_id": "B/1"}
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "path segment cannot carry" in response.content.decode()
    borrower.refresh_from_db()
    assert borrower.external_id is None
    admin_client.post(url, {**data, "external_id": "B-1"})
    borrower.refresh_from_db()
    assert borrower.external_id == "B-1"
