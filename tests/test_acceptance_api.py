"""Found by the acceptance audit (black-box walk of DESIGN §6): each test failed before its fix."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from servicing import dispatcher
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 2, 18)
NOON_NY = datetime(2026, 2, 18, 17, 0, tzinfo=UTC)


def test_a_processed_scheduled_payment_shows_its_transaction(api, operator):
    """A scheduled payment is PROCESSED "with its transaction" (DESIGN §1): the API showed the
    status only, so a client could not find the repayment it made."""
    set_business_date(AS_OF)
    loan = make_active_loan(actor=operator)
    url = f"/api/v1/loans/{loan.pk}/scheduled-payments"
    created = api.post(url, {"amount": "50.00", "scheduledDate": "2026-02-18"}, format="json")
    assert created.status_code == 201
    assert created.json()["transactionId"] is None and created.json()["autopayId"] is None
    assert dispatcher.dispatch_due(now=NOON_NY).executed == 1
    (row,) = api.get(url).json()["results"]
    repayment = loan.transactions.get(type="REPAYMENT")
    assert (row["status"], row["transactionId"], row["returnCode"]) == (
        "PROCESSED",
        repayment.pk,
        "",
    )
    assert row["executedAt"] is not None
