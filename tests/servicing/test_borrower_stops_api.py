"""The borrower-level stops over the API (DESIGN §6, §12): both path forms, shapes, errors;
the borrower's externalId on loans."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from loans.models import Borrower, Loan, LoanEvent
from servicing.models import ScheduledCommunication, ScheduledPayment
from tests.api_catalog import api_schema
from tests.conftest import token_client
from tests.servicing.test_borrower_stops import borrower_with_loans

pytestmark = pytest.mark.django_db


def url(borrower, suffix, *, by_external_id=False):
    if by_external_id:
        return f"/api/v1/borrowers/external-id/{borrower.external_id}/{suffix}"
    return f"/api/v1/borrowers/{borrower.pk}/{suffix}"


@pytest.mark.parametrize("by_external_id", [False, True], ids=["id", "external-id"])
def test_cancel_servicing_of_a_borrower(api, operator, by_external_id):
    borrower, loans = borrower_with_loans(operator, 3)

    response = api.post(
        url(borrower, "cancel-servicing", by_external_id=by_external_id),
        {"reason": "FRAUD_CLAIM"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": "CUST-1",
        "borrowerId": borrower.pk,
        "loansUpdated": 3,
        "stopServicingReason": "FRAUD_CLAIM",
        "cancelledScheduledPayments": 9,
        "cancelledCallSchedules": 3,
        "cancelledEmailSchedules": 3,
        "cancelledSmsSchedules": 3,
        "cancelledCalls": 15,
        "cancelledEmails": 6,
        "cancelledSms": 9,
    }
    assert set(Loan.objects.values_list("servicing_status", flat=True)) == {"NOT_SERVICING"}
    # Again: nothing left, no loan updated, the original reason kept.
    again = api.post(
        url(borrower, "cancel-servicing"), {"reason": "BANKRUPTCY"}, format="json"
    ).json()
    assert (again["loansUpdated"], again["cancelledCalls"]) == (0, 0)
    assert set(Loan.objects.values_list("stop_servicing_reason", flat=True)) == {"FRAUD_CLAIM"}


def test_the_default_reason_is_api_request_and_no_loans_answers_zeros(api, operator):
    borrower, _ = borrower_with_loans(operator, 0)
    body = api.post(url(borrower, "cancel-servicing"), {}, format="json").json()
    assert body["stopServicingReason"] == "API_REQUEST"
    assert body["loansUpdated"] == 0
    assert body["cancelledScheduledPayments"] == 0


def test_an_invalid_reason_is_400_even_for_an_unknown_borrower(api, operator):
    borrower, _ = borrower_with_loans(operator, 1)
    for target in (url(borrower, "cancel-servicing"), "/api/v1/borrowers/999999/cancel-servicing"):
        response = api.post(target, {"reason": "BORED"}, format="json")
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_reason"
    assert ScheduledPayment.objects.filter(status="PENDING").count() == 3


@pytest.mark.parametrize("suffix", ["cancel-servicing", "cancel-communications"])
@pytest.mark.parametrize(
    "path", ["/api/v1/borrowers/999999", "/api/v1/borrowers/external-id/NO-SUCH-CUSTOMER"]
)
def test_an_unknown_borrower_is_404(api, path, suffix):
    response = api.post(f"{path}/{suffix}", {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "borrower_not_found"


@pytest.mark.parametrize("by_external_id", [False, True], ids=["id", "external-id"])
def test_cancel_communications_of_a_borrower(api, operator, by_external_id):
    borrower, loans = borrower_with_loans(operator, 3)

    response = api.post(url(borrower, "cancel-communications", by_external_id=by_external_id))

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": "CUST-1",
        "borrowerId": borrower.pk,
        "cancelledCalls": 15,
        "cancelledEmails": 6,
        "cancelledSms": 9,
        "cancelledCallSchedules": 3,
        "cancelledEmailSchedules": 3,
        "cancelledSmsSchedules": 3,
        "total": 39,
    }
    assert set(Loan.objects.values_list("servicing_status", flat=True)) == {"ACTIVE"}
    assert ScheduledPayment.objects.filter(status="PENDING").count() == 9
    assert ScheduledCommunication.objects.filter(status="PENDING").count() == 0
    assert LoanEvent.objects.filter(command="cancel_communications").count() == 3


@pytest.mark.parametrize("suffix", ["cancel-servicing", "cancel-communications"])
def test_a_borrower_without_external_id_is_named_by_its_id(api, operator, suffix):
    """DESIGN §6: ``id`` is the borrower's externalId; without one it is null (the schema says
    nullable) and ``borrowerId`` says which borrower was stopped."""
    borrower, _ = borrower_with_loans(operator, 1)
    Borrower.objects.filter(pk=borrower.pk).update(external_id=None)
    body = api.post(url(borrower, suffix), {}, format="json").json()
    assert (body["id"], body["borrowerId"]) == (None, borrower.pk)
    schemas = api_schema()["components"]["schemas"]
    name = "BorrowerCancel" + ("Servicing" if suffix == "cancel-servicing" else "Communications")
    properties = schemas[name + "Result"]["properties"]
    assert (properties["id"]["nullable"], properties["borrowerId"]["type"]) == (True, "integer")


@pytest.mark.parametrize("suffix", ["cancel-servicing", "cancel-communications"])
def test_without_the_cancel_servicing_permission_it_is_403(operator, django_user_model, suffix):
    borrower, _ = borrower_with_loans(operator, 1)
    user = django_user_model.objects.create_user(username="clerk", password="clerk-pass-123")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="loans").exclude(
            codename="cancel_servicing"
        )
    )
    response = token_client(user).post(url(borrower, suffix), {}, format="json")
    assert response.status_code == 403
    assert ScheduledCommunication.objects.filter(status="PENDING").count() == 10


def test_a_borrower_created_with_a_loan_carries_its_external_id(api, business_date):
    body = {
        "borrower": {"firstName": "Ada", "lastName": "Lovelace", "externalId": "CUST-9"},
        "setup": {
            "loanAmount": "1000.00",
            "loanRate": "12",
            "loanTerm": "12",
            "contractDate": "2026-01-01",
            "firstPaymentDate": "2026-02-01",
        },
    }
    created = api.post("/api/v1/loans", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["borrower"]["externalId"] == "CUST-9"
    assert Borrower.objects.get(external_id="CUST-9").last_name == "Lovelace"

    duplicate = api.post("/api/v1/loans", body, format="json")
    assert duplicate.status_code == 400
    assert duplicate.json()["code"] == "duplicate_external_id"
    assert duplicate.json()["errors"][0]["field"] == "borrower.externalId"
    assert Borrower.objects.count() == 1

    # No external id: null, and any number of such borrowers.
    for _ in range(2):
        body["borrower"] = {"firstName": "No", "lastName": "Id", "externalId": ""}
        assert api.post("/api/v1/loans", body, format="json").status_code == 201
    assert Borrower.objects.filter(external_id__isnull=True).count() == 2
