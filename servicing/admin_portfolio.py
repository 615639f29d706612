"""The portfolio dashboard (``/admin/portfolio/``): the figures of ``GET /portfolio/summary``
(one selector for both), each a link to the loan changelist filtered to it; 90-day charts from
the daily snapshots; the dispatcher's queue."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse

from loans.selectors import get_business_date
from servicing import selectors

# summary key -> (title, the changelist's query parameter, its value for "none")
DIMENSIONS = {
    "byStatus": ("Status", "status__exact", None),
    "bySubStatus": ("Sub-status", "sub_status", "none"),
    "byServicingStatus": ("Servicing status", "servicing_status__exact", None),
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


def portfolio_view(request):
    if not (request.user.is_staff and request.user.has_perm("loans.view_loan")):
        raise PermissionDenied
    as_of = get_business_date()
    summary = selectors.portfolio_summary(as_of=as_of)
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
        },
    )
