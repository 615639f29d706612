"""Scheduled payments and communications in the admin: bulk cancel actions through the
services, and every time shown in the borrower's zone and UTC."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages

from loans.models import LoanEvent
from servicing import services
from servicing.models import (
    CommunicationSchedule,
    CommunicationScheduleStatus,
    CommunicationStatus,
    ScheduledCommunication,
    ScheduledPayment,
    ScheduledPaymentStatus,
)
from tests.factories import make_active_loan, set_business_date
from tests.servicing.helpers import AS_OF, add_seed_000_mix, at

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan(operator):
    set_business_date(AS_OF)
    loan = make_active_loan(actor=operator, external_id="SCHED-1")  # borrower in New York
    add_seed_000_mix(loan, operator)
    return loan


def test_bulk_cancel_scheduled_payments(client, operator, loan):
    client.force_login(operator)
    payments = list(ScheduledPayment.objects.filter(loan=loan).order_by("pk"))
    services.cancel_scheduled_payment(payment_id=payments[2].pk, actor=operator)
    url = "/admin/servicing/scheduledpayment/"
    selected = [p.pk for p in payments]
    confirm = client.post(url, {"action": "cancel_selected_payments", "_selected_action": selected})
    html = confirm.content.decode()
    assert "Cancel the selected scheduled payments" in html
    assert "ACH 100.00 on 2026-02-25 (PENDING)" in html
    assert ScheduledPayment.objects.filter(status=ScheduledPaymentStatus.PENDING).count() == 2
    done = client.post(
        url,
        {
            "action": "cancel_selected_payments",
            "_selected_action": selected,
            "post": "yes",
            "reason": "borrower paid by phone",
        },
    )
    assert done.status_code == 302
    texts = [str(m) for m in get_messages(done.wsgi_request)]
    assert texts[0] == "2 scheduled payments cancelled; 1 refused."
    assert texts[1].startswith(f"Scheduled payment {payments[2].pk} (SCHED-1): ") or texts[
        1
    ].startswith(f"Scheduled payment {payments[2].pk} (LN-")
    assert "only a pending one can be cancelled" in texts[1]
    assert ScheduledPayment.objects.filter(status=ScheduledPaymentStatus.PENDING).count() == 0
    assert set(
        ScheduledPayment.objects.filter(cancel_reason="borrower paid by phone").values_list(
            "pk", flat=True
        )
    ) == {payments[0].pk, payments[1].pk}
    assert LoanEvent.objects.filter(command="cancel_scheduled_payment").count() == 3


def test_bulk_cancel_communications_and_schedules(client, operator, loan):
    client.force_login(operator)
    one_off = list(
        ScheduledCommunication.objects.filter(loan=loan, schedule__isnull=True).order_by("pk")
    )
    response = client.post(
        "/admin/servicing/scheduledcommunication/",
        {
            "action": "cancel_selected_communications",
            "_selected_action": [c.pk for c in one_off],
            "post": "yes",
            "reason": "",
        },
    )
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "5 scheduled communications cancelled; 0 refused."
    ]
    schedules = list(CommunicationSchedule.objects.filter(loan=loan))
    response = client.post(
        "/admin/servicing/communicationschedule/",
        {
            "action": "cancel_selected_schedules",
            "_selected_action": [s.pk for s in schedules],
            "post": "yes",
        },
    )
    assert [str(m) for m in get_messages(response.wsgi_request)][-1] == (
        "3 communication schedules cancelled; 0 refused."
    )
    assert not CommunicationSchedule.objects.filter(
        status=CommunicationScheduleStatus.ACTIVE
    ).exists()
    assert not ScheduledCommunication.objects.filter(status=CommunicationStatus.PENDING).exists()


def test_bulk_cancel_needs_the_permission(client, viewer, loan):
    client.force_login(viewer)
    payments = list(ScheduledPayment.objects.values_list("pk", flat=True))
    page = client.get("/admin/servicing/scheduledpayment/").content.decode()
    assert "cancel_selected_payments" not in page
    client.post(
        "/admin/servicing/scheduledpayment/",
        {"action": "cancel_selected_payments", "_selected_action": payments, "post": "yes"},
    )
    assert ScheduledPayment.objects.filter(status=ScheduledPaymentStatus.PENDING).count() == 3


def test_times_in_the_borrowers_zone_and_utc(client, operator, loan):
    client.force_login(operator)
    html = client.get("/admin/servicing/scheduledcommunication/").content.decode()
    # at(10) = 2026-03-10 15:00 UTC = 10:00 in New York (EDT starts 2026-03-08).
    assert at(10).hour == 15
    assert "2026-03-10 11:00 America/New_York (15:00 UTC)" in html
    page = client.get(f"/admin/loans/loan/{loan.pk}/change/").content.decode()
    assert "America/New_York (15:00 UTC)" in page
    assert date(2026, 3, 10).isoformat() in page and Decimal("250.55")
