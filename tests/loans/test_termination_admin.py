"""Contract termination in the admin: per-loan pages, actions on selected loans, and a browser
walk-through (Playwright)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.contrib.admin import helpers
from django.urls import reverse
from playwright.sync_api import expect

from loans.models import Loan, LoanEvent, Schedule, Transaction, TransactionType
from loans.services import terminate_contract
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:loans_loan_changelist")


def loan_page(loan):
    return reverse("admin:loans_loan_change", args=[loan.pk])


def terminate_page(loan):
    return reverse("admin:loans_loan_terminate_contract", args=[loan.pk])


def undo_page(loan):
    return reverse("admin:loans_loan_undo_contract_termination", args=[loan.pk])


def counts():
    return (Transaction.objects.count(), Schedule.objects.count(), LoanEvent.objects.count())


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def standard_loan(operator, baseline_b):
    return make_active_loan(actor=operator, external_id="STD-1", schedule_engine="STANDARD")


# ------------------------------------------------------------------ per-loan pages


def test_loan_page_shows_the_terminate_button(operator_client, baseline_b):
    response = operator_client.get(loan_page(baseline_b))
    assert response.status_code == 200
    assert f'href="{terminate_page(baseline_b)}">Terminate contract</a>' in text(response)
    assert "Undo termination" not in text(response)


def test_viewer_sees_no_button_and_may_not_open_the_page(viewer_client, baseline_b):
    response = viewer_client.get(loan_page(baseline_b))
    assert response.status_code == 200
    assert "Terminate contract" not in text(response)
    assert viewer_client.get(terminate_page(baseline_b)).status_code == 403
    assert viewer_client.post(terminate_page(baseline_b), {}).status_code == 403
    assert viewer_client.get(undo_page(baseline_b)).status_code == 403


def test_unknown_loan_is_404(operator_client, db):
    url = reverse("admin:loans_loan_terminate_contract", args=[999999])
    assert operator_client.get(url).status_code == 404


def test_terminate_page_previews_without_changing_anything(operator_client, baseline_b):
    before = counts()
    response = operator_client.get(terminate_page(baseline_b))
    assert response.status_code == 200
    assert counts() == before
    page = text(response)
    assert 'id="termination-date">2026-02-18<' in page
    row = re.search(rf'<tr class="allowed" id="preview-loan-{baseline_b.pk}">(.*?)</tr>', page)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells[2:8] == ["4", "2026-02-18", "300.00", "5.54", "0.00", "<strong>305.54</strong>"]
    assert "305.54 <small>(principal 300.00, interest 5.54, fees 0.00)</small>" in cells[8]
    assert 'id="next-due-after">2026-02-18<' in page
    assert 'id="confirm-termination"' in page
    preview = response.context["previews"][0]
    assert [str(x) for x in (preview.principal, preview.interest, preview.fees, preview.total)] == [
        "300.00",
        "5.54",
        "0.00",
        "305.54",
    ]


def test_terminate_from_the_loan_page(operator_client, baseline_b):
    response = operator_client.post(
        terminate_page(baseline_b),
        {
            "note": "Merchant cancelled order XYZ",
            "external_id": "CT-ADM-1",
            "business_date": "2026-02-18",
        },
        follow=True,
    )
    assert response.redirect_chain == [(loan_page(baseline_b), 302)]
    assert messages_of(response) == [
        f"{baseline_b}: contract terminated on 2026-02-18. Contract termination transaction "
        "305.54 (principal 300.00, interest 5.54, fees 0.00)."
    ]
    loan = Loan.objects.get(pk=baseline_b.pk)
    assert loan.sub_status == "CONTRACT_TERMINATION"
    tx = Transaction.objects.get(type=TransactionType.CONTRACT_TERMINATION)
    assert (tx.external_id, tx.note, tx.amount) == (
        "CT-ADM-1",
        "Merchant cancelled order XYZ",
        tx.amount,
    )
    page = text(response)
    assert 'id="sub-status">Sub-status: CONTRACT_TERMINATION<' in page
    assert f'href="{undo_page(baseline_b)}">Undo termination</a>' in page
    assert "Repayment schedule v2 (CONTRACT_TERMINATION)" in page
    assert 'href="?schedule_version=1#loan-schedule">v1 (ACTIVATION)</a>' in page

    earlier = text(operator_client.get(loan_page(baseline_b) + "?schedule_version=1"))
    assert "Repayment schedule v1 (ACTIVATION) — earlier version" in earlier
    assert "2026-03-21" in earlier


def test_a_stale_preview_is_shown_again(operator_client, baseline_b):
    before = counts()
    response = operator_client.post(
        terminate_page(baseline_b), {"note": "", "external_id": "", "business_date": "2026-02-17"}
    )
    assert response.status_code == 200
    assert "The business date changed to 2026-02-18 since the preview" in text(response)
    assert counts() == before


def test_refused_termination_shows_the_reasons(operator_client, standard_loan):
    Loan.objects.filter(pk=standard_loan.pk).update(charged_off=True)
    response = operator_client.get(terminate_page(standard_loan))
    page = text(response)
    assert 'data-code="engine_not_dynamic"' in page
    assert 'data-code="loan_charged_off"' in page
    assert 'id="confirm-termination"' not in page
    before = counts()
    response = operator_client.post(terminate_page(standard_loan), {"business_date": "2026-02-18"})
    assert response.status_code == 200
    assert "The loan uses the standard schedule engine" in text(response)
    assert counts() == before


def test_duplicate_external_id_is_shown_on_the_form(operator_client, baseline_b, operator):
    Transaction.objects.filter(loan=baseline_b, type="REPAYMENT").update(external_id=None)
    first = Transaction.objects.filter(loan=baseline_b, type="REPAYMENT").first()
    Transaction.objects.filter(pk=first.pk).update(external_id="TAKEN")
    before = counts()
    response = operator_client.post(
        terminate_page(baseline_b), {"external_id": "TAKEN", "business_date": "2026-02-18"}
    )
    assert response.status_code == 200
    assert "Already used." in text(response)
    assert counts() == before


def test_undo_from_the_loan_page(operator_client, baseline_b, operator):
    terminate_contract(loan=baseline_b, actor=operator)
    response = operator_client.get(undo_page(baseline_b))
    page = text(response)
    assert 'id="confirm-undo"' in page
    assert "Schedule after the undo" in page
    row = re.search(rf'<tr class="allowed" id="preview-loan-{baseline_b.pk}">(.*?)</tr>', page)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells[3:7] == ["305.54", "6", "2026-02-21", "305.54"]

    response = operator_client.post(
        undo_page(baseline_b),
        {
            "note": "Dispute resolved",
            "reversal_external_id": "UNDO-ADM-1",
            "business_date": "2026-02-18",
        },
        follow=True,
    )
    assert response.redirect_chain == [(loan_page(baseline_b), 302)]
    tx = Transaction.objects.get(type=TransactionType.CONTRACT_TERMINATION)
    assert messages_of(response) == [
        f"{baseline_b}: contract termination undone; transaction {tx.pk} reversed and the "
        "schedule restored."
    ]
    assert (tx.reversed, tx.reversal_external_id) == (True, "UNDO-ADM-1")
    assert Loan.objects.get(pk=baseline_b.pk).sub_status is None
    assert "Sub-status:" not in text(response)


# ------------------------------------------------------------------ actions on selected loans


def test_viewer_does_not_get_the_actions(viewer_client, baseline_b):
    response = viewer_client.get(CHANGELIST)
    assert response.status_code == 200
    assert "terminate_contract" not in text(response)


def test_terminate_action_previews_then_terminates_each_loan(
    operator_client, baseline_b, standard_loan
):
    selected = [baseline_b.pk, standard_loan.pk]
    before = counts()
    response = operator_client.post(
        CHANGELIST,
        {"action": "terminate_contract", helpers.ACTION_CHECKBOX_NAME: selected, "index": 0},
    )
    assert response.status_code == 200
    assert counts() == before
    page = text(response)
    assert 'name="post" value="yes"' in page
    assert 'name="action" value="terminate_contract"' in page
    for pk in selected:
        assert f'name="_selected_action" value="{pk}"' in page
    allowed = re.search(rf'<tr class="allowed" id="preview-loan-{baseline_b.pk}">(.*?)</tr>', page)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", allowed.group(1))
    assert cells[2:8] == ["4", "2026-02-18", "300.00", "5.54", "0.00", "<strong>305.54</strong>"]
    refused = re.search(
        rf'<tr class="refused" id="preview-loan-{standard_loan.pk}">(.*?)</tr>', page
    )
    assert 'data-code="engine_not_dynamic"' in refused.group(1)

    response = operator_client.post(
        CHANGELIST,
        {
            "action": "terminate_contract",
            helpers.ACTION_CHECKBOX_NAME: selected,
            "post": "yes",
            "note": "Batch 7",
            "business_date": "2026-02-18",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert messages_of(response) == [
        f"{baseline_b}: contract terminated on 2026-02-18. Contract termination transaction "
        "305.54 (principal 300.00, interest 5.54, fees 0.00).",
        f"{standard_loan}: not done. The contract cannot be terminated: The loan uses the "
        "standard schedule engine; contract termination needs the dynamic engine.",
    ]
    assert Loan.objects.get(pk=baseline_b.pk).sub_status == "CONTRACT_TERMINATION"
    assert Loan.objects.get(pk=standard_loan.pk).sub_status is None
    assert Transaction.objects.get(type=TransactionType.CONTRACT_TERMINATION).note == "Batch 7"


def test_undo_action(operator_client, operator, baseline_b, standard_loan):
    terminate_contract(loan=baseline_b, actor=operator)
    selected = [baseline_b.pk, standard_loan.pk]
    response = operator_client.post(
        CHANGELIST,
        {"action": "undo_contract_termination", helpers.ACTION_CHECKBOX_NAME: selected, "index": 0},
    )
    page = text(response)
    assert f'id="preview-loan-{baseline_b.pk}"' in page
    assert 'data-code="not_terminated"' in page
    response = operator_client.post(
        CHANGELIST,
        {
            "action": "undo_contract_termination",
            helpers.ACTION_CHECKBOX_NAME: selected,
            "post": "yes",
            "note": "Resolved",
            "business_date": "2026-02-18",
        },
        follow=True,
    )
    tx = Transaction.objects.get(type=TransactionType.CONTRACT_TERMINATION)
    assert messages_of(response) == [
        f"{baseline_b}: contract termination undone; transaction {tx.pk} reversed and the "
        "schedule restored.",
        f"{standard_loan}: not done. The contract termination cannot be undone: The loan is "
        "not in contract termination.",
    ]
    assert (tx.reversed, tx.reversal_note) == (True, "Resolved")


def test_action_with_a_stale_business_date_changes_nothing(operator_client, baseline_b):
    set_business_date(date(2026, 2, 19))
    before = counts()
    response = operator_client.post(
        CHANGELIST,
        {
            "action": "terminate_contract",
            helpers.ACTION_CHECKBOX_NAME: [baseline_b.pk],
            "post": "yes",
            "business_date": "2026-02-18",
        },
    )
    assert response.status_code == 200
    assert "The business date changed to 2026-02-19 since the preview" in text(response)
    assert counts() == before


# ------------------------------------------------------------------ browser


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_operator_terminates_reads_the_schedule_and_undoes(page, live_server, operator):
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(
        actor=operator,
        external_id="BROWSER-B",
        loan_amount=600,
        loan_rate=24,
        loan_term=6,
        payment_frequency="BIWEEKLY",
        contract_date=date(2025, 12, 27),
        first_payment_date=date(2026, 1, 10),
        calc_type="EQUAL_PRINCIPAL",
    )
    from decimal import Decimal

    from loans.services import post_transaction

    for on, amount in [
        (date(2026, 1, 10), "105.54"),
        (date(2026, 1, 24), "104.62"),
        (date(2026, 2, 7), "103.69"),
    ]:
        post_transaction(loan=loan, type="REPAYMENT", on=on, amount=Decimal(amount), actor=operator)

    page.goto(f"{live_server.url}/admin/login/?next=/admin/loans/loan/{loan.pk}/change/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"**/admin/loans/loan/{loan.pk}/change/")
    assert page.inner_text("#next-due-date") == "2026-02-21"

    page.click("#loan-commands >> text=Terminate contract")
    page.wait_for_url("**/terminate-contract/")
    row = page.locator(f"#preview-loan-{loan.pk}")
    assert row.locator(".accelerated-date").inner_text() == "2026-02-18"
    assert row.locator(".accelerated-principal").inner_text() == "300.00"
    assert row.locator(".accelerated-interest").inner_text() == "5.54"
    assert row.locator(".accelerated-total").inner_text() == "305.54"
    assert Loan.objects.get(pk=loan.pk).sub_status is None  # nothing changed yet
    page.fill("#id_note", "Merchant cancelled order XYZ")
    page.click("#confirm-termination")

    page.wait_for_url(f"**/admin/loans/loan/{loan.pk}/change/")
    assert "contract terminated on 2026-02-18" in page.inner_text(".messagelist")
    assert page.inner_text("#sub-status") == "Sub-status: CONTRACT_TERMINATION"
    assert page.inner_text("#next-due-date") == "2026-02-18"
    assert page.inner_text("#total-outstanding") == "305.54"
    rows = page.locator("#loan-schedule tbody tr")
    expect(rows).to_have_count(4)
    last = rows.nth(3).locator("td").all_inner_texts()
    assert last[:7] == ["4", "2026-02-07", "2026-02-18", "300.00", "5.54", "0.00", "305.54"]
    page.click("#loan-schedule >> text=v1 (ACTIVATION)")
    page.wait_for_url("**schedule_version=1**")
    expect(page.locator("#loan-schedule h2")).to_contain_text("earlier version")
    expect(page.locator("#loan-schedule tbody tr")).to_have_count(6)

    page.click("#loan-commands >> text=Undo termination")
    page.wait_for_url("**/undo-contract-termination/")
    page.fill("#id_note", "Dispute resolved")
    page.click("#confirm-undo")
    page.wait_for_url(f"**/admin/loans/loan/{loan.pk}/change/")
    assert "contract termination undone" in page.inner_text(".messagelist")
    expect(page.locator("#sub-status")).to_have_count(0)
    assert page.inner_text("#next-due-date") == "2026-02-21"
    expect(page.locator("#loan-schedule tbody tr")).to_have_count(6)
    loan.refresh_from_db()
    assert loan.sub_status is None
