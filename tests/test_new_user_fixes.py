"""What a new user hit (issue 15): the API root and ``/``, the favicon, one date format, the
cancel-servicing reason the operator must choose, the refused terminate page without a form."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from loans.models import ServicingStatus
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db


def test_api_root_links_the_docs(anon_api):
    response = anon_api.get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "http://testserver/api/v1/docs"
    assert body["schema"] == "http://testserver/api/v1/schema"
    assert anon_api.get(body["docs"]).status_code == 200


def test_root_redirects_to_the_admin(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_favicon(client, operator):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/loans/favicon.svg"
    client.force_login(operator)
    assert 'rel="icon" type="image/svg+xml"' in client.get("/admin/").content.decode()


def test_dates_are_iso_in_the_admin_lists(client, operator):
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(actor=operator)
    client.force_login(operator)
    html = client.get("/admin/loans/transaction/").content.decode()
    assert "2026-01-01" in html  # the disbursement's date
    assert "Jan. 1, 2026" not in html
    events = client.get("/admin/loans/loanevent/").content.decode()
    assert "a.m." not in events and "p.m." not in events
    page = client.get(f"/admin/loans/loan/{loan.pk}/change/").content.decode()
    assert "Feb. 18, 2026" not in page


def test_cancel_servicing_form_makes_the_operator_choose(client, operator):
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(actor=operator)
    client.force_login(operator)
    url = f"/admin/loans/loan/{loan.pk}/cancel-servicing/"
    page = client.get(url).content.decode()
    assert '<option value="" selected>— choose a reason —</option>' in page
    response = client.post(url, {"confirm": "1"})
    loan.refresh_from_db()
    assert loan.servicing_status == ServicingStatus.ACTIVE
    assert response.status_code == 200
    assert "Choose the reason servicing stops." in response.content.decode()


def test_refused_terminate_page_offers_no_form(client, operator):
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(
        actor=operator,
        loan_amount=Decimal("600.00"),
        loan_rate=Decimal("24"),
        loan_term=Decimal("6"),
        payment_frequency="BIWEEKLY",
        contract_date=date(2025, 12, 27),
        first_payment_date=date(2026, 1, 10),
        schedule_engine="STANDARD",
    )
    client.force_login(operator)
    page = client.get(f"/admin/loans/loan/{loan.pk}/terminate-contract/").content.decode()
    assert "Refused" in page
    assert 'id="terminate-contract-form"' not in page
    assert 'name="note"' not in page
    assert 'id="back-to-loan"' in page


def test_moving_the_business_date_back_before_transactions_asks_first(client, operator):
    from loans.models import BusinessDate

    set_business_date(date(2026, 2, 18))
    make_active_loan(actor=operator)  # disbursed 2026-01-01
    client.force_login(operator)
    url = "/admin/loans/businessdate/1/change/"
    response = client.post(url, {"date": "2025-12-01"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["confirm_backwards"] == [
        "Moving the business date back from 2026-02-18 to 2025-12-01: 1 transaction is dated "
        "after it (the latest on 2026-01-01). Tick to confirm."
    ]
    assert BusinessDate.objects.get().date == date(2026, 2, 18)
    assert client.post(url, {"date": "2025-12-01", "confirm_backwards": "on"}).status_code == 302
    assert BusinessDate.objects.get().date == date(2025, 12, 1)
    # Forward, or back without later transactions: no question.
    assert client.post(url, {"date": "2026-03-01"}).status_code == 302
    assert client.post(url, {"date": "2026-02-01"}).status_code == 302
