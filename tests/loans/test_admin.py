"""Admin of the loan core: changelist with summary columns, the loan page, post repayment,
and the business date in the header."""

from datetime import date
from decimal import Decimal

import pytest

from loans.models import BusinessDate, Transaction, TransactionType
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan(operator):
    set_business_date(date(2025, 3, 15))
    return make_active_loan(
        actor=operator,
        external_id="ADM-1",
        loan_amount=Decimal("10000.00"),
        loan_rate=Decimal("15"),
        loan_term=Decimal("60"),
        contract_date=date(2025, 1, 1),
        first_payment_date=date(2025, 2, 1),
    )


def test_changelist_columns_and_search(client, operator, loan):
    client.force_login(operator)
    response = client.get("/admin/loans/loan/?q=ADM-1")
    assert response.status_code == 200
    html = response.content.decode()
    assert "ADM-1" in html
    # Two installments (2025-02-01 and 2025-03-01) unpaid by 2025-03-15: 475.80 past due, 42 days.
    assert '<td class="field-amount_past_due_col">475.80</td>' in html
    assert '<td class="field-days_past_due_col">42</td>' in html
    assert 'id="business-date"' in html and "2025-03-15" in html
    filtered = client.get("/admin/loans/loan/?status__exact=PENDING")
    assert "ADM-1" not in filtered.content.decode()


def test_loan_page_shows_schedule_transactions_and_buttons(client, operator, viewer, loan):
    client.force_login(operator)
    html = client.get(f"/admin/loans/loan/{loan.pk}/change/").content.decode()
    assert 'id="loan-schedule"' in html and "237.80" in html  # the final installment
    assert "DISBURSEMENT" in html
    assert "Post repayment" in html
    client.force_login(viewer)
    html = client.get(f"/admin/loans/loan/{loan.pk}/change/").content.decode()
    assert 'id="loan-schedule"' in html
    assert "Post repayment" not in html


def test_post_repayment_page(client, operator, loan):
    client.force_login(operator)
    url = f"/admin/loans/loan/{loan.pk}/post-repayment/"
    page = client.get(url)
    assert page.status_code == 200 and "2025-03-15" in page.content.decode()
    response = client.post(
        url, {"transaction_date": "2025-02-01", "amount": "237.90", "note": "cheque"}, follow=True
    )
    assert response.status_code == 200
    assert "principal 112.90, interest 125.00" in response.content.decode()
    tx = Transaction.objects.get(loan=loan, type=TransactionType.REPAYMENT)
    assert (tx.amount, tx.note, tx.created_by) == (Decimal("237.90"), "cheque", operator)


def test_post_repayment_errors_are_shown_and_nothing_written(client, operator, loan):
    client.force_login(operator)
    url = f"/admin/loans/loan/{loan.pk}/post-repayment/"
    response = client.post(url, {"transaction_date": "2025-04-01", "amount": "10"})
    assert response.status_code == 200
    assert "after the business date" in response.content.decode()
    assert not Transaction.objects.filter(type=TransactionType.REPAYMENT).exists()


def test_post_repayment_forbidden_without_permission(client, viewer, loan):
    client.force_login(viewer)
    url = f"/admin/loans/loan/{loan.pk}/post-repayment/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"transaction_date": "2025-02-01", "amount": "10"}).status_code == 403
    assert not Transaction.objects.filter(type=TransactionType.REPAYMENT).exists()


def test_a_business_date_out_of_range_is_a_form_error_in_admin(client, operator, loan):
    client.force_login(operator)
    before = BusinessDate.objects.get().date
    response = client.post("/admin/loans/businessdate/1/change/", {"date": "9999-12-31"})
    assert response.status_code == 200
    assert "Must be before 9949-01-01" in response.content.decode()
    assert BusinessDate.objects.get().date == before


def test_set_business_date_in_admin(client, operator, viewer, loan):
    client.force_login(operator)
    response = client.post("/admin/loans/businessdate/1/change/", {"date": "2025-04-01"})
    assert response.status_code == 302
    assert BusinessDate.objects.get().date == date(2025, 4, 1)
    client.force_login(viewer)
    html = client.get("/admin/").content.decode()
    assert "2025-04-01" in html
    assert (
        client.post("/admin/loans/businessdate/1/change/", {"date": "2025-05-01"}).status_code
        == 403
    )
    assert BusinessDate.objects.get().date == date(2025, 4, 1)
