"""``cancel_servicing`` runs the same small number of statements for 10 items as for 300: one
UPDATE per kind, never one per row.

Thirteen SQL statements: the business date, the row lock, the loan update, eight UPDATEs
(payments; autopays; calls, emails, SMS; call, email and SMS schedules), the ServicingEvent and
the LoanEvent. Django 5 also records the transaction's two control statements in the query log
(BEGIN/COMMIT, or SAVEPOINT/RELEASE inside the test transaction), hence 15 in
``django_assert_max_num_queries``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from servicing import services
from servicing.models import (
    Channel,
    CommunicationSchedule,
    ScheduledCommunication,
    ScheduledPayment,
)
from tests.factories import make_active_loan, set_business_date

MAX_STATEMENTS = 13
MAX_QUERIES = MAX_STATEMENTS + 2  # + BEGIN/COMMIT or SAVEPOINT/RELEASE
CONTROL = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")


def add_items(loan, n: int) -> int:
    """``n`` pending items spread over the seven kinds; returns how many were created."""
    per_kind = max(1, n // 7)
    start = datetime(2026, 3, 1, 15, tzinfo=UTC)
    ScheduledPayment.objects.bulk_create(
        ScheduledPayment(loan=loan, amount="10.00", scheduled_date=date(2026, 3, 1))
        for _ in range(per_kind)
    )
    for channel in Channel.values:
        ScheduledCommunication.objects.bulk_create(
            ScheduledCommunication(loan=loan, channel=channel, scheduled_at=start)
            for _ in range(per_kind)
        )
        CommunicationSchedule.objects.bulk_create(
            CommunicationSchedule(
                loan=loan, channel=channel, every_days=7, start_date=date(2026, 3, 1), occurrences=1
            )
            for _ in range(per_kind)
        )
    return per_kind * 7


def cancel_and_count(loan, operator) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        result = services.cancel_servicing(loan=loan, reason="PAID_OFF", actor=operator)
    statements = [
        q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(CONTROL)
    ]
    assert len(statements) <= MAX_STATEMENTS, statements
    return len(statements), result.total


@pytest.mark.django_db
def test_cancel_servicing_query_count_does_not_grow_with_items(
    operator, django_assert_max_num_queries
):
    set_business_date(date(2026, 2, 18))
    small = make_active_loan(actor=operator)
    large = make_active_loan(actor=operator)
    assert add_items(small, 10) == 7
    assert add_items(large, 300) == 294
    before = timezone.now()

    with django_assert_max_num_queries(MAX_QUERIES):
        small_queries, small_total = cancel_and_count(small, operator)
    with django_assert_max_num_queries(MAX_QUERIES):
        large_queries, large_total = cancel_and_count(large, operator)

    assert (small_total, large_total) == (7, 294)
    assert small_queries == large_queries == MAX_STATEMENTS
    assert ScheduledPayment.objects.filter(loan=large, cancelled_at__gte=before).count() == 42
