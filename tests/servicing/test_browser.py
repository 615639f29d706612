"""An operator's session in Debian's Chromium: log in, select two loans on the loan changelist,
run "Cancel servicing", check the counts on the confirmation page, confirm, read the result."""

from __future__ import annotations

import re

import pytest

from loans.models import ServicingStatus
from tests.factories import make_active_loan, set_business_date
from tests.servicing.helpers import AS_OF, add_noise, add_seed_000_mix

SEED_ROW = ["3", "5", "2", "3", "1", "1", "1", "16"]
COLUMNS = [
    "payments",
    "calls",
    "emails",
    "sms",
    "call-schedules",
    "email-schedules",
    "sms-schedules",
    "total",
]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_operator_cancels_servicing_of_two_loans(page, live_server, operator):
    set_business_date(AS_OF)
    first = make_active_loan(actor=operator, external_id="BROWSER-1")
    second = make_active_loan(actor=operator, external_id="BROWSER-2")
    untouched = make_active_loan(actor=operator, external_id="BROWSER-3")
    for loan in (first, second, untouched):
        add_seed_000_mix(loan, operator)
    add_noise(first)

    page.goto(f"{live_server.url}/admin/login/?next=/admin/loans/loan/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass-123")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/loans/loan/$"))

    page.check(f"input[name=_selected_action][value='{first.pk}']")
    page.check(f"input[name=_selected_action][value='{second.pk}']")
    page.select_option("select[name=action]", "cancel_servicing_selected")
    page.click("button[name=index]")

    page.wait_for_selector("#cancel-servicing-counts")
    assert "Cancel servicing of the selected loans" in page.title()
    for loan in (first, second):
        cells = [page.inner_text(f"#loan-{loan.pk} td.{column}").strip() for column in COLUMNS]
        assert cells == SEED_ROW
    assert page.locator(f"#loan-{untouched.pk}").count() == 0
    assert page.input_value("select[name=reason]") == ""  # the operator must choose
    page.select_option("select[name=reason]", "SOLD_OFF")
    page.click("input[name=confirm]")

    page.wait_for_url(re.compile(r".*/admin/loans/loan/$"))
    messages = page.inner_text("ul.messagelist")
    for loan in (first, second):
        assert (
            f"{loan}: servicing cancelled (SOLD_OFF): 3 payments, 5 calls, 2 emails, 3 SMS, "
            "1 call / 1 email / 1 SMS schedules." in messages
        )
    for loan in (first, second):
        loan.refresh_from_db()
        assert loan.servicing_status == ServicingStatus.NOT_SERVICING
        assert loan.stop_servicing_reason == "SOLD_OFF"
    untouched.refresh_from_db()
    assert untouched.servicing_status == ServicingStatus.ACTIVE
