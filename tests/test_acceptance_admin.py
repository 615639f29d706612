"""Found by the acceptance audit (the admin in a browser): each test failed before its fix."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from servicing.models import Autopay, ScheduledPayment
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db


def test_money_on_the_list_pages_has_thousands_separators(client, operator):
    """DESIGN §7: money with thousands separators on every page; the transaction, scheduled
    payment and autopay lists showed raw DecimalFields (10000.00)."""
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(actor=operator, loan_amount=Decimal("10000.00"))
    ScheduledPayment.objects.create(
        loan=loan, amount=Decimal("1234.50"), scheduled_date=date(2026, 3, 1)
    )
    Autopay.objects.create(
        loan=loan,
        method="ACH",
        amount_type="FIXED",
        amount=Decimal("2500.00"),
        start_date=date(2026, 2, 18),
    )
    client.force_login(operator)
    for url, shown, raw in [
        ("/admin/loans/transaction/", "10,000.00", ">10000.00<"),
        ("/admin/servicing/scheduledpayment/", "1,234.50", ">1234.50<"),
        ("/admin/servicing/autopay/", "2,500.00", ">2500.00<"),
    ]:
        html = client.get(url).content.decode()
        assert shown in html and raw not in html, url
    sorted_page = client.get("/admin/loans/transaction/?o=5")  # by amount
    assert sorted_page.status_code == 200
