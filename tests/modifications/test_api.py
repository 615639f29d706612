"""The six steps of seed 004 through the API, with exact figures, then cancel.

The loan (tests/modifications/conftest.py): 10,000.00 at 15 % (1.25 % a month), 60 monthly from
2025-01-01, payment 237.90, the first six installments paid on their due dates, then 237.90 on
2025-07-20 (kept) and 100.00 on 2025-07-25 (not kept); business date 2025-08-10.

Carried balance on 2025-07-15, by hand:
  installment  interest (balance x 1.25 %)      principal (237.90 - interest)  balance
  1            10000.00 -> 125.00               112.90                         9887.10
  2            9887.10  -> 123.58875 = 123.59   114.31                         9772.79
  3            9772.79  -> 122.159875 = 122.16  115.74                         9657.05
  4            9657.05  -> 120.713125 = 120.71  117.19                         9539.86
  5            9539.86  -> 119.24825 = 119.25   118.65                         9421.21
  6            9421.21  -> 117.765125 = 117.77  120.13                         9301.08
  installment 7 (2025-07-01 .. 2025-08-01, 31 days) interest 9301.08 x 1.25 % = 116.26;
  accrued to 2025-07-15 (14 days): 116.26 x 14 / 31 = 52.5045 -> 52.50
  carried = 9301.08 + 52.50 = 9353.58
New first installment (2025-08-15): interest 9353.58 x 1.25 % = 116.91975 -> 116.92, principal
250.00 - 116.92 = 133.08. termExact for 250.00: n = -ln(1 - 9353.58 x 0.0125 / 250) / ln(1.0125)
= 50.7553 -> 51 installments, the last (2029-10-15) 186.75 + 2.33 = 189.08.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

pytestmark = pytest.mark.django_db


def periods_of(api, loan_id):
    body = api.get(f"/api/v1/loans/{loan_id}?associations=all").json()
    return body, body["repaymentSchedule"]["periods"]


def test_six_steps_then_cancel(api, modifiable):
    loan_id = modifiable.pk
    kept, dropped = str(modifiable.kept_tx.pk), str(modifiable.dropped_tx.pk)
    before, before_periods = periods_of(api, loan_id)
    original_setup_id = before["setupId"]
    assert before["summary"]["totalOutstanding"] == "12508.60"  # 14273.90 - 7 x 237.90 - 100.00

    # Step 1: the pre-modification test
    response = api.get(f"/api/v1/loans/{loan_id}/modifications/pre-mod-test?date=2025-07-15")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "payments": [
            {
                "id": kept,
                "displayId": kept,
                "date": "2025-07-20",
                "amount": "237.90",
                "info": "2025-07-20 Repayment card",
            },
            {
                "id": dropped,
                "displayId": dropped,
                "date": "2025-07-25",
                "amount": "100.00",
                "info": "2025-07-25 Repayment",
            },
        ],
        "charges": [],
        "advancements": [],
        "credits": [],
    }

    # Step 2: create the modification, keeping the 2025-07-20 payment
    response = api.post(
        f"/api/v1/loans/{loan_id}/modifications",
        {"modificationDate": "2025-07-15", "persistentTransactions": {"payments": [kept]}},
        format="json",
    )
    assert response.status_code == 201, response.content
    modification = response.json()
    assert modification["status"] == "DRAFT"
    assert modification["modificationDate"] == "2025-07-15"
    assert modification["loanId"] == loan_id
    assert modification["previousSetupId"] == original_setup_id
    assert modification["persistentTransactions"] == {
        "payments": [kept],
        "charges": [],
        "advancements": [],
        "credits": [],
    }
    assert modification["carriedBalance"] == {
        "principal": "9301.08",
        "interest": "52.50",
        "fees": "0.00",
        "total": "9353.58",
    }
    setup_id = modification["setupId"]

    # Step 3: the loan's setup is the draft while the modification is in progress
    setup = api.get(f"/api/v1/loans/{loan_id}/setup").json()
    assert setup["setupId"] == setup_id
    assert (setup["loanAmount"], setup["contractDate"], setup["firstPaymentDate"]) == (
        "9353.58",
        "2025-07-15",
        "2025-08-15",
    )
    assert (setup["loanTerm"], setup["payment"], setup["paymentIsGiven"]) == ("54", "239.24", False)
    assert (setup["modId"], setup["active"], setup["loanRate"]) == (
        modification["id"],
        False,
        "15.0000",
    )
    loan = api.get(f"/api/v1/loans/{loan_id}").json()
    assert loan["modificationInProgress"] is True
    assert loan["setupId"] == original_setup_id

    # Step 4: update the draft setup (a term of 48 -> payment recomputed: 116.91975 / (1 - 1.0125^-48) = 260.32)
    response = api.patch(f"/api/v1/loan-setups/{setup_id}", {"loanTerm": "48"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["loanTerm"], response.json()["payment"]) == ("48", "260.32")

    # Step 5: roll the payment to 250.00 (termExact: fractional term, payment given)
    response = api.post(
        f"/api/v1/loans/{loan_id}/roll-payment",
        {"amount": "250.00", "method": "loan.rollPayment.termExact"},
        format="json",
    )
    assert response.status_code == 200, response.content
    rolled = response.json()
    assert (rolled["method"], rolled["payment"], rolled["solution"]) == (
        "loan.rollPayment.termExact",
        "250.00",
        "50.7553",
    )
    assert (rolled["setup"]["loanTerm"], rolled["setup"]["paymentIsGiven"]) == ("50.7553", True)

    # Step 6: activate
    response = api.post(f"/api/v1/loans/{loan_id}/activate")
    assert response.status_code == 200, response.content
    assert response.json()["activated"] is True
    after, periods = periods_of(api, loan_id)
    assert after["setupId"] == setup_id
    assert after["modTotal"] == 1
    assert after["modificationInProgress"] is False
    assert after["setup"]["active"] is True
    frozen = [p for p in periods if p["historical"]]
    live = [p for p in periods if not p["historical"]]
    # history before the modification date unchanged
    assert frozen == [dict(p, historical=True) for p in before_periods[:6]]
    assert len(live) == 51
    first, last = live[0], live[-1]
    assert (first["period"], first["fromDate"], first["dueDate"]) == (7, "2025-07-15", "2025-08-15")
    assert (first["principalDue"], first["interestDue"], first["totalDue"]) == (
        "133.08",
        "116.92",
        "250.00",
    )
    # the kept payment is applied to the new schedule on its own date
    assert (first["totalPaid"], first["totalOutstanding"], first["complete"]) == (
        "237.90",
        "12.10",
        False,
    )
    assert (last["period"], last["dueDate"], last["principalDue"], last["interestDue"]) == (
        57,
        "2029-10-15",
        "186.75",
        "2.33",
    )
    assert last["totalDue"] == "189.08"
    assert after["summary"]["principalOutstanding"] == "9232.60"
    assert after["summary"]["amountPastDue"] == "0.00"
    assert after["summary"]["daysPastDue"] == 0
    assert after["summary"]["nextDueDate"] == "2025-08-15"
    transactions = {str(t["id"]): t for t in after["transactions"]}
    assert (transactions[kept]["principalPortion"], transactions[kept]["interestPortion"]) == (
        "120.98",
        "116.92",
    )
    assert transactions[kept]["reversed"] is False
    assert transactions[dropped]["reversed"] is True
    assert transactions[dropped]["reversedOn"] == "2025-08-10"
    assert transactions[dropped]["reversedByModificationId"] == modification["id"]
    assert "modification" in transactions[dropped]["reversalNote"]

    history = api.get(f"/api/v1/loans/{loan_id}/modifications").json()
    assert [(m["id"], m["status"]) for m in history] == [(modification["id"], "ACTIVE")]
    assert history[0]["reversedTransactionIds"] == [dropped]

    # Nothing pending any more
    response = api.post(f"/api/v1/loans/{loan_id}/activate")
    assert response.status_code == 200
    assert response.json()["activated"] is False

    # The active setup is locked
    response = api.patch(f"/api/v1/loan-setups/{setup_id}", {"loanTerm": "40"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "setup_locked"

    # Cancel restores everything
    response = api.post(f"/api/v1/loans/{loan_id}/modifications/cancel")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "CANCELLED"
    restored, restored_periods = periods_of(api, loan_id)
    assert restored["setupId"] == original_setup_id
    assert restored["modTotal"] == 0
    assert restored["summary"] == before["summary"]
    assert restored_periods == before_periods
    assert restored["transactions"] == before["transactions"]
    assert restored["repaymentSchedule"]["reason"] == "MODIFICATION_CANCELLED"

    # and there is nothing left to cancel
    response = api.post(f"/api/v1/loans/{loan_id}/modifications/cancel")
    assert response.status_code == 409
    assert response.json()["code"] == "no_modification"


def test_roll_payment_term_recomputes_the_payment(api, modifiable):
    api.post(
        f"/api/v1/loans/{modifiable.pk}/modifications",
        {"modificationDate": "2025-07-15"},
        format="json",
    )
    response = api.post(
        f"/api/v1/loans/{modifiable.pk}/roll-payment",
        {"amount": "250.00", "method": "loan.rollPayment.term"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["solution"], body["payment"]) == ("51", "249.14")
    assert (body["setup"]["loanTerm"], body["setup"]["paymentIsGiven"]) == ("51", False)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": "116.91", "method": "loan.rollPayment.termExact"}, 400, "payment_too_small"),
        ({"amount": "250.00", "method": "loan.rollPayment.nope"}, 400, "invalid_method"),
        ({"method": "loan.rollPayment.term"}, 400, "invalid"),
    ],
)
def test_roll_payment_errors(api, modifiable, body, status, code):
    api.post(
        f"/api/v1/loans/{modifiable.pk}/modifications",
        {"modificationDate": "2025-07-15"},
        format="json",
    )
    response = api.post(f"/api/v1/loans/{modifiable.pk}/roll-payment", body, format="json")
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def test_roll_payment_without_a_modification_is_409(api, modifiable):
    response = api.post(
        f"/api/v1/loans/{modifiable.pk}/roll-payment",
        {"amount": "250.00", "method": "loan.rollPayment.term"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "no_modification_in_progress"


@pytest.mark.parametrize(
    ("query", "code"), [("", "invalid_date"), ("?date=2025-13-01", "invalid_date")]
)
def test_pre_mod_test_needs_a_date(api, modifiable, query, code):
    response = api.get(f"/api/v1/loans/{modifiable.pk}/modifications/pre-mod-test{query}")
    assert response.status_code == 400
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"modificationDate": "2024-12-31"}, 400, "date_before_contract"),
        ({"modificationDate": "2025-08-11"}, 400, "future_date"),
        ({}, 400, "invalid"),
        (
            {"modificationDate": "2025-07-15", "persistentTransactions": {"charges": ["1"]}},
            400,
            "invalid_persistent_transactions",
        ),
        (
            {"modificationDate": "2025-07-15", "persistentTransactions": {"refunds": []}},
            400,
            "invalid",
        ),
    ],
)
def test_create_modification_errors(api, modifiable, payload, status, code):
    response = api.post(f"/api/v1/loans/{modifiable.pk}/modifications", payload, format="json")
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert api.get(f"/api/v1/loans/{modifiable.pk}").json()["modificationInProgress"] is False


def test_persistent_transaction_ids_may_be_json_integers(api, modifiable):
    """LoanPro's examples send the ids as strings (as the pre-mod test answers them); a JSON
    integer is the same id (it was 400 "Must be a string."). Answered as strings."""
    kept = modifiable.kept_tx.pk
    response = api.post(
        f"/api/v1/loans/{modifiable.pk}/modifications",
        {"modificationDate": "2025-07-15", "persistentTransactions": {"payments": [kept]}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["persistentTransactions"]["payments"] == [str(kept)]
    cancelled = api.post(f"/api/v1/loans/{modifiable.pk}/modifications/cancel", {}, format="json")
    assert cancelled.status_code == 200, cancelled.content
    for bad in (True, 1.5, [kept], {"id": kept}):
        refused = api.post(
            f"/api/v1/loans/{modifiable.pk}/modifications",
            {"modificationDate": "2025-07-15", "persistentTransactions": {"payments": [bad]}},
            format="json",
        )
        assert refused.status_code == 400, (bad, refused.content)
        assert refused.json()["errors"][0]["field"] == "persistentTransactions.payments.0"


def test_by_external_id_and_permissions(api, viewer_api, anon_api, modifiable):
    base = "/api/v1/loans/external-id/MOD-LOAN"
    assert anon_api.get(f"{base}/modifications").status_code == 401
    response = viewer_api.post(f"{base}/modifications", {"modificationDate": "2025-07-15"})
    assert response.status_code == 403
    assert viewer_api.post(f"{base}/modifications/cancel").status_code == 403
    response = api.post(f"{base}/modifications", {"modificationDate": "2025-07-15"}, format="json")
    assert response.status_code == 201
    response = api.post(f"{base}/modifications", {"modificationDate": "2025-07-15"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "modification_in_progress"
    assert api.get(f"{base}/modifications").json()[0]["status"] == "DRAFT"
    assert api.get(f"{base}/modifications/pre-mod-test?date=2025-07-15").status_code == 200
    assert Decimal(api.get(f"{base}/setup").json()["loanAmount"]) == Decimal("9353.58")


def test_schema_documents_the_modification_endpoints(api):
    response = api.get("/api/v1/schema?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for suffix in ("modifications", "modifications/pre-mod-test", "roll-payment"):
        assert f"/api/v1/loans/{{loan_id}}/{suffix}" in paths
