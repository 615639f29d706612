"""An operator walks the modification wizard in Debian's Chromium (Playwright): from the loan
page to activation, going back one step once, checking the review's two schedules and chart."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from loans.models import Loan, Transaction
from modifications.models import Modification, ModificationStatus


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_operator_walks_the_wizard(page, live_server, operator, modifiable):
    loan = modifiable
    page.set_default_timeout(15000)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/loans/loan/{loan.pk}/change/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass-123")
    page.click("input[type=submit]")
    expect(page.locator("#loan-commands")).to_be_visible()

    page.get_by_role("link", name="Modify loan").click()
    expect(page.locator("li.current")).to_contain_text("Modification date")
    page.fill("#id_date-modification_date", "2025-07-15")
    page.click("#wizard-next")

    # (1) the pre-mod test as a checklist, all kept by default
    checkboxes = page.locator("#pre-mod-test input[type=checkbox]")
    expect(checkboxes).to_have_count(2)
    for i in range(2):
        expect(checkboxes.nth(i)).to_be_checked()
    page.locator(f"#pre-mod-test input[value='{loan.dropped_tx.pk}']").uncheck()
    page.click("#wizard-next")

    # (2) new terms with a schedule preview
    expect(page.locator("li.current")).to_contain_text("New terms")
    expect(page.locator("#carried-balance")).to_have_text("9353.58")
    expect(page.locator("#schedule-preview tbody tr")).to_have_count(6 + 54)
    page.fill("#id_terms-loan_term", "48")  # the preview follows as the terms change
    expect(page.locator("#schedule-preview-title")).to_contain_text("not saved yet")
    expect(page.locator("#schedule-preview tbody tr")).to_have_count(6 + 48)
    page.fill("#id_terms-loan_term", "36")
    page.click("#wizard-preview")  # and on the server, without JavaScript
    expect(page.locator("#schedule-preview tbody tr")).to_have_count(6 + 36)
    page.fill("#id_terms-loan_term", "54")
    page.fill("#id_terms-first_payment_date", "2025-07-10")
    page.click("#wizard-next")
    # The error is shown under the field it is about (not only on top of the form).
    expect(page.locator(".form-row.errors .errorlist")).to_contain_text(
        "Must be after the contract date"
    )
    page.fill("#id_terms-first_payment_date", "2025-08-15")
    page.click("#wizard-next")

    # (3) roll the payment to 250.00 (exact term)
    expect(page.locator("li.current")).to_contain_text("Roll payment")
    page.fill("#id_roll-amount", "116.00")
    page.click("#wizard-next")
    expect(page.locator("ul.messagelist li.error")).to_contain_text(
        "does not cover one period's interest"
    )
    page.fill("#id_roll-amount", "250.00")
    page.click("#wizard-next")

    # (4) review; go back one step once, then forward again
    expect(page.locator("li.current")).to_contain_text("Review")
    page.click("#wizard-back")
    expect(page.locator("li.current")).to_contain_text("Roll payment")
    expect(page.locator("#id_roll-amount")).to_have_value("250.00")
    page.click("#wizard-next")
    expect(page.locator("li.current")).to_contain_text("Review")
    expect(page.locator("#old-schedule")).to_have_text("Old schedule")
    expect(page.locator("#new-schedule")).to_have_text("New schedule")
    expect(page.locator("#schedule-comparison tr.changed").first).to_be_visible()
    expect(page.locator("#review-terms")).to_contain_text("9353.58")
    expect(page.locator("#review-terms")).to_contain_text("50.7553")
    expect(page.locator("svg#balance-chart")).to_be_visible()
    expect(page.locator("svg#balance-chart polyline")).to_have_count(2)
    expect(page.locator("#review-reversed")).to_contain_text("2025-07-25 Repayment")

    # (5) activate
    page.click("#wizard-next")
    expect(page.locator("ul.messagelist")).to_contain_text("is active")
    expect(page).to_have_url(f"{live_server.url}/admin/loans/loan/{loan.pk}/change/")

    loan = Loan.objects.get(pk=loan.pk)
    modification = Modification.objects.get(loan=loan)
    assert modification.status == ModificationStatus.ACTIVE
    assert (loan.mod_total, loan.setup_id) == (1, modification.setup_id)
    assert (loan.setup.loan_term, loan.setup.payment) == (Decimal("50.7553"), Decimal("250.00"))
    assert Transaction.objects.get(pk=modifiable.dropped_tx.pk).reversed_by_modification_id == (
        modification.pk
    )
    assert Transaction.objects.get(pk=modifiable.kept_tx.pk).reversed is False
