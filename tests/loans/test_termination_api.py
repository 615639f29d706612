"""Contract termination over the API (DESIGN §6): status codes and body shapes."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import Permission

from loans.models import Loan, LoanEvent, Schedule, Transaction, TransactionType
from tests.conftest import token_client
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db

TERMINATE = "contractTermination"
UNDO = "undoContractTermination"


def url(loan, command, *, by_external_id=False):
    base = (
        f"/api/v1/loans/external-id/{loan.external_id}"
        if by_external_id
        else f"/api/v1/loans/{loan.pk}"
    )
    return f"{base}/transactions?command={command}"


def counts():
    return (Transaction.objects.count(), Schedule.objects.count(), LoanEvent.objects.count())


def test_terminate_baseline_b(api, baseline_b):
    response = api.post(
        url(baseline_b, TERMINATE),
        {
            "locale": "en",
            "dateFormat": "dd MMM yyyy",
            "note": "Merchant cancelled order XYZ",
            "externalId": "CT-BL-B-0001",
            "transactionDate": "01 January 2026",  # payload dates are ignored
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    tx = Transaction.objects.get(type=TransactionType.CONTRACT_TERMINATION)
    assert set(body) == {"loanId", "resourceId", "resourceExternalId", "subStatus", "transaction"}
    assert body["loanId"] == baseline_b.pk
    assert body["resourceId"] == tx.pk
    assert body["resourceExternalId"] == "CT-BL-B-0001"
    assert body["subStatus"] == "CONTRACT_TERMINATION"
    transaction = body["transaction"]
    assert {k: transaction[k] for k in ("id", "type", "date", "amount", "externalId", "note")} == {
        "id": tx.pk,
        "type": "CONTRACT_TERMINATION",
        "date": "2026-02-18",
        "amount": "305.54",
        "externalId": "CT-BL-B-0001",
        "note": "Merchant cancelled order XYZ",
    }
    assert (
        transaction["principalPortion"],
        transaction["interestPortion"],
        transaction["feesPortion"],
    ) == ("300.00", "5.54", "0.00")
    assert transaction["reversed"] is False
    assert transaction["createdBy"] == "operator"

    detail = api.get(f"/api/v1/loans/{baseline_b.pk}?associations=all").json()
    assert detail["status"] == "ACTIVE"
    assert detail["subStatus"] == "CONTRACT_TERMINATION"
    assert detail["summary"]["principalOutstanding"] == "300.00"
    assert detail["summary"]["interestOutstanding"] == "5.54"
    assert detail["summary"]["totalOutstanding"] == "305.54"
    assert detail["summary"]["nextDueDate"] == "2026-02-18"
    assert detail["summary"]["amountPastDue"] == "0.00"
    assert detail["summary"]["daysPastDue"] == 0
    schedule = detail["repaymentSchedule"]
    assert (schedule["version"], schedule["reason"], schedule["isCurrent"]) == (
        2,
        "CONTRACT_TERMINATION",
        True,
    )
    assert [
        (p["period"], p["dueDate"], p["principalDue"], p["interestDue"], p["totalOutstanding"])
        for p in schedule["periods"]
    ] == [
        (1, "2026-01-10", "100.00", "5.54", "0.00"),
        (2, "2026-01-24", "100.00", "4.62", "0.00"),
        (3, "2026-02-07", "100.00", "3.69", "0.00"),
        (4, "2026-02-18", "300.00", "5.54", "305.54"),
    ]
    assert [(t["type"], t["date"], t["amount"]) for t in detail["transactions"]] == [
        ("DISBURSEMENT", "2025-12-27", "600.00"),
        ("REPAYMENT", "2026-01-10", "105.54"),
        ("REPAYMENT", "2026-01-24", "104.62"),
        ("REPAYMENT", "2026-02-07", "103.69"),
        ("CONTRACT_TERMINATION", "2026-02-18", "305.54"),
    ]

    versions = api.get(f"/api/v1/loans/{baseline_b.pk}/schedules").json()
    assert [(v["version"], v["reason"], v["isCurrent"], len(v["periods"])) for v in versions] == [
        (2, "CONTRACT_TERMINATION", True, 4),
        (1, "ACTIVATION", False, 6),
    ]
    assert [p["interestDue"] for p in versions[1]["periods"]] == [
        "5.54",
        "4.62",
        "3.69",
        "2.77",
        "1.85",
        "0.92",
    ]


def test_terminate_and_undo_by_external_id_path(api, baseline_b):
    response = api.post(url(baseline_b, TERMINATE, by_external_id=True), {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["resourceExternalId"] is None
    assert body["transaction"]["externalId"] is None

    response = api.post(
        url(baseline_b, UNDO, by_external_id=True),
        {"note": "Dispute resolved", "reversalExternalId": "CT-XYZ-UNDO-2025-08-05"},
        format="json",
    )
    assert response.status_code == 200, response.content
    undo = response.json()
    assert undo["loanId"] == baseline_b.pk
    assert undo["resourceId"] == body["resourceId"]
    assert undo["resourceExternalId"] == "CT-XYZ-UNDO-2025-08-05"
    assert undo["subStatus"] is None
    assert undo["transaction"]["reversed"] is True
    assert undo["transaction"]["reversedOn"] == "2026-02-18"
    assert undo["transaction"]["reversalExternalId"] == "CT-XYZ-UNDO-2025-08-05"
    assert undo["transaction"]["reversalNote"] == "Dispute resolved"

    detail = api.get(f"/api/v1/loans/{baseline_b.pk}?associations=all").json()
    assert detail["subStatus"] is None
    assert detail["summary"]["nextDueDate"] == "2026-02-21"
    assert [p["dueDate"] for p in detail["repaymentSchedule"]["periods"]] == [
        "2026-01-10",
        "2026-01-24",
        "2026-02-07",
        "2026-02-21",
        "2026-03-07",
        "2026-03-21",
    ]
    assert detail["repaymentSchedule"]["reason"] == "UNDO_CONTRACT_TERMINATION"
    termination = detail["transactions"][-1]
    assert (termination["type"], termination["reversed"]) == ("CONTRACT_TERMINATION", True)


def test_undo_with_an_empty_body(api, baseline_b):
    assert api.post(url(baseline_b, TERMINATE)).status_code == 200
    response = api.post(url(baseline_b, UNDO))
    assert response.status_code == 200, response.content
    assert response.json()["resourceExternalId"] is None


def test_anonymous_is_401(anon_api, baseline_b):
    before = counts()
    response = anon_api.post(url(baseline_b, TERMINATE), {}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert counts() == before


@pytest.mark.parametrize("command", [TERMINATE, UNDO])
def test_without_the_permission_is_403(viewer_api, baseline_b, command):
    before = counts()
    response = viewer_api.post(url(baseline_b, command), {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert counts() == before


def test_post_transaction_permission_is_not_enough(django_user_model, baseline_b):
    user = django_user_model.objects.create_user(username="teller", password="x" * 12)
    user.user_permissions.add(Permission.objects.get(codename="post_transaction"))
    response = token_client(user).post(url(baseline_b, TERMINATE), {}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize("command", [TERMINATE, UNDO])
def test_unknown_loan_is_404(api, db, command):
    response = api.post(f"/api/v1/loans/999999/transactions?command={command}", {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "loan_not_found"
    response = api.post(
        f"/api/v1/loans/external-id/NOPE/transactions?command={command}", {}, format="json"
    )
    assert response.status_code == 404


def test_refusals_are_409_with_each_check(api, operator):
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(actor=operator, schedule_engine="STANDARD")
    Loan.objects.filter(pk=loan.pk).update(charged_off=True)
    before = counts()
    response = api.post(url(loan, TERMINATE), {"note": "x"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "contract_termination_not_allowed"
    assert [(e["field"], e["code"]) for e in body["errors"]] == [
        (None, "engine_not_dynamic"),
        (None, "loan_charged_off"),
    ]
    assert all(e["detail"] for e in body["errors"])
    assert body["detail"].startswith("The contract cannot be terminated")
    assert counts() == before


def test_already_terminated_is_409(api, baseline_b):
    assert api.post(url(baseline_b, TERMINATE)).status_code == 200
    response = api.post(url(baseline_b, TERMINATE))
    assert response.status_code == 409
    assert [e["code"] for e in response.json()["errors"]] == ["already_terminated"]


def test_duplicate_external_id_is_400(api, baseline_b):
    assert api.post(url(baseline_b, TERMINATE), {"externalId": "CT-9"}).status_code == 200
    assert api.post(url(baseline_b, UNDO)).status_code == 200
    before = counts()
    response = api.post(url(baseline_b, TERMINATE), {"externalId": "CT-9"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "duplicate_external_id"
    assert body["errors"][0]["field"] == "externalId"
    assert counts() == before


def test_invalid_body_is_400(api, baseline_b):
    response = api.post(url(baseline_b, TERMINATE), {"externalId": "x" * 101}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"][0]["field"] == "externalId"
    response = api.post(url(baseline_b, TERMINATE), [1, 2], format="json")
    assert response.status_code == 400
    response = api.post(url(baseline_b, TERMINATE), "{not json", content_type="application/json")
    assert response.status_code == 400
    assert Transaction.objects.filter(type=TransactionType.CONTRACT_TERMINATION).count() == 0


def test_undo_refusals_are_409_with_their_own_code(api, baseline_b):
    response = api.post(url(baseline_b, UNDO), {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "not_terminated"

    assert api.post(url(baseline_b, TERMINATE)).status_code == 200
    repayment = api.post(
        url(baseline_b, "repayment"),
        {"transactionDate": "2026-02-18", "transactionAmount": "10.00"},
        format="json",
    )
    assert repayment.status_code == 200, repayment.content
    before = counts()
    response = api.post(url(baseline_b, UNDO), {"reversalExternalId": "U-1"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "termination_not_latest"
    assert counts() == before


def test_undo_duplicate_reversal_external_id_is_400(api, baseline_b):
    assert api.post(url(baseline_b, TERMINATE), {"externalId": "CT-7"}).status_code == 200
    response = api.post(url(baseline_b, UNDO), {"reversalExternalId": "CT-7"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "duplicate_external_id"
    assert response.json()["errors"][0]["field"] == "reversalExternalId"
    assert Loan.objects.get(pk=baseline_b.pk).sub_status == "CONTRACT_TERMINATION"


def test_undo_on_a_closed_loan_is_409_loan_not_active(api, baseline_b):
    assert api.post(url(baseline_b, TERMINATE)).status_code == 200
    payoff = api.post(
        url(baseline_b, "repayment"),
        {"transactionDate": "2026-02-18", "transactionAmount": "305.54"},
        format="json",
    )
    assert payoff.status_code == 200, payoff.content
    detail = api.get(f"/api/v1/loans/{baseline_b.pk}").json()
    assert (detail["status"], detail["subStatus"]) == ("CLOSED", None)
    response = api.post(url(baseline_b, UNDO))
    assert response.status_code == 409
    assert response.json()["code"] == "loan_not_active"


def test_repayment_after_termination_allocates_to_the_accelerated_installment(api, baseline_b):
    assert api.post(url(baseline_b, TERMINATE)).status_code == 200
    response = api.post(
        url(baseline_b, "repayment"),
        {"transactionDate": "2026-02-18", "transactionAmount": "100.00"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["interestPortion"], body["principalPortion"]) == ("5.54", "94.46")
    detail = api.get(f"/api/v1/loans/{baseline_b.pk}?associations=repaymentSchedule").json()
    last = detail["repaymentSchedule"]["periods"][-1]
    assert (last["dueDate"], last["totalPaid"], last["totalOutstanding"]) == (
        "2026-02-18",
        "100.00",
        "205.54",
    )
    assert detail["subStatus"] == "CONTRACT_TERMINATION"


def test_loan_list_filters_by_sub_status(api, baseline_b, operator):
    other = make_active_loan(actor=operator)
    assert api.post(url(baseline_b, TERMINATE)).status_code == 200
    body = api.get("/api/v1/loans?subStatus=CONTRACT_TERMINATION").json()
    ids = [row["id"] for row in body["results"]]
    assert ids == [baseline_b.pk]
    assert other.pk not in ids
