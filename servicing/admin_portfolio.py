"""The portfolio dashboard (``/admin/portfolio/``): the figures of ``GET /portfolio/summary``
(one selector for both), each a link to the loan changelist filtered to it; 90-day charts from
the daily snapshots; the dispatcher's queue."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from loans import charts
from loans.selectors import get_business_date
from servicing import selectors

# summary key -> (title, the changelist's query parameter, its value for "none")
DIMENSIONS = {
    "byStatus": ("Status", "status__exact", None),
    "bySubStatus": ("Sub-status", "sub_status", "none"),
    "byServicingStatus": ("Servicing status", "servicing_status__exact", None),
    "byDelinquencyBucket": ("Delinquency bucket", "delinquency_bucket__exact", None),
}


def changelist_link(parameter: str | None, value) -> str:
    url = reverse("admin:loans_loan_changelist")
    if parameter is None:
        return url
    return f"{url}?{urlencode({parameter: value})}"


def dashboard_tables(summary: dict) -> list[dict]:
    tables = []
    for key, (title, parameter, none_value) in DIMENSIONS.items():
        if key not in summary:
            continue
        rows = []
        for group in summary[key]:
            value = group["value"]
            rows.append(
                {
                    **group,
                    "label": value if value is not None else "None",
                    "url": changelist_link(parameter, value if value is not None else none_value),
                }
            )
        tables.append({"key": key, "title": title, "rows": rows})
    return tables


def dashboard_charts(series: dict) -> list:
    """The three 90-day charts, drawn on the server as SVG (``loans.charts``)."""
    return [
        charts.line_chart(
            "chart-outstanding",
            "Total outstanding, last 90 days",
            [charts.Series("Outstanding", series["outstanding"])],
        ),
        charts.line_chart(
            "chart-past-due",
            "Amount past due, last 90 days",
            [charts.Series("Past due", series["past_due"], css="series-1")],
        ),
        charts.line_chart(
            "chart-buckets",
            "Loans per delinquency bucket, last 90 days",
            [
                charts.Series(bucket, points)
                for bucket, points in series["buckets"].items()
                if any(count for _day, count in points)
            ],
            integer=True,
        ),
    ]


def queue_rows(queue: dict, as_of) -> list[dict]:
    payments_url = reverse("admin:servicing_scheduledpayment_changelist")
    communications_url = reverse("admin:servicing_scheduledcommunication_changelist")
    labels = {
        "due": "Due now",
        "deferred": "Deferred (quiet hours, retry)",
        "in_flight": "In flight",
        "failed_today": "Failed today",
    }
    status = {"due": "PENDING", "deferred": "PENDING", "in_flight": "IN_FLIGHT"}
    rows = []
    for key, label in labels.items():
        link = f"?status__exact={status[key]}" if key in status else None
        rows.append(
            {
                "key": key,
                "label": label,
                "payments": queue["payments"][key],
                "communications": queue["communications"][key],
                "payments_url": f"{payments_url}{link}" if link else None,
                "communications_url": f"{communications_url}{link}" if link else None,
            }
        )
    return rows


def portfolio_view(request):
    if not (request.user.is_staff and request.user.has_perm("loans.view_loan")):
        raise PermissionDenied
    as_of = get_business_date()
    summary = selectors.portfolio_summary(as_of=as_of)
    now = timezone.now()
    return TemplateResponse(
        request,
        "admin/portfolio.html",
        {
            **admin.site.each_context(request),
            "title": "Portfolio",
            "as_of": as_of,
            "summary": summary,
            "total_url": changelist_link(None, None),
            "tables": dashboard_tables(summary),
            "charts": dashboard_charts(selectors.snapshot_series(as_of=as_of)),
            "queue": queue_rows(selectors.dispatcher_queue(as_of=as_of, now=now), as_of),
        },
    )
