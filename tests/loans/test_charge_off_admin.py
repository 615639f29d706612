"""Charge-off in the admin: the per-loan page (preview, confirm), its undo, the loan page's
buttons, the actions on selected loans and the changelist filter."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.contrib.messages import get_messages
from django.urls import reverse

from loans import services
from loans.models import Loan, LoanEvent, Transaction, TransactionType
from tests.loans.test_charge_off import loan_l

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:loans_loan_changelist")


def page(loan, name="charge_off"):
    return reverse(f"admin:loans_loan_{name}", args=[loan.pk])


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_page_previews_then_charges_off(operator_client, operator):
    loan = loan_l(operator)
    shown = operator_client.get(page(loan))
    html = shown.content.decode()
    assert shown.status_code == 200
    assert 'id="charge-off-date">2024-02-14<' in html
    assert '<td class="num charge-off-principal">83.57</td>' in html
    assert '<td class="num charge-off-interest">0.22</td>' in html
    assert "<strong>83.79</strong>" in html
    assert 'id="schedule-after"' in html
    assert not Transaction.objects.filter(type=TransactionType.CHARGE_OFF).exists()

    done = operator_client.post(
        page(loan),
        {"note": "uncollectible", "reason": "BANKRUPTCY", "business_date": "2024-02-14"},
    )

    assert done.status_code == 302
    assert texts(done) == [
        f"{loan}: charged off on 2024-02-14. Charge-off transaction 83.79 (principal 83.57, "
        "interest 0.22, fees 0.00)."
    ]
    assert Loan.objects.get(pk=loan.pk).charged_off is True
    assert LoanEvent.objects.filter(command="charge_off", reason="BANKRUPTCY").count() == 1


def test_a_stale_business_date_shows_the_preview_again(operator_client, operator):
    loan = loan_l(operator)
    response = operator_client.post(page(loan), {"note": "", "business_date": "2024-02-13"})
    assert response.status_code == 200
    assert "The business date changed to 2024-02-14" in response.content.decode()
    assert Loan.objects.get(pk=loan.pk).charged_off is False


def test_a_refused_loan_shows_each_check(operator_client, operator):
    loan = loan_l(operator)
    services.charge_off(loan, actor=operator)
    html = operator_client.get(page(loan)).content.decode()
    assert 'data-code="already_charged_off"' in html
    assert 'id="nothing-allowed"' in html


def test_the_loan_page_offers_the_command_that_would_run(operator_client, operator, viewer, client):
    loan = loan_l(operator)
    change = reverse("admin:loans_loan_change", args=[loan.pk])
    assert page(loan) in operator_client.get(change).content.decode()
    services.charge_off(loan, actor=operator)
    html = operator_client.get(change).content.decode()
    assert page(loan, "undo_charge_off") in html
    assert page(loan) not in html
    client.force_login(viewer)
    assert page(loan, "undo_charge_off") not in client.get(change).content.decode()


def test_undo_from_the_loan_page(operator_client, operator):
    loan = loan_l(operator)
    services.charge_off(loan, actor=operator)
    shown = operator_client.get(page(loan, "undo_charge_off")).content.decode()
    assert "Yes, undo the charge-off" in shown
    done = operator_client.post(
        page(loan, "undo_charge_off"),
        {"note": "mistake", "reversal_external_id": "UCO-9", "business_date": "2024-02-14"},
    )
    assert done.status_code == 302
    tx = Transaction.objects.get(type=TransactionType.CHARGE_OFF)
    assert (tx.reversed, tx.reversal_external_id) == (True, "UCO-9")
    assert Loan.objects.get(pk=loan.pk).charged_off is False


def test_the_action_on_selected_loans_goes_on_after_a_refusal(operator_client, operator):
    first = loan_l(operator)
    second = loan_l(operator)
    services.charge_off(second, actor=operator)
    preview = operator_client.post(
        CHANGELIST,
        {"action": "charge_off", helpers.ACTION_CHECKBOX_NAME: [first.pk, second.pk]},
    )
    html = preview.content.decode()
    assert f'id="preview-loan-{first.pk}"' in html
    assert 'data-code="already_charged_off"' in html

    done = operator_client.post(
        CHANGELIST,
        {
            "action": "charge_off",
            helpers.ACTION_CHECKBOX_NAME: [first.pk, second.pk],
            "post": "yes",
            "note": "",
            "business_date": "2024-02-14",
        },
    )

    assert done.status_code == 302
    messages = texts(done)
    assert messages[0].startswith(f"{first}: charged off on 2024-02-14. Charge-off transaction")
    assert messages[1].startswith(f"{second}: not done. The loan cannot be charged off")
    assert Loan.objects.filter(charged_off=True).count() == 2


def test_the_undo_action(operator_client, operator):
    loan = loan_l(operator)
    services.charge_off(loan, actor=operator)
    operator_client.post(
        CHANGELIST,
        {
            "action": "undo_charge_off",
            helpers.ACTION_CHECKBOX_NAME: [loan.pk],
            "post": "yes",
            "note": "",
            "business_date": "2024-02-14",
        },
    )
    assert Loan.objects.get(pk=loan.pk).charged_off is False


def test_the_changelist_filters_charged_off_loans(operator_client, operator):
    loan = loan_l(operator)
    other = loan_l(operator)
    services.charge_off(loan, actor=operator)
    response = operator_client.get(CHANGELIST, {"charged_off__exact": "1"})
    assert [row.pk for row in response.context["cl"].result_list] == [loan.pk]
    assert other.pk != loan.pk


@pytest.mark.parametrize("business_date", ["garbage", ""])
def test_an_unreadable_business_date_is_a_message(operator_client, operator, business_date):
    """Found by the audit in Chromium: a confirmation page posted with its hidden business date
    missing or unreadable came back unchanged without a word (the field is hidden, its error
    rendered nowhere)."""
    loan = loan_l(operator)
    response = operator_client.post(page(loan), {"note": "", "business_date": business_date})
    assert response.status_code == 200
    assert "The page&#x27;s business date is missing or unreadable" in response.content.decode()
    assert Loan.objects.get(pk=loan.pk).charged_off is False
    action = operator_client.post(
        CHANGELIST,
        {
            "action": "terminate_contract",
            helpers.ACTION_CHECKBOX_NAME: [loan.pk],
            "post": "yes",
            "business_date": business_date,
        },
    )
    assert "The page&#x27;s business date is missing or unreadable" in action.content.decode()
    assert Loan.objects.get(pk=loan.pk).sub_status is None
