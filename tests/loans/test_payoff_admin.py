"""Admin: the payoff quote page, the payoff and credit balance refund pages and their buttons."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from loans.models import LoanStatus, Transaction, TransactionType
from loans.services import post_transaction, reverse_transaction
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan(operator):
    """Loan L of issue 10 after a 17.01 repayment on 2024-02-01; business date 2024-02-14."""
    set_business_date(date(2024, 1, 1))
    loan = make_active_loan(
        actor=operator,
        external_id="ADM-L",
        loan_amount=D("100.00"),
        loan_rate=D("7"),
        loan_term=D("6"),
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


def page(client, loan, suffix=""):
    return client.get(f"/admin/loans/loan/{loan.pk}/change/{suffix}")


def test_loan_page_has_the_payoff_buttons(client, operator, loan):
    client.force_login(operator)
    html = page(client, loan).content.decode()
    assert f"/admin/loans/loan/{loan.pk}/payoff-quote/" in html
    assert f"/admin/loans/loan/{loan.pk}/payoff/" in html
    assert "Refund credit balance" not in html  # no credit balance


def test_payoff_quote_page_shows_the_business_date_and_ten_days(client, operator, loan):
    client.force_login(operator)
    response = client.get(f"/admin/loans/loan/{loan.pk}/payoff-quote/")
    assert response.status_code == 200
    html = response.content.decode()
    table = html[html.index('id="payoff-quotes"') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr class=") == 11
    assert "2024-02-14 (business date)" in html and "2024-02-24" in html
    assert "<strong>83.79</strong>" in html and "<strong>83.96</strong>" in html
    assert "(per diem): <strong>0.02</strong>" in html


def test_payoff_page_closes_the_loan(client, operator, loan):
    client.force_login(operator)
    url = f"/admin/loans/loan/{loan.pk}/payoff/"
    form = client.get(url)
    assert form.status_code == 200 and 'value="83.79"' in form.content.decode()
    wrong = client.post(url, {"transaction_date": "2024-02-14", "amount": "83.00"})
    assert wrong.status_code == 200
    assert "The payoff on 2024-02-14 is 83.79, not 83.00." in wrong.content.decode()
    assert not Transaction.objects.filter(loan=loan, type=TransactionType.PAYOFF).exists()
    done = client.post(url, {"transaction_date": "2024-02-14", "amount": "83.79"})
    assert done.status_code == 302
    loan.refresh_from_db()
    assert loan.status == LoanStatus.CLOSED
    tx = Transaction.objects.get(loan=loan, type=TransactionType.PAYOFF)
    assert (tx.amount, tx.principal_portion, tx.interest_portion) == (
        D("83.79"),
        D("83.57"),
        D("0.22"),
    )


def test_refund_page(client, operator, loan):
    charge = post_transaction(
        loan=loan, type="CHARGE", on=date(2024, 2, 14), amount=D("5.00"), actor=operator
    )
    post_transaction(
        loan=loan, type="REPAYMENT", on=date(2024, 2, 14), amount=D("90.04"), actor=operator
    )
    reverse_transaction(loan=loan, transaction_id=charge.pk, actor=operator)
    client.force_login(operator)
    assert "Refund credit balance" in page(client, loan).content.decode()
    url = f"/admin/loans/loan/{loan.pk}/credit-balance-refund/"
    assert "The credit balance is 5.00" in client.get(url).content.decode()
    above = client.post(url, {"transaction_date": "2024-02-14", "amount": "6.00"})
    assert "more than the credit balance 5.00" in above.content.decode()
    done = client.post(url, {"transaction_date": "2024-02-14", "amount": "5.00"})
    assert done.status_code == 302
    loan.refresh_from_db()
    assert loan.status == LoanStatus.CLOSED


def test_viewer_may_read_the_quote_but_not_pay_off(client, viewer, loan):
    client.force_login(viewer)
    assert client.get(f"/admin/loans/loan/{loan.pk}/payoff-quote/").status_code == 200
    response = client.post(
        f"/admin/loans/loan/{loan.pk}/payoff/",
        {"transaction_date": "2024-02-14", "amount": "83.79"},
    )
    assert response.status_code == 403
    assert not Transaction.objects.filter(loan=loan, type=TransactionType.PAYOFF).exists()
