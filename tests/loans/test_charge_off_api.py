"""Charge-off over the API (DESIGN §6, §12): both path forms, the body shapes, each error."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from loans.models import Loan, LoanEvent, Schedule, Transaction, TransactionType
from tests.conftest import token_client
from tests.loans.test_charge_off import CHARGE_OFF_DATE, loan_l

pytestmark = pytest.mark.django_db


def url(loan, command, *, by_external_id=False):
    base = (
        f"/api/v1/loans/external-id/{loan.external_id}"
        if by_external_id
        else f"/api/v1/loans/{loan.pk}"
    )
    return f"{base}/transactions?command={command}"


def counts():
    return (Transaction.objects.count(), Schedule.objects.count(), LoanEvent.objects.count())


@pytest.mark.parametrize("by_external_id", [False, True], ids=["id", "external-id"])
def test_charge_off_and_undo(api, operator, by_external_id):
    loan = loan_l(operator)

    response = api.post(
        url(loan, "chargeOff", by_external_id=by_external_id),
        {"note": "uncollectible", "externalId": "CO-1", "reason": "BANKRUPTCY"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    tx = Transaction.objects.get(type=TransactionType.CHARGE_OFF)
    assert set(body) == {
        "loanId",
        "resourceId",
        "resourceExternalId",
        "subStatus",
        "chargedOff",
        "transaction",
    }
    assert (body["loanId"], body["resourceId"], body["resourceExternalId"]) == (
        loan.pk,
        tx.pk,
        "CO-1",
    )
    assert (body["subStatus"], body["chargedOff"]) == (None, True)
    t = body["transaction"]
    assert (t["type"], t["date"], t["amount"], t["note"], t["externalId"]) == (
        "CHARGE_OFF",
        "2024-02-14",
        "83.79",
        "uncollectible",
        "CO-1",
    )
    assert (t["principalPortion"], t["interestPortion"], t["feesPortion"]) == (
        "83.57",
        "0.22",
        "0.00",
    )
    detail = api.get(f"/api/v1/loans/{loan.pk}?associations=all").json()
    assert detail["chargedOff"] is True
    assert detail["summary"]["totalOutstanding"] == "83.79"
    assert detail["summary"]["payoffToday"] == "83.79"
    filtered = api.get("/api/v1/loans?chargedOff=true").json()
    assert [row["id"] for row in filtered["results"]] == [loan.pk]

    undo = api.post(
        url(loan, "undoChargeOff", by_external_id=by_external_id),
        {"note": "mistake", "reversalExternalId": "UCO-1"},
        format="json",
    )

    assert undo.status_code == 200, undo.content
    body = undo.json()
    assert (body["resourceId"], body["resourceExternalId"], body["chargedOff"]) == (
        tx.pk,
        "UCO-1",
        False,
    )
    assert body["transaction"]["reversed"] is True
    assert Loan.objects.get(pk=loan.pk).charged_off is False
    summary = api.get(f"/api/v1/loans/{loan.pk}?associations=all").json()["summary"]
    assert summary["totalOutstanding"] == "85.04"


def test_the_checks_are_one_409_with_a_code_each(api, operator):
    loan = loan_l(operator)
    api.post(url(loan, "chargeOff"), {}, format="json")
    Loan.objects.filter(pk=loan.pk).update(modification_in_progress=True)
    before = counts()

    response = api.post(url(loan, "chargeOff"), {}, format="json")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "charge_off_not_allowed"
    assert [e["code"] for e in body["errors"]] == [
        "already_charged_off",
        "modification_in_progress",
    ]
    assert counts() == before


def test_undo_after_a_recovery_is_409(api, operator):
    loan = loan_l(operator)
    api.post(url(loan, "chargeOff"), {}, format="json")
    api.post(
        url(loan, "repayment"),
        {"transactionDate": CHARGE_OFF_DATE.isoformat(), "transactionAmount": "5.00"},
        format="json",
    )
    response = api.post(url(loan, "undoChargeOff"), {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "charge_off_not_latest"


def test_undo_on_a_loan_not_charged_off_is_409(api, operator):
    loan = loan_l(operator)
    response = api.post(url(loan, "undoChargeOff"), {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "not_charged_off"


@pytest.mark.parametrize("command", ["chargeOff", "undoChargeOff"])
def test_without_the_charge_off_permission_it_is_403(operator, django_user_model, command):
    loan = loan_l(operator)
    if command == "undoChargeOff":
        token_client(operator).post(url(loan, "chargeOff"), {}, format="json")
    user = django_user_model.objects.create_user(username="clerk", password="clerk-pass-123")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="loans", codename__in=["post_transaction", "terminate_contract"]
        )
    )
    before = counts()
    response = token_client(user).post(url(loan, command), {}, format="json")
    assert response.status_code == 403
    assert counts() == before


def test_bad_bodies_are_400(api, operator):
    loan = loan_l(operator)
    for body in ({"reason": "x" * 101}, {"externalId": ["x"]}, {"note": {"a": 1}}):
        response = api.post(url(loan, "chargeOff"), body, format="json")
        assert response.status_code == 400, body
    assert Loan.objects.get(pk=loan.pk).charged_off is False


def test_the_operator_group_holds_the_permission():
    from django.contrib.auth.models import Group

    from loans.groups import OPERATOR_GROUP

    codenames = Group.objects.get(name=OPERATOR_GROUP).permissions.values_list(
        "codename", flat=True
    )
    assert "charge_off" in codenames
