"""The admin: the "Cancel servicing" action (confirmation page with counts, then the work), its
permission, the per-loan pages and buttons, the changelists and inlines."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from loans.models import ServicingStatus
from servicing import services
from servicing.models import ScheduledPayment, ServicingEvent
from tests.servicing.helpers import SEED_000_COUNTS

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/loans/loan/"


def row_counts(html: str, loan) -> list[int]:
    row = re.search(rf'<tr id="loan-{loan.pk}".*?</tr>', html, re.S).group(0)
    return [int(n) for n in re.findall(r'<td class="num [a-z-]+">(\d+)</td>', row)]


# order of the columns: payments, calls, emails, SMS, call/email/SMS schedules, total
SEED_ROW = [3, 5, 2, 3, 1, 1, 1, 16]


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


def test_action_first_pass_shows_each_loan_with_its_counts(
    operator_client, seeded_loan, other_loan, django_assert_max_num_queries
):
    with django_assert_max_num_queries(15):  # constant: one page-summary query included
        response = operator_client.post(
            CHANGELIST,
            {
                "action": "cancel_servicing_selected",
                "_selected_action": [seeded_loan.pk, other_loan.pk],
            },
        )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cancel servicing of the selected loans" in html
    assert row_counts(html, seeded_loan) == SEED_ROW
    assert row_counts(html, other_loan) == SEED_ROW
    # Each row links to its loan's change page (one reverse for all the rows).
    for loan in (seeded_loan, other_loan):
        assert f'<a href="/admin/loans/loan/{loan.pk}/change/">' in html
    assert '<option value="" selected>— choose a reason —</option>' in html  # no default
    assert 'name="post" value="yes"' in html
    assert 'name="action" value="cancel_servicing_selected"' in html
    assert html.count('name="_selected_action"') == 2
    # Nothing changed yet.
    seeded_loan.refresh_from_db()
    assert seeded_loan.servicing_status == ServicingStatus.ACTIVE
    assert ServicingEvent.objects.count() == 0


def test_action_confirmation_cancels_each_loan_and_reports(
    operator_client, seeded_loan, other_loan
):
    response = operator_client.post(
        CHANGELIST,
        {
            "action": "cancel_servicing_selected",
            "_selected_action": [seeded_loan.pk, other_loan.pk],
            "post": "yes",
            "reason": "SOLD_OFF",
        },
    )
    assert response.status_code == 302
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert texts == [
        f"{loan}: servicing cancelled (SOLD_OFF): 3 payments, 5 calls, 2 emails, 3 SMS, "
        "1 call / 1 email / 1 SMS schedules."
        for loan in sorted([seeded_loan, other_loan], key=lambda loan: loan.pk)
    ]
    for loan in (seeded_loan, other_loan):
        loan.refresh_from_db()
        assert loan.servicing_status == ServicingStatus.NOT_SERVICING
        assert loan.stop_servicing_reason == "SOLD_OFF"
        event = ServicingEvent.objects.get(loan=loan)
        assert {name: getattr(event, name) for name in SEED_000_COUNTS} == SEED_000_COUNTS


def test_action_reports_an_already_stopped_loan_and_goes_on(
    operator_client, operator, seeded_loan, other_loan
):
    services.cancel_servicing(loan=other_loan, reason="DECEASED", actor=operator)
    first = operator_client.post(
        CHANGELIST,
        {
            "action": "cancel_servicing_selected",
            "_selected_action": [seeded_loan.pk, other_loan.pk],
        },
    )
    assert row_counts(first.content.decode(), other_loan) == [0] * 8
    assert "already NOT_SERVICING (DECEASED)" in first.content.decode()
    response = operator_client.post(
        CHANGELIST,
        {
            "action": "cancel_servicing_selected",
            "_selected_action": [other_loan.pk, seeded_loan.pk],
            "post": "yes",
            "reason": "API_REQUEST",
        },
    )
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(texts) == 2
    assert any("already stopped (DECEASED)" in t for t in texts)
    seeded_loan.refresh_from_db()
    assert seeded_loan.servicing_status == ServicingStatus.NOT_SERVICING


def test_action_with_an_invalid_reason_re_renders_and_changes_nothing(operator_client, seeded_loan):
    response = operator_client.post(
        CHANGELIST,
        {
            "action": "cancel_servicing_selected",
            "_selected_action": [seeded_loan.pk],
            "post": "yes",
            "reason": "BOGUS",
        },
    )
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    seeded_loan.refresh_from_db()
    assert seeded_loan.servicing_status == ServicingStatus.ACTIVE


def test_user_without_the_permission_does_not_see_the_action(client, viewer, seeded_loan):
    client.force_login(viewer)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "cancel_servicing_selected" not in page.content.decode()
    response = client.post(
        CHANGELIST,
        {
            "action": "cancel_servicing_selected",
            "_selected_action": [seeded_loan.pk],
            "post": "yes",
            "reason": "API_REQUEST",
        },
    )
    # No action is available to this user: the POST just renders the changelist again.
    assert response.status_code == 200
    assert "Cancel servicing of the selected loans" not in response.content.decode()
    seeded_loan.refresh_from_db()
    assert seeded_loan.servicing_status == ServicingStatus.ACTIVE


def test_operator_sees_the_action(operator_client, seeded_loan):
    page = operator_client.get(CHANGELIST)
    assert '<option value="cancel_servicing_selected">' in page.content.decode()


# ------------------------------------------------------------------ per-loan pages


def test_loan_page_shows_the_cancel_button_and_inlines(operator_client, seeded_loan):
    page = operator_client.get(reverse("admin:loans_loan_change", args=[seeded_loan.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    url = reverse("admin:loans_loan_cancel_servicing", args=[seeded_loan.pk])
    assert f'href="{url}">Cancel servicing</a>' in html
    assert "Resume servicing" not in html
    assert "Scheduled payments (latest 50)" in html
    assert "Communication schedules (latest 50)" in html


def test_viewer_sees_no_servicing_buttons_and_gets_403(client, viewer, seeded_loan):
    client.force_login(viewer)
    page = client.get(reverse("admin:loans_loan_change", args=[seeded_loan.pk]))
    assert "Cancel servicing</a>" not in page.content.decode()
    url = reverse("admin:loans_loan_cancel_servicing", args=[seeded_loan.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"reason": "MISTAKE"}).status_code == 403


def test_per_loan_cancel_then_resume(operator_client, seeded_loan):
    url = reverse("admin:loans_loan_cancel_servicing", args=[seeded_loan.pk])
    page = operator_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(r'class="num payments">3<', html)
    assert re.search(r'class="num calls">5<', html)
    response = operator_client.post(url, {"reason": "MISTAKE"})
    assert response.status_code == 302
    seeded_loan.refresh_from_db()
    assert seeded_loan.stop_servicing_reason == "MISTAKE"
    assert not ScheduledPayment.objects.filter(loan=seeded_loan, status="PENDING").exists()

    change = operator_client.get(reverse("admin:loans_loan_change", args=[seeded_loan.pk]))
    resume_url = reverse("admin:loans_loan_resume_servicing", args=[seeded_loan.pk])
    assert f'href="{resume_url}">Resume servicing</a>' in change.content.decode()
    assert operator_client.get(resume_url).status_code == 200
    response = operator_client.post(resume_url, {"note": "created by mistake? no"})
    assert response.status_code == 302
    seeded_loan.refresh_from_db()
    assert seeded_loan.servicing_status == ServicingStatus.ACTIVE
    # Resuming twice is refused with a message, not an error page.
    again = operator_client.post(resume_url, {"note": ""})
    assert again.status_code == 302
    assert "already being serviced" in " ".join(str(m) for m in get_messages(again.wsgi_request))


@pytest.mark.parametrize(
    "url",
    [
        "/admin/servicing/scheduledpayment/?status__exact=PENDING&q=",
        "/admin/servicing/scheduledcommunication/?channel__exact=SMS",
        "/admin/servicing/communicationschedule/?status__exact=ACTIVE",
        "/admin/servicing/servicingevent/",
    ],
)
def test_changelists(operator_client, seeded_loan, url):
    response = operator_client.get(url + f"&q={seeded_loan.external_id}" if "?" in url else url)
    assert response.status_code == 200


def test_changelist_search_by_loan(operator_client, seeded_loan, other_loan):
    response = operator_client.get(
        "/admin/servicing/scheduledpayment/",
        {"q": seeded_loan.external_id, "status__exact": "PENDING"},
    )
    assert response.context["cl"].result_count == 3


def test_a_database_error_is_no_refusal_it_fails_the_request(
    client, operator, seeded_loan, other_loan, monkeypatch
):
    """A database error is not a domain error: it is not shown as a refusal but fails the
    request (500), and the one transaction of the set-based cancel is rolled back: neither loan
    is cancelled."""
    from django.db import DatabaseError, transaction

    from servicing import admin as servicing_admin

    real = services.cancel_servicing_bulk

    def flaky(**kwargs):  # fails inside the service's transaction, after its writes
        with transaction.atomic():
            real(**kwargs)
            raise DatabaseError("disk on fire")

    monkeypatch.setattr(servicing_admin.services, "cancel_servicing_bulk", flaky)
    client.force_login(operator)
    client.raise_request_exception = False
    response = client.post(
        CHANGELIST,
        {
            "action": "cancel_servicing_selected",
            "_selected_action": [seeded_loan.pk, other_loan.pk],
            "post": "yes",
            "reason": "LMS_CLOSED",
        },
    )
    assert response.status_code == 500
    for loan in (seeded_loan, other_loan):
        loan.refresh_from_db()
        assert loan.servicing_status == ServicingStatus.ACTIVE
        assert ScheduledPayment.objects.filter(loan=loan, status="PENDING").count() == 3
        assert ServicingEvent.objects.filter(loan=loan).count() == 0


def test_the_action_is_set_based(operator_client, operator, as_of, django_assert_max_num_queries):
    """The second pass runs ``cancel_servicing_bulk``: its statements do not grow with the
    number of loans (issue 14)."""
    from tests.factories import make_active_loan

    loans = [make_active_loan(actor=operator) for _ in range(20)]
    for loan in loans:
        services.schedule_payment(
            loan=loan, amount=Decimal("1.00"), scheduled_date=as_of, actor=operator
        )
    with django_assert_max_num_queries(30):  # session, user, changelist and the dozen UPDATEs
        operator_client.post(
            CHANGELIST,
            {
                "action": "cancel_servicing_selected",
                "_selected_action": [loan.pk for loan in loans],
                "post": "yes",
                "reason": "SOLD_OFF",
            },
        )
    assert ServicingEvent.objects.filter(reason="SOLD_OFF").count() == 20


def test_select_across_carries_the_query_not_the_ids(operator_client, seeded_loan, other_loan):
    url = f"{CHANGELIST}?q={seeded_loan.external_id}"
    first = operator_client.post(
        url,
        {
            "action": "cancel_servicing_selected",
            "_selected_action": [seeded_loan.pk],
            "select_across": "1",
        },
    )
    html = first.content.decode()
    assert 'name="select_across" value="1"' in html
    assert row_counts(html, seeded_loan) == SEED_ROW
    assert f'id="loan-{other_loan.pk}"' not in html
    operator_client.post(
        url,
        {
            "action": "cancel_servicing_selected",
            "_selected_action": [seeded_loan.pk],
            "select_across": "1",
            "post": "yes",
            "reason": "API_REQUEST",
        },
    )
    seeded_loan.refresh_from_db()
    other_loan.refresh_from_db()
    assert seeded_loan.servicing_status == ServicingStatus.NOT_SERVICING
    assert other_loan.servicing_status == ServicingStatus.ACTIVE


def test_many_loans_get_one_summary_message(operator_client, operator, as_of, monkeypatch):
    from servicing import admin as servicing_admin
    from tests.factories import make_active_loan

    monkeypatch.setattr(servicing_admin, "MAX_MESSAGES_PER_LOAN", 2)
    loans = [make_active_loan(actor=operator) for _ in range(3)]
    services.schedule_payment(
        loan=loans[0], amount=Decimal("1.00"), scheduled_date=as_of, actor=operator
    )
    services.cancel_servicing(loan=loans[2], actor=operator)
    response = operator_client.post(
        CHANGELIST,
        {
            "action": "cancel_servicing_selected",
            "_selected_action": [loan.pk for loan in loans],
            "post": "yes",
            "reason": "API_REQUEST",
        },
    )
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert texts == [
        "Servicing cancelled on 2 loans (API_REQUEST): 1 payment, 0 calls, 0 emails, 0 SMS, "
        "0 call / 0 email / 0 SMS schedules; 1 already stopped; 0 failed."
    ]


def test_confirmation_page_queries_do_not_grow_with_loans(
    operator_client, operator, as_of, django_assert_max_num_queries
):
    from tests.factories import make_active_loan
    from tests.servicing.helpers import add_seed_000_mix

    loans = [make_active_loan(actor=operator) for _ in range(6)]
    for loan in loans:
        add_seed_000_mix(loan, operator)
    with django_assert_max_num_queries(15):  # constant: one page-summary query included
        response = operator_client.post(
            CHANGELIST,
            {"action": "cancel_servicing_selected", "_selected_action": [x.pk for x in loans]},
        )
    html = response.content.decode()
    assert [row_counts(html, loan) for loan in loans] == [SEED_ROW] * 6
