"""API of the loan core: create -> activate -> repay -> read, both path forms, error mapping."""

from datetime import date
from decimal import Decimal

import pytest

from loans.models import Loan, LoanEvent, LoanSetup, Transaction
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db

SETUP = {
    "loanAmount": "10000.00",
    "loanRate": "15",
    "loanTerm": 60,
    "paymentFrequency": "MONTHLY",
    "contractDate": "2025-01-01",
    "firstPaymentDate": "2025-02-01",
}
BORROWER = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "email": "ada@example.com",
    "phone": "+15550100",
    "timezone": "Europe/London",
}


def create(api, **overrides):
    body = {"externalId": "API-1", "borrower": BORROWER, "setup": dict(SETUP)}
    body.update(overrides)
    return api.post("/api/v1/loans", body, format="json")


def test_token_auth_and_anonymous_401(operator, anon_api):
    response = anon_api.get("/api/v1/loans")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    bad = anon_api.post(
        "/api/v1/auth/token", {"username": "operator", "password": "wrong"}, format="json"
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_credentials"
    ok = anon_api.post(
        "/api/v1/auth/token",
        {"username": "operator", "password": "operator-pass-123"},
        format="json",
    )
    assert ok.status_code == 200
    anon_api.credentials(HTTP_AUTHORIZATION=f"Token {ok.json()['token']}")
    assert anon_api.get("/api/v1/loans").status_code == 200


def test_create_activate_repay_read(api):
    set_business_date(date(2025, 3, 15))
    response = create(api)
    assert response.status_code == 201, response.content
    loan = response.json()
    assert loan["status"] == "PENDING"
    assert loan["displayId"] == f"LN-{loan['id']:06d}"
    assert loan["setup"]["payment"] == "237.90"
    assert loan["setup"]["paymentIsGiven"] is False
    assert loan["setup"]["loanRate"] == "15.0000"
    assert loan["setup"]["loanTerm"] == "60"

    activated = api.post(f"/api/v1/loans/{loan['id']}/activate")
    assert activated.status_code == 200, activated.content
    assert activated.json()["activated"] is True
    assert activated.json()["status"] == "ACTIVE"
    again = api.post(f"/api/v1/loans/{loan['id']}/activate")
    assert again.json()["activated"] is False

    repay = api.post(
        "/api/v1/loans/external-id/API-1/transactions?command=repayment",
        {"transactionDate": "2025-02-01", "transactionAmount": "237.90", "externalId": "R-1"},
        format="json",
    )
    assert repay.status_code == 200, repay.content
    tx = repay.json()
    assert (tx["type"], tx["amount"], tx["interestPortion"], tx["principalPortion"]) == (
        "REPAYMENT",
        "237.90",
        "125.00",
        "112.90",
    )

    detail = api.get(f"/api/v1/loans/{loan['id']}?associations=all").json()
    periods = detail["repaymentSchedule"]["periods"]
    assert len(periods) == 60
    assert periods[0]["complete"] is True
    assert periods[0]["obligationsMetOnDate"] == "2025-02-01"
    assert periods[-1]["totalDue"] == "237.80"
    assert sum(Decimal(p["totalDue"]) for p in periods) == Decimal("14273.90")
    summary = detail["summary"]
    assert summary["principalOutstanding"] == "9887.10"
    assert (
        summary["nextDueDate"] == "2025-04-01"
    )  # the first unpaid one on or after the business date
    # 2025-03-01 is due and unpaid by the business date 2025-03-15: 14 days past due.
    assert summary["amountPastDue"] == "237.90"
    assert summary["daysPastDue"] == 14
    assert [t["type"] for t in detail["transactions"]] == ["DISBURSEMENT", "REPAYMENT"]

    only_schedule = api.get(f"/api/v1/loans/{loan['id']}?associations=repaymentSchedule").json()
    assert "repaymentSchedule" in only_schedule and "transactions" not in only_schedule
    plain = api.get("/api/v1/loans/external-id/API-1").json()
    assert "repaymentSchedule" not in plain and plain["summary"]["totalOutstanding"]


def test_published_figures_through_the_api(api):
    set_business_date(date(2026, 1, 1))
    response = create(
        api,
        externalId="PUB-3",
        setup={
            "loanAmount": "12000.00",
            "loanRate": "12.0212",
            "loanTerm": 36,
            "paymentFrequency": "MONTHLY",
            "contractDate": "2015-05-07",
            "firstPaymentDate": "2015-05-08",
        },
    )
    loan_id = response.json()["id"]
    api.post(f"/api/v1/loans/{loan_id}/activate")
    periods = api.get(f"/api/v1/loans/{loan_id}?associations=repaymentSchedule").json()[
        "repaymentSchedule"
    ]["periods"]
    assert periods[0]["interestDue"] == "4.01"
    assert periods[0]["totalDue"] == "398.69"
    assert periods[-1]["totalDue"] == "234.12"
    assert sum(Decimal(p["totalDue"]) for p in periods) == Decimal("14188.27")


def test_filters_and_pagination(api, operator):
    set_business_date(date(2026, 2, 18))
    make_active_loan(actor=operator, external_id="F-ACTIVE")
    create(api, externalId="F-PENDING")
    assert [
        loan["externalId"] for loan in api.get("/api/v1/loans?status=PENDING").json()["results"]
    ] == ["F-PENDING"]
    assert api.get("/api/v1/loans?externalId=F-ACTIVE").json()["count"] == 1
    assert api.get("/api/v1/loans?scheduleEngine=STANDARD").json()["count"] == 0
    bad = api.get("/api/v1/loans?status=NOPE")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"


def test_setup_patch_pending_then_locked(api):
    set_business_date(date(2025, 3, 1))
    loan = create(api).json()
    setup_id = api.get(f"/api/v1/loans/{loan['id']}/setup").json()["setupId"]
    patched = api.patch(
        f"/api/v1/loan-setups/{setup_id}", {"loanTerm": 36, "loanRate": "12"}, format="json"
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["loanTerm"] == "36"
    assert patched.json()["payment"] == "332.14"  # recomputed: 10,000 at 12 % over 36 months
    given = api.patch(f"/api/v1/loan-setups/{setup_id}", {"payment": "400.00"}, format="json")
    assert given.json()["payment"] == "400.00" and given.json()["paymentIsGiven"] is True
    api.post(f"/api/v1/loans/{loan['id']}/activate")
    locked = api.patch(f"/api/v1/loan-setups/{setup_id}", {"loanTerm": 12}, format="json")
    assert locked.status_code == 409
    assert locked.json()["code"] == "setup_locked"
    assert LoanSetup.objects.get(pk=setup_id).loan_term == 36


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"transactionDate": "2025-02-01", "transactionAmount": "-5"}, 400, "invalid"),
        ({"transactionDate": "2025-02-01", "transactionAmount": "abc"}, 400, "invalid"),
        ({"transactionDate": "2025-02-01", "transactionAmount": "1.005"}, 400, "invalid"),
        ({"transactionDate": "2025-02-30", "transactionAmount": "10"}, 400, "invalid"),
        ({"transactionAmount": "10"}, 400, "invalid"),
        ({"transactionDate": "2025-04-01", "transactionAmount": "10"}, 400, "future_date"),
        ({"transactionDate": "2024-12-31", "transactionAmount": "10"}, 400, "date_before_contract"),
        ({"transactionDate": "2025-02-01", "transactionAmount": "99999"}, 400, "overpayment"),
    ],
)
def test_bad_repayments_change_nothing(api, operator, body, status, code):
    set_business_date(date(2025, 3, 15))
    loan = make_active_loan(
        actor=operator,
        contract_date=date(2025, 1, 1),
        first_payment_date=date(2025, 2, 1),
        as_of=date(2025, 3, 15),
    )
    before = (Transaction.objects.count(), LoanEvent.objects.count())
    response = api.post(
        f"/api/v1/loans/{loan.pk}/transactions?command=repayment", body, format="json"
    )
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert set(response.json()) >= {"code", "detail", "errors"}
    assert (Transaction.objects.count(), LoanEvent.objects.count()) == before


def test_unknown_ids_and_commands(api, operator):
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(actor=operator)
    assert api.get("/api/v1/loans/999999").status_code == 404
    assert api.get("/api/v1/loans/external-id/nope").json()["code"] == "loan_not_found"
    assert api.patch("/api/v1/loan-setups/999999", {}, format="json").status_code == 404
    unknown = api.post(f"/api/v1/loans/{loan.pk}/transactions?command=refund", {}, format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_command"
    missing = api.post(
        f"/api/v1/loans/{loan.pk}/transactions/999999?command=undo", {}, format="json"
    )
    assert missing.status_code == 404 and missing.json()["code"] == "transaction_not_found"
    malformed = api.post(
        f"/api/v1/loans/{loan.pk}/transactions?command=repayment",
        "{not json",
        content_type="application/json",
    )
    assert malformed.status_code == 400 and malformed.json()["code"] == "malformed_request"


def test_create_validation_errors(api):
    before = Loan.objects.count()
    bad = create(
        api,
        scheduleEngine="TURBO",
        setup={**SETUP, "paymentFrequency": "DAILY", "loanAmount": "-1"},
    )
    assert bad.status_code == 400
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"scheduleEngine", "setup.paymentFrequency", "setup.loanAmount"} <= fields
    dates = create(api, setup={**SETUP, "firstPaymentDate": "2024-12-01"})
    assert dates.status_code == 400
    assert dates.json()["errors"][0]["field"] == "firstPaymentDate"
    assert create(api, borrower={**BORROWER, "timezone": "Mars/Base"}).status_code == 400
    no_borrower = {"externalId": "API-X", "borrowerId": 424242, "setup": dict(SETUP)}
    assert api.post("/api/v1/loans", no_borrower, format="json").status_code == 404
    assert Loan.objects.count() == before
    assert create(api).status_code == 201
    duplicate = create(api)
    assert duplicate.status_code == 400 and duplicate.json()["code"] == "duplicate_external_id"


def test_undo_repayment_and_business_date(api, viewer_api, operator):
    set_business_date(date(2025, 3, 15))
    loan = make_active_loan(
        actor=operator, contract_date=date(2025, 1, 1), first_payment_date=date(2025, 2, 1)
    )
    tx = api.post(
        f"/api/v1/loans/{loan.pk}/transactions?command=repayment",
        {"transactionDate": "2025-02-01", "transactionAmount": "88.85"},
        format="json",
    ).json()
    undone = api.post(
        f"/api/v1/loans/{loan.pk}/transactions/{tx['id']}?command=undo",
        {"note": "bounced", "reversalExternalId": "REV-1"},
        format="json",
    )
    assert undone.status_code == 200, undone.content
    assert undone.json()["reversed"] is True
    assert undone.json()["reversedOn"] == "2025-03-15"
    assert undone.json()["reversalExternalId"] == "REV-1"
    again = api.post(
        f"/api/v1/loans/{loan.pk}/transactions/{tx['id']}?command=undo", {}, format="json"
    )
    assert again.status_code == 409 and again.json()["code"] == "already_reversed"
    summary = api.get(f"/api/v1/loans/{loan.pk}").json()["summary"]
    assert summary["principalOutstanding"] == "1000.00"

    assert api.get("/api/v1/business-date").json() == {"date": "2025-03-15"}
    assert (
        viewer_api.put("/api/v1/business-date", {"date": "2025-04-01"}, format="json").status_code
        == 403
    )
    assert api.put("/api/v1/business-date", {"date": "2025-04-01"}, format="json").json() == {
        "date": "2025-04-01"
    }
    assert api.put("/api/v1/business-date", {"date": "nope"}, format="json").status_code == 400
    far = api.put("/api/v1/business-date", {"date": "9999-12-31"}, format="json")
    assert far.status_code == 400
    assert far.json()["code"] == "out_of_range"
    assert far.json()["errors"][0]["field"] == "date"
    assert api.get("/api/v1/business-date").json() == {"date": "2025-04-01"}


def test_viewer_cannot_run_commands(viewer_api, operator):
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(actor=operator)
    assert viewer_api.get(f"/api/v1/loans/{loan.pk}").status_code == 200
    response = viewer_api.post(
        f"/api/v1/loans/{loan.pk}/transactions?command=repayment",
        {"transactionDate": "2026-02-01", "transactionAmount": "10"},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_schema_and_docs_served_without_cdn(api):
    schema = api.get("/api/v1/schema")
    assert schema.status_code == 200
    docs = api.get("/api/v1/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html and "cdn.jsdelivr" not in html and "unpkg.com" not in html


@pytest.mark.parametrize(
    ("command", "body", "expected"),
    [
        ("repayment", {}, [("transactionDate", "required"), ("transactionAmount", "required")]),
        ("payoff", {}, [("transactionDate", "required"), ("transactionAmount", "required")]),
        ("charge", {}, [("transactionDate", "required"), ("amount", "required")]),
        ("credit", {"transactionDate": "2025-03-15"}, [("amount", "required")]),
        ("advancement", {"note": 5}, [("transactionDate", "required"), ("note", "not_a_string"), ("amount", "required")]),
        ("repayment", {"transactionDate": "2025-03-15"}, [("transactionAmount", "required")]),
        ("charge", {"amount": "-1.00"}, [("transactionDate", "required"), ("amount", "min_value")]),
    ],
)  # fmt: skip
def test_a_missing_amount_is_named_as_the_command_names_it(api, operator, command, body, expected):
    """DESIGN §6: charge, advancement and credit take ``amount``, the others
    ``transactionAmount``; a missing one is ``required`` beside the other fields' errors."""
    set_business_date(date(2025, 3, 15))
    loan = make_active_loan(
        actor=operator, contract_date=date(2025, 1, 1), first_payment_date=date(2025, 2, 1)
    )
    before = Transaction.objects.count()
    response = api.post(
        f"/api/v1/loans/{loan.pk}/transactions?command={command}", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == expected
    assert Transaction.objects.count() == before


def test_the_overpayment_error_names_the_request_field(api, operator):
    set_business_date(date(2025, 3, 15))
    loan = make_active_loan(
        actor=operator, contract_date=date(2025, 1, 1), first_payment_date=date(2025, 2, 1)
    )
    url = f"/api/v1/loans/{loan.pk}/transactions?command="
    repayment = api.post(
        f"{url}repayment",
        {"transactionDate": "2025-03-15", "transactionAmount": "99999"},
        format="json",
    )
    assert repayment.json()["errors"][0]["field"] == "transactionAmount"
    credit = api.post(
        f"{url}credit", {"transactionDate": "2025-03-15", "amount": "99999"}, format="json"
    )
    assert credit.json()["errors"][0]["field"] == "amount"


def test_dates_at_the_end_of_the_calendar_are_refused_by_field(api):
    response = create(api, setup={**SETUP, "firstPaymentDate": "9999-12-31"})
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("firstPaymentDate", "out_of_range")
    ]
    assert not Loan.objects.exists()
