"""PostgreSQL: cancel_servicing races the dispatcher (threads). No attempt starts after the stop
commits: every attempt began before it, every other item is CANCELLED."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections

from servicing import dispatcher, services
from servicing.models import DispatchAttempt, ScheduledCommunication, ServicingEvent
from tests.factories import make_active_loan, set_business_date

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = datetime(2026, 2, 18, 17, 0, tzinfo=UTC)  # noon in New York


@pytest.mark.parametrize("round_", range(3))
def test_no_attempt_starts_after_cancel_servicing_commits(operator, round_):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(actor=operator)
    ScheduledCommunication.objects.bulk_create(
        ScheduledCommunication(
            loan=loan, channel="SMS", scheduled_at=NOW - timedelta(minutes=i), body="x"
        )
        for i in range(40)
    )
    from servicing.models import ScheduledPayment

    ScheduledPayment.objects.bulk_create(
        ScheduledPayment(loan=loan, amount=Decimal("1.00"), scheduled_date=date(2026, 2, 18))
        for _ in range(10)
    )
    start = threading.Barrier(2)
    errors = []

    def dispatch():
        try:
            start.wait()
            dispatcher.dispatch_due(now=NOW)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    def stop():
        try:
            start.wait()
            services.cancel_servicing(loan=loan.pk, reason="BANKRUPTCY", actor=operator)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=dispatch), threading.Thread(target=stop)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    stopped_at = ServicingEvent.objects.get(loan=loan, kind="CANCEL").at
    attempts = list(DispatchAttempt.objects.filter(loan=loan).values_list("started_at", flat=True))
    assert all(at < stopped_at for at in attempts)
    comms = list(ScheduledCommunication.objects.filter(loan=loan).values_list("status", flat=True))
    payments = list(ScheduledPayment.objects.filter(loan=loan).values_list("status", flat=True))
    executed = sum(s in ("SENT", "PROCESSED") for s in comms + payments)
    cancelled = sum(s == "CANCELLED" for s in comms + payments)
    assert executed == len(attempts)
    assert executed + cancelled == 50
    assert "PENDING" not in comms + payments and "IN_FLIGHT" not in comms + payments
