"""The portfolio: ``GET /api/v1/portfolio/summary`` and the admin's Portfolio page, one selector
for both, with exact figures; each figure links to the filtered changelist."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from servicing.selectors import portfolio_summary
from servicing.services import cancel_servicing
from tests.factories import make_active_loan, make_loan, set_business_date

pytestmark = pytest.mark.django_db

AS_OF = date(2025, 3, 15)
TERMS = {
    "loan_amount": Decimal("10000.00"),
    "loan_rate": Decimal("15"),
    "loan_term": Decimal("60"),
    "contract_date": date(2025, 1, 1),
    "first_payment_date": date(2025, 2, 1),
}


@pytest.fixture
def portfolio(operator):
    """Two 10,000 loans at 15 % over 60 months (payment 237.90; on 2025-03-15 two installments
    are past due: 475.80; 14,273.90 outstanding), one of them no longer serviced, and one
    PENDING loan (no schedule yet: counted, no amounts)."""
    set_business_date(AS_OF)
    serviced = make_active_loan(actor=operator, external_id="P-1", **TERMS)
    stopped = make_active_loan(actor=operator, external_id="P-2", **TERMS)
    cancel_servicing(loan=stopped, reason="BANKRUPTCY", actor=operator)
    pending = make_loan(actor=operator, external_id="P-3")
    return serviced, stopped, pending


def group(rows, value):
    return next(row for row in rows if row["value"] == value)


def test_selector_figures(portfolio, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        summary = portfolio_summary(as_of=AS_OF)
    assert summary["total"] == {
        "value": None,
        "count": 3,
        "principalOutstanding": Decimal("20000.00"),
        "totalOutstanding": Decimal("28547.80"),
        "amountPastDue": Decimal("951.60"),
    }
    assert [row["value"] for row in summary["byStatus"]] == [
        "PENDING",
        "ACTIVE",
        "CLOSED",
        "OVERPAID",
    ]
    assert group(summary["byStatus"], "PENDING")["count"] == 1
    assert group(summary["byStatus"], "PENDING")["totalOutstanding"] == Decimal("0.00")
    assert group(summary["byStatus"], "ACTIVE")["totalOutstanding"] == Decimal("28547.80")
    assert group(summary["byStatus"], "CLOSED")["count"] == 0
    stopped = group(summary["byServicingStatus"], "NOT_SERVICING")
    assert (stopped["count"], stopped["totalOutstanding"], stopped["amountPastDue"]) == (
        1,
        Decimal("14273.90"),
        Decimal("475.80"),
    )
    assert group(summary["byServicingStatus"], "ACTIVE")["count"] == 2
    assert group(summary["bySubStatus"], None)["count"] == 3
    assert group(summary["bySubStatus"], "CONTRACT_TERMINATION")["count"] == 0


def test_queries_do_not_grow_with_loans(operator, django_assert_max_num_queries):
    set_business_date(AS_OF)
    for _ in range(20):
        make_active_loan(actor=operator, **TERMS)
    with django_assert_max_num_queries(2):
        summary = portfolio_summary(as_of=AS_OF)
    assert summary["total"]["count"] == 20
    assert summary["total"]["totalOutstanding"] == Decimal("285478.00")


def test_api(portfolio, api, viewer_api, anon_api):
    response = viewer_api.get("/api/v1/portfolio/summary")
    assert response.status_code == 200
    body = response.json()
    assert body["businessDate"] == "2025-03-15"
    assert body["total"] == {
        "value": None,
        "count": 3,
        "principalOutstanding": "20000.00",
        "totalOutstanding": "28547.80",
        "amountPastDue": "951.60",
    }
    assert group(body["byServicingStatus"], "NOT_SERVICING") == {
        "value": "NOT_SERVICING",
        "count": 1,
        "principalOutstanding": "10000.00",
        "totalOutstanding": "14273.90",
        "amountPastDue": "475.80",
    }
    assert api.get("/api/v1/portfolio/summary").json() == body
    assert anon_api.get("/api/v1/portfolio/summary").status_code == 401


def test_dashboard_figures_link_to_the_filtered_changelist(client, operator, viewer, portfolio):
    client.force_login(viewer)
    response = client.get("/admin/portfolio/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>3</strong> loans</a>" in html
    assert "total outstanding <strong>28,547.80</strong>" in html
    assert "past due <strong>951.60</strong>" in html
    assert 'href="/admin/loans/loan/?servicing_status__exact=NOT_SERVICING">1</a>' in html
    assert 'href="/admin/loans/loan/?status__exact=ACTIVE">2</a>' in html
    assert 'href="/admin/loans/loan/?sub_status=none">3</a>' in html
    # Following a link gives the loans it counts.
    listing = client.get("/admin/loans/loan/?servicing_status__exact=NOT_SERVICING")
    assert listing.context["cl"].result_count == 1
    assert "P-2" in listing.content.decode() and "P-1" not in listing.content.decode()
    index = client.get("/admin/").content.decode()
    assert 'href="/admin/portfolio/"' in index


def test_dashboard_needs_staff_with_loan_view(client, django_user_model):
    nobody = django_user_model.objects.create_user(
        "nobody", password="x-long-pass-1", is_staff=True
    )
    client.force_login(nobody)
    assert client.get("/admin/portfolio/").status_code == 403
    client.logout()
    assert client.get("/admin/portfolio/").status_code == 302  # to the login page


def _snapshot(loan, day, bucket, *, outstanding, past_due, dpd):
    from servicing.models import LoanDailySnapshot

    return LoanDailySnapshot.objects.create(
        loan=loan,
        business_date=day,
        status="ACTIVE",
        servicing_status="ACTIVE",
        delinquency_bucket=bucket,
        days_past_due=dpd,
        amount_past_due=Decimal(past_due),
        principal_outstanding=Decimal(outstanding),
        interest_outstanding=Decimal("0.00"),
        fees_outstanding=Decimal("0.00"),
        payoff_total=Decimal(outstanding),
    )


def test_buckets_in_the_summary_and_the_changelist_filters(client, operator, portfolio):
    serviced, stopped, _pending = portfolio
    Loan = type(serviced)
    Loan.objects.filter(pk=stopped.pk).update(delinquency_bucket="DPD_31_60")
    summary = portfolio_summary(as_of=AS_OF)
    assert [g["value"] for g in summary["byDelinquencyBucket"]] == [
        "CURRENT",
        "DPD_1_30",
        "DPD_31_60",
        "DPD_61_90",
        "DPD_91_120",
        "DPD_120_PLUS",
    ]
    late = group(summary["byDelinquencyBucket"], "DPD_31_60")
    assert (late["count"], late["totalOutstanding"]) == (1, Decimal("14273.90"))
    assert group(summary["byDelinquencyBucket"], "CURRENT")["count"] == 2
    client.force_login(operator)
    html = client.get("/admin/portfolio/").content.decode()
    assert 'href="/admin/loans/loan/?delinquency_bucket__exact=DPD_31_60">1</a>' in html
    bucket = client.get("/admin/loans/loan/?delinquency_bucket__exact=DPD_31_60")
    assert [loan.external_id for loan in bucket.context["cl"].result_list] == ["P-2"]
    # Past due on the business date (live): both active loans owe 2025-02-01 and 2025-03-01.
    past_due = client.get("/admin/loans/loan/?past_due=yes")
    assert sorted(loan.external_id for loan in past_due.context["cl"].result_list) == [
        "P-1",
        "P-2",
    ]
    current = client.get("/admin/loans/loan/?past_due=no")
    assert [loan.external_id for loan in current.context["cl"].result_list] == ["P-3"]
    export = client.get("/admin/loans/loan/export.csv?delinquency_bucket__exact=DPD_31_60")
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert len(lines) == 2 and ",DPD_31_60," in lines[1]


def test_dashboard_on_the_first_business_dates_of_the_calendar(client, operator, portfolio):
    """The 90-day window reaches back before 0001-01-01: it starts there (the dashboard was a
    500, OverflowError, with the business date set to 0001-01-01 in the admin or the API)."""
    from servicing.selectors import snapshot_series

    set_business_date(date(1, 1, 10))
    assert snapshot_series(as_of=date(1, 1, 10))["dates"] == []
    client.force_login(operator)
    response = client.get("/admin/portfolio/")
    assert response.status_code == 200
    assert "<title>Portfolio | Loan servicing</title>" in response.content.decode()


def test_dashboard_charts_from_the_snapshots(client, operator, portfolio):
    from datetime import timedelta

    from servicing.selectors import snapshot_series

    serviced, stopped, _pending = portfolio
    for offset in range(3):
        day = AS_OF - timedelta(days=2 - offset)
        _snapshot(serviced, day, "CURRENT", outstanding="10000.00", past_due="0.00", dpd=0)
        _snapshot(
            stopped, day, "DPD_31_60", outstanding="9000.00", past_due=f"{100 * offset}.00", dpd=40
        )
    _snapshot(serviced, AS_OF - timedelta(days=95), "CURRENT", outstanding="1", past_due="0", dpd=0)
    series = snapshot_series(as_of=AS_OF)
    assert series["dates"] == [date(2025, 3, 13), date(2025, 3, 14), date(2025, 3, 15)]
    assert series["outstanding"][0] == (date(2025, 3, 13), Decimal("19000.00"))
    assert [v for _d, v in series["past_due"]] == [
        Decimal("0.00"),
        Decimal("100.00"),
        Decimal("200.00"),
    ]
    assert series["buckets"]["DPD_31_60"] == [(d, 1) for d in series["dates"]]
    assert series["buckets"]["DPD_1_30"] == [(d, 0) for d in series["dates"]]
    client.force_login(operator)
    html = client.get("/admin/portfolio/").content.decode()
    for chart_id in ("chart-outstanding", "chart-past-due", "chart-buckets"):
        assert f'<svg class="chart" id="{chart_id}"' in html
    assert 'data-series="DPD_31_60"' in html and 'data-series="DPD_1_30"' not in html
    assert "<title>Past due: 200.00</title>" in html
    assert ">2025-03-13</text>" in html and ">2025-03-15</text>" in html


def test_dispatcher_queue(client, operator, portfolio):
    from datetime import UTC, datetime, timedelta

    from servicing.models import (
        AttemptStatus,
        DispatchAttempt,
        ItemKind,
        ScheduledCommunication,
        ScheduledPayment,
    )
    from servicing.selectors import dispatcher_queue

    serviced = portfolio[0]
    now = datetime(2025, 3, 15, 16, 0, tzinfo=UTC)
    ScheduledPayment.objects.create(loan=serviced, amount=Decimal("10"), scheduled_date=AS_OF)
    ScheduledPayment.objects.create(
        loan=serviced, amount=Decimal("10"), scheduled_date=AS_OF + timedelta(days=3)
    )
    ScheduledPayment.objects.create(
        loan=serviced, amount=Decimal("10"), scheduled_date=AS_OF, status="IN_FLIGHT"
    )
    ScheduledCommunication.objects.create(loan=serviced, channel="SMS", scheduled_at=now)
    deferred = ScheduledCommunication.objects.create(
        loan=serviced, channel="CALL", scheduled_at=now, not_before=now + timedelta(hours=14)
    )
    DispatchAttempt.objects.create(
        loan=serviced,
        kind=ItemKind.COMMUNICATION,
        scheduled_communication=deferred,
        channel="CALL",
        number=1,
        status=AttemptStatus.FAILED,
        started_at=now - timedelta(hours=1),
        finished_at=now - timedelta(hours=1),
    )
    queue = dispatcher_queue(as_of=AS_OF, now=now)
    assert queue["payments"] == {"due": 1, "deferred": 0, "in_flight": 1, "failed_today": 0}
    assert queue["communications"] == {"due": 1, "deferred": 1, "in_flight": 0, "failed_today": 1}
