"""The operator's day in Debian's Chromium (Playwright) at 1366 px: create and activate a loan
with the live preview, post and reverse a charge, export the filtered changelist as CSV and
read the file, open the Portfolio dashboard and follow a figure to the filtered changelist,
walk the wizard with a bad date at step 1. Each flow saves screenshots under test-results/."""

from __future__ import annotations

import csv
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from loans.models import Loan, LoanStatus, Transaction, TransactionType
from loans.services import post_transaction
from servicing.services import cancel_servicing
from tests.factories import make_active_loan, set_business_date

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
AS_OF = date(2025, 3, 15)
TERMS = {
    "loan_amount": Decimal("10000.00"),
    "loan_rate": Decimal("15"),
    "loan_term": Decimal("60"),
    "contract_date": date(2025, 1, 1),
    "first_payment_date": date(2025, 2, 1),
}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1366, "height": 900}}


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def login(page, live_server, next_url: str) -> None:
    page.set_default_timeout(20000)
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass-123")
    page.click("input[type=submit]")


def test_create_and_activate_a_loan(page, live_server, operator):
    set_business_date(AS_OF)
    login(page, live_server, "/admin/loans/loan/")
    page.click("#create-loan-link")
    expect(page.locator("#create-loan-form")).to_be_visible()
    page.fill("#id_first_name", "Grace")
    page.fill("#id_last_name", "Hopper")
    page.fill("#id_email", "grace@example.com")
    page.select_option("#id_timezone", "America/Chicago")
    page.fill("#id_external_id", "BROWSER-NEW")
    page.fill("#id_loan_amount", "10000.00")
    page.fill("#id_loan_rate", "15")
    page.fill("#id_loan_term", "60")
    page.fill("#id_contract_date", "2025-01-01")
    page.fill("#id_first_payment_date", "2025-02-01")
    # The live preview (the static script fetches the server's fragment as the terms change).
    expect(page.locator("#preview-payment")).to_have_text("237.90")
    expect(page.locator("#schedule-preview-totals")).to_contain_text("total 14,273.90")
    expect(page.locator("#schedule-preview tbody tr")).to_have_count(60)
    shot(page, "create-loan-preview")
    page.fill("#id_first_payment_date", "2024-12-01")
    expect(page.locator("#schedule-preview-errors")).to_contain_text(
        "First payment date: Must be after the contract date."
    )
    page.fill("#id_first_payment_date", "2025-02-01")
    expect(page.locator("#preview-payment")).to_have_text("237.90")
    page.click("#create-loan")

    expect(page.locator("ul.messagelist")).to_contain_text("pending, payment 237.90")
    loan = Loan.objects.get(external_id="BROWSER-NEW")
    assert loan.status == LoanStatus.PENDING
    page.get_by_role("link", name="Activate loan").click()
    page.click("input[name=confirm]")
    expect(page.locator("ul.messagelist")).to_contain_text(f"{loan} activated.")
    expect(page.locator("#total-outstanding")).to_have_text("14,273.90")
    expect(page.locator("#balance-chart")).to_be_visible()
    shot(page, "loan-page-activated")
    loan.refresh_from_db()
    assert loan.status == LoanStatus.ACTIVE


def test_post_and_reverse_a_charge(page, live_server, operator):
    set_business_date(AS_OF)
    loan = make_active_loan(actor=operator, external_id="BROWSER-CHARGE", **TERMS)
    login(page, live_server, f"/admin/loans/loan/{loan.pk}/change/")
    page.get_by_role("link", name="Post charge").click()
    page.fill("#id_amount", "25.00")
    page.fill("#id_note", "late fee")
    shot(page, "post-charge")
    page.click("input[name=_post]")
    expect(page.locator("ul.messagelist")).to_contain_text(
        "Charge of 25.00 on 2025-03-15 posted; total outstanding now 14,298.90."
    )
    charge = Transaction.objects.get(loan=loan, type=TransactionType.CHARGE)
    page.click(f"#reverse-{charge.pk}")
    expect(page.locator("#reversed-amount")).to_have_text("25.00")
    expect(page.locator("#id_note")).to_have_attribute("required", "")  # a note is required
    page.fill("#id_note", "waived")
    shot(page, "reverse-charge")
    page.click("#confirm-reversal")
    expect(page.locator("ul.messagelist")).to_contain_text(
        f"Charge {charge.pk} of 25.00 on 2025-03-15 reversed (waived)"
    )
    expect(page.locator("#total-outstanding")).to_have_text("14,273.90")
    expect(page.locator("#loan-events")).to_contain_text(
        f"Reversed CHARGE {charge.pk} of 25.00 on 2025-03-15"
    )
    shot(page, "loan-page-audit-trail")
    charge.refresh_from_db()
    assert charge.reversed and charge.reversal_note == "waived"


def test_export_the_filtered_list_as_csv(page, live_server, operator):
    set_business_date(AS_OF)
    make_active_loan(actor=operator, external_id="CSV-1", **TERMS)
    stopped = make_active_loan(actor=operator, external_id="CSV-2", **TERMS)
    cancel_servicing(loan=stopped, reason="BANKRUPTCY", actor=operator)
    login(page, live_server, "/admin/loans/loan/?servicing_status__exact=NOT_SERVICING")
    expect(page.locator("#result_list")).to_contain_text("CSV-2")
    shot(page, "changelist-filtered")
    with page.expect_download() as info:
        page.click("#export-csv-link")
    download = info.value
    assert download.suggested_filename == "loans-2025-03-15.csv"
    rows = list(csv.DictReader(Path(download.path()).read_text(encoding="utf-8").splitlines()))
    assert [r["externalId"] for r in rows] == ["CSV-2"]
    assert (rows[0]["servicingStatus"], rows[0]["totalOutstanding"]) == (
        "NOT_SERVICING",
        "14273.90",
    )
    assert (rows[0]["amountPastDue"], rows[0]["daysPastDue"]) == ("475.80", "42")


def test_dashboard_charts_and_links(page, live_server, operator):
    set_business_date(AS_OF)
    loan_a = make_active_loan(actor=operator, external_id="DASH-1", **TERMS)
    stopped = make_active_loan(actor=operator, external_id="DASH-2", **TERMS)
    cancel_servicing(loan=stopped, reason="BANKRUPTCY", actor=operator)
    post_transaction(
        loan=stopped,
        type=TransactionType.REPAYMENT,
        on=date(2025, 2, 1),
        amount=Decimal("237.90"),
        actor=operator,
    )
    from datetime import timedelta

    from servicing.models import LoanDailySnapshot

    for offset in range(30):
        for loan, bucket, past_due in ((stopped, "DPD_1_30", 237.9), (loan_a, "CURRENT", 0)):
            LoanDailySnapshot.objects.create(
                loan=loan,
                business_date=AS_OF - timedelta(days=29 - offset),
                status="ACTIVE",
                servicing_status=loan.servicing_status,
                delinquency_bucket=bucket,
                days_past_due=offset if past_due else 0,
                amount_past_due=Decimal(str(past_due * (1 + offset // 10))).quantize(
                    Decimal("0.01")
                ),
                principal_outstanding=Decimal("10000.00") - offset * 10,
                interest_outstanding=Decimal("0.00"),
                fees_outstanding=Decimal("0.00"),
                payoff_total=Decimal("10000.00"),
            )
    login(page, live_server, "/admin/")
    page.click("#portfolio-link")
    for chart in ("#chart-outstanding", "#chart-past-due", "#chart-buckets"):
        expect(page.locator(chart)).to_be_visible()
    expect(page.locator("#chart-buckets polyline")).to_have_count(2)
    expect(page.locator("#dispatcher-queue")).to_contain_text("Due now")
    expect(page.locator("#portfolio-total")).to_contain_text("2 loans")
    expect(page.locator("#portfolio-total")).to_contain_text("past due 713.70")
    row = page.locator("#portfolio-byServicingStatus tr[data-value=NOT_SERVICING]")
    expect(row.locator("td.count")).to_have_text("1")
    shot(page, "portfolio-dashboard")
    row.locator("td.count a").click()
    expect(page).to_have_url(
        re.compile(r".*/admin/loans/loan/\?servicing_status__exact=NOT_SERVICING$")
    )
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("DASH-2")


def test_wizard_refuses_a_bad_date_at_step_one(page, live_server, operator):
    set_business_date(AS_OF)
    loan = make_active_loan(actor=operator, external_id="WIZ-1", **TERMS)
    login(page, live_server, f"/admin/loans/loan/{loan.pk}/change/")
    page.get_by_role("link", name="Modify loan").click()
    page.fill("#id_date-modification_date", "2025-04-01")
    page.click("#wizard-next")
    expect(page.locator("li.current")).to_contain_text("Modification date")
    expect(page.locator("ul.messagelist li.error")).to_contain_text(
        "The modification date 2025-04-01 is after the business date 2025-03-15."
    )
    expect(page.locator(".errorlist")).to_contain_text("After the business date.")
    shot(page, "wizard-bad-date")
    page.fill("#id_date-modification_date", "2025-03-01")
    page.click("#wizard-next")
    expect(page.locator("li.current")).to_contain_text("Transactions after the date")


def test_read_the_payoff_quote(page, live_server, operator):
    """Issue 10's loan L: 100 at 7 %, 6 monthly, HALF_EVEN, 17.01 paid on 2024-02-01; on the
    business date 2024-02-14 the payoff is 83.79, ten days later 83.96, per diem 0.02."""
    set_business_date(date(2024, 1, 1))
    loan = make_active_loan(
        actor=operator,
        external_id="BROWSER-PAYOFF",
        loan_amount=Decimal("100.00"),
        loan_rate=Decimal("7"),
        loan_term=Decimal("6"),
        contract_date=date(2024, 1, 1),
        first_payment_date=date(2024, 2, 1),
        rounding_mode="HALF_EVEN",
        as_of=date(2024, 1, 1),
    )
    set_business_date(date(2024, 2, 14))
    post_transaction(
        loan=loan,
        type=TransactionType.REPAYMENT,
        on=date(2024, 2, 1),
        amount=Decimal("17.01"),
        actor=operator,
    )
    login(page, live_server, f"/admin/loans/loan/{loan.pk}/change/")
    page.get_by_role("link", name="Payoff quote").click()
    rows = page.locator("#payoff-quotes tbody tr")
    expect(rows).to_have_count(11)
    expect(rows.first).to_contain_text("2024-02-14 (business date)")
    expect(rows.first.locator("td").last).to_have_text("83.79")
    expect(rows.last).to_contain_text("2024-02-24")
    expect(rows.last.locator("td").last).to_have_text("83.96")
    expect(page.locator("#content")).to_contain_text("(per diem): 0.02")
    shot(page, "payoff-quote")
