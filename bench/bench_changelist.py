"""Admin loan changelist at portfolio scale (issue 14), on PostgreSQL.

Loads ``BENCH_LOANS`` loans (default 1,000,000; ``bench.portfolio``), then measures through the
Django test client, alternated round by round with the first page as the anchor: the first,
middle and last page, each filter, exact externalId and displayId search, a prefix search, a
borrower last-name search and an e-mail search. Goal: each <= 300 ms, with the same number of
statements whatever the page or the number of loans.
"""

from __future__ import annotations

import os
import re

from django.contrib.auth import get_user_model
from django.test import Client

from bench.db import reused_database, throwaway_database
from bench.measure import alternate, count_statements, load_line, print_figure
from bench.portfolio import FIRST_NAMES, LAST_NAMES, load_portfolio
from loans.models import BusinessDate

REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
URL = "/admin/loans/loan/"
PAGE = re.compile(rb'href="\?(?:[^"]*&amp;)?p=(\d+)')
ROW = re.compile(rb'href="/admin/loans/loan/\d+/change/')


def last_page(client, url: str) -> int:
    """The highest page number the changelist links to (its count may be an estimate)."""
    numbers = [int(p) for p in PAGE.findall(client.get(url).content)]
    return max(numbers, default=1)


def changelist_cases(client, n: int) -> dict[str, str]:
    pages = last_page(client, URL)
    closed = f"{URL}?status__exact=CLOSED"
    middle = n // 2
    i = 424_242 % n or 1
    surname = LAST_NAMES[(i // 7) % len(LAST_NAMES)]
    email = f"{FIRST_NAMES[i % len(FIRST_NAMES)]}.{surname}{i}@example.com".lower()
    return {
        "page 1": URL,
        f"middle page ({pages // 2:,})": f"{URL}?p={pages // 2}",
        f"last page ({pages:,})": f"{URL}?p={pages}",
        "filter status=CLOSED": closed,
        "filter status=CLOSED, last page": f"{closed}&p={last_page(client, closed)}",
        "filter sub-status": f"{URL}?sub_status=CONTRACT_TERMINATION",
        "filter servicing NOT_SERVICING": f"{URL}?servicing_status__exact=NOT_SERVICING",
        "filter engine STANDARD": f"{URL}?schedule_engine__exact=STANDARD",
        "filter charged off": f"{URL}?charged_off__exact=1",
        "search exact externalId": f"{URL}?q=EXT-{middle:08d}",
        "search exact displayId (lower case)": f"{URL}?q=ln-{middle:08d}",
        "search externalId prefix": f"{URL}?q=EXT-{middle // 100:06d}",
        f"search last name ({surname})": f"{URL}?q={surname}",
        "search e-mail": f"{URL}?q={email}",
    }


def run(n: int, *, load: bool = True) -> None:
    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    BusinessDate.objects.update_or_create(pk=1, defaults={"date": "2030-01-01"})
    if load:
        load_portfolio(n)
    client = Client()
    client.force_login(user)
    cases = changelist_cases(client, n)
    statements, counts = {}, {}
    for label, url in cases.items():
        count, response = count_statements(lambda url=url: client.get(url))
        assert response.status_code == 200, (label, response.status_code)
        rows = len(set(ROW.findall(response.content)))
        statements[label] = count
        counts[label] = rows
    print(f"admin changelist, {n:,} loans ({REPEAT} rounds, alternated; {load_line()}):")
    samples = alternate(
        {label: (lambda url=url: client.get(url)) for label, url in cases.items()},
        repeat=REPEAT,
    )
    anchor = samples["page 1"]
    for label in cases:
        samples[label].label = f"{label} [{counts[label]} rows, {statements[label]} statements]"
        print_figure(samples[label], None if label == "page 1" else anchor, goal="<= 300 ms")
    print(f"  ({load_line()})")


def main() -> None:
    n = int(os.environ.get("BENCH_LOANS", "1000000"))
    if os.environ.get("BENCH_REUSE"):  # development: the database bench.portfolio kept
        with reused_database():
            run(n, load=False)
        return
    with throwaway_database():
        run(n)
