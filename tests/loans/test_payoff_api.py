"""The payoff quote, command=payoff and command=creditBalanceRefund over the API (DESIGN §6, §9)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from loans.models import Transaction, TransactionType
from loans.services import post_transaction, reverse_transaction
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan(operator):
    """Loan L of issue 10 after a 17.01 repayment on 2024-02-01; business date 2024-02-14."""
    set_business_date(date(2024, 1, 1))
    loan = make_active_loan(
        actor=operator,
        external_id="LOAN-L",
        loan_amount=D("100.00"),
        loan_rate=D("7"),
        loan_term=D("6"),
        payment_frequency="MONTHLY",
        contract_date=date(2024, 1, 1),
        first_payment_date=date(2024, 2, 1),
        rounding_mode="HALF_EVEN",
        as_of=date(2024, 1, 1),
    )
    set_business_date(date(2024, 2, 14))
    post_transaction(
        loan=loan, type="REPAYMENT", on=date(2024, 2, 1), amount=D("17.01"), actor=operator
    )
    return loan


@pytest.mark.parametrize("form", ["id", "external-id"])
def test_payoff_quote_defaults_to_the_business_date_and_ten_days(api, loan, form):
    base = f"/api/v1/loans/{loan.pk}" if form == "id" else "/api/v1/loans/external-id/LOAN-L"
    response = api.get(f"{base}/payoff")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["perDiem"] == "0.02"
    assert body["creditBalance"] == "0.00"
    assert len(body["quotes"]) == 11
    assert body["quotes"][0] == {
        "date": "2024-02-14",
        "principal": "83.57",
        "interest": "0.22",
        "fees": "0.00",
        "total": "83.79",
    }
    assert body["quotes"][-1]["date"] == "2024-02-24"
    assert body["quotes"][-1]["total"] == "83.96"


def test_payoff_quote_for_a_date_and_days(api, loan):
    body = api.get(f"/api/v1/loans/{loan.pk}/payoff?date=2024-03-01&days=1").json()
    assert [(q["date"], q["total"]) for q in body["quotes"]] == [
        ("2024-03-01", "84.06"),  # 83.57 + the whole 0.49 of #2, due that day
        ("2024-03-02", "84.07"),  # + 1 of the 31 days of #3's 0.39
    ]


@pytest.mark.parametrize(
    "query, code",
    [
        ("date=2024-01-31", "date_before_last_transaction"),
        ("date=2024-02-30", "invalid"),
        ("days=-1", "invalid"),
        ("days=367", "invalid"),
        ("days=abc", "invalid"),
    ],
)
def test_payoff_quote_bad_input(api, loan, query, code):
    response = api.get(f"/api/v1/loans/{loan.pk}/payoff?{query}")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "detail", "errors"}
    if code != "invalid":
        assert body["code"] == code


def test_summary_shows_the_payoff_today_and_the_credit_balance(api, loan):
    summary = api.get(f"/api/v1/loans/{loan.pk}").json()["summary"]
    assert summary["payoffToday"] == "83.79"
    assert summary["creditBalance"] == "0.00"


def test_payoff_command(api, loan):
    url = f"/api/v1/loans/{loan.pk}/transactions?command=payoff"
    wrong = api.post(url, {"transactionDate": "2024-02-14", "transactionAmount": "83.78"})
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "payoff_amount_mismatch"
    assert "83.79" in wrong.json()["detail"]
    assert wrong.json()["errors"][0]["field"] == "transactionAmount"
    assert Transaction.objects.filter(loan=loan, type=TransactionType.PAYOFF).count() == 0

    response = api.post(url, {"transactionDate": "2024-02-14", "transactionAmount": "83.79"})
    assert response.status_code == 200, response.content
    tx = response.json()
    assert (tx["type"], tx["amount"], tx["principalPortion"], tx["interestPortion"]) == (
        "PAYOFF",
        "83.79",
        "83.57",
        "0.22",
    )
    detail = api.get(f"/api/v1/loans/{loan.pk}").json()
    assert detail["status"] == "CLOSED"
    assert detail["summary"]["totalOutstanding"] == "0.00"
    assert detail["summary"]["payoffToday"] == "0.00"

    again = api.post(url, {"transactionDate": "2024-02-14", "transactionAmount": "0.01"})
    assert again.status_code == 409
    assert again.json()["code"] == "loan_closed"


def test_credit_balance_refund_command(api, operator, loan):
    charge = post_transaction(
        loan=loan, type="CHARGE", on=date(2024, 2, 14), amount=D("5.00"), actor=operator
    )
    post_transaction(
        loan=loan, type="REPAYMENT", on=date(2024, 2, 14), amount=D("90.04"), actor=operator
    )
    reverse_transaction(loan=loan, transaction_id=charge.pk, actor=operator)
    detail = api.get(f"/api/v1/loans/{loan.pk}").json()
    assert detail["status"] == "OVERPAID"
    assert detail["summary"]["creditBalance"] == "5.00"

    url = "/api/v1/loans/external-id/LOAN-L/transactions?command=creditBalanceRefund"
    above = api.post(url, {"transactionDate": "2024-02-14", "transactionAmount": "5.01"})
    assert above.status_code == 400
    assert above.json()["code"] == "refund_above_credit_balance"
    response = api.post(url, {"transactionDate": "2024-02-14", "transactionAmount": "5.00"})
    assert response.status_code == 200, response.content
    assert response.json()["type"] == "CREDIT_BALANCE_REFUND"
    assert response.json()["overpaymentPortion"] == "5.00"
    detail = api.get(f"/api/v1/loans/{loan.pk}").json()
    assert (detail["status"], detail["summary"]["creditBalance"]) == ("CLOSED", "0.00")
