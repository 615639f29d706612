"""The borrower admin's "Cancel servicing" and "Cancel communications" actions (DESIGN §7,
§12): a confirmation page counting per loan what will be cancelled, then the command per
borrower."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.contrib.messages import get_messages
from django.urls import reverse

from loans.models import Loan, LoanEvent
from servicing import services
from servicing.models import ScheduledCommunication, ScheduledPayment
from tests.servicing.test_borrower_stops import borrower_with_loans

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:loans_borrower_changelist")


def cells(html: str, loan) -> list[str]:
    import re

    row = re.search(rf'<tr id="loan-{loan.pk}"[^>]*>(.*?)</tr>', html, re.S).group(1)
    return re.findall(r'<td class="num [^"]+">(\d+)</td>', row)


def test_cancel_servicing_confirmation_counts_each_loan_then_cancels(client, operator):
    borrower, (first, second) = borrower_with_loans(operator, 2)
    services.cancel_servicing(loan=second, reason="DECEASED", actor=operator)
    client.force_login(operator)

    page = client.post(
        CHANGELIST,
        {"action": "cancel_borrower_servicing", helpers.ACTION_CHECKBOX_NAME: [borrower.pk]},
    )

    html = page.content.decode()
    assert page.status_code == 200
    # payments, calls, emails, SMS, call/email/SMS schedules, total
    assert cells(html, first) == ["3", "5", "2", "3", "1", "1", "1", "16"]
    assert cells(html, second) == ["0"] * 8
    assert "already NOT_SERVICING (DECEASED)" in html
    assert ScheduledPayment.objects.filter(loan=first, status="PENDING").count() == 3

    done = client.post(
        CHANGELIST,
        {
            "action": "cancel_borrower_servicing",
            helpers.ACTION_CHECKBOX_NAME: [borrower.pk],
            "post": "yes",
            "reason": "BANKRUPTCY",
        },
    )

    assert done.status_code == 302
    assert [str(m) for m in get_messages(done.wsgi_request)] == [
        f"{borrower}: servicing cancelled on 1 loan (BANKRUPTCY): 3 payments, 5 calls, "
        "2 emails, 3 SMS, 3 schedules."
    ]
    assert Loan.objects.get(pk=second.pk).stop_servicing_reason == "DECEASED"
    assert Loan.objects.get(pk=first.pk).stop_servicing_reason == "BANKRUPTCY"


def test_cancel_servicing_without_a_reason_re_renders_and_changes_nothing(client, operator):
    borrower, (loan,) = borrower_with_loans(operator, 1)
    client.force_login(operator)
    response = client.post(
        CHANGELIST,
        {
            "action": "cancel_borrower_servicing",
            helpers.ACTION_CHECKBOX_NAME: [borrower.pk],
            "post": "yes",
            "reason": "",
        },
    )
    assert response.status_code == 200
    assert "Choose the reason servicing stops." in response.content.decode()
    assert Loan.objects.get(pk=loan.pk).servicing_status == "ACTIVE"


def test_cancel_communications_confirmation_then_cancel(client, operator):
    borrower, (loan,) = borrower_with_loans(operator, 1)
    empty, _ = borrower_with_loans(operator, 0, external_id="EMPTY")
    client.force_login(operator)

    page = client.post(
        CHANGELIST,
        {
            "action": "cancel_borrower_communications",
            helpers.ACTION_CHECKBOX_NAME: [borrower.pk, empty.pk],
        },
    )

    html = page.content.decode()
    assert cells(html, loan) == ["5", "2", "3", "1", "1", "1", "13"]
    assert "No loans: nothing to cancel." in html

    done = client.post(
        CHANGELIST,
        {
            "action": "cancel_borrower_communications",
            helpers.ACTION_CHECKBOX_NAME: [borrower.pk, empty.pk],
            "post": "yes",
        },
    )

    assert [str(m) for m in get_messages(done.wsgi_request)] == [
        f"{borrower}: communications cancelled: 5 calls, 2 emails, 3 SMS, 3 schedules.",
        f"{empty}: communications cancelled: 0 calls, 0 emails, 0 SMS, 0 schedules.",
    ]
    assert ScheduledCommunication.objects.filter(status="PENDING").count() == 0
    assert ScheduledPayment.objects.filter(status="PENDING").count() == 3
    assert Loan.objects.get(pk=loan.pk).servicing_status == "ACTIVE"
    assert LoanEvent.objects.filter(command="cancel_communications").count() == 1


def test_the_actions_need_the_cancel_servicing_permission(client, operator, viewer):
    borrower_with_loans(operator, 1)

    def actions():
        form = client.get(CHANGELIST).context["action_form"]
        return {name for name, _ in form.fields["action"].choices} if form else set()

    client.force_login(operator)
    assert {"cancel_borrower_servicing", "cancel_borrower_communications"} <= actions()
    client.force_login(viewer)
    assert not {"cancel_borrower_servicing", "cancel_borrower_communications"} & actions()
