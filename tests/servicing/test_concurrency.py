"""Two operators cancel servicing of the same loan at the same moment (PostgreSQL: real row
locks). The loan row lock serialises them: one gets the counts, the other sees the loan already
stopped and gets zeros; nothing is counted twice."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from loans.models import ServicingStatus
from servicing import services
from servicing.models import ServicingEvent
from servicing.selectors import pending_counts
from tests.servicing.helpers import SEED_000_COUNTS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_threads_cancel_the_same_loan_at_once(seeded_loan, operator):
    existing = pending_counts([seeded_loan.pk])[seeded_loan.pk]
    assert existing.total == 16
    barrier = threading.Barrier(2)
    results, errors = [], []

    def cancel(reason: str) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(
                services.cancel_servicing(loan=seeded_loan.pk, reason=reason, actor=operator)
            )
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=cancel, args=(r,)) for r in ("PAID_OFF", "FRAUD_CLAIM")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == 2
    winners = [r for r in results if r.changed]
    losers = [r for r in results if not r.changed]
    assert len(winners) == 1 and len(losers) == 1
    assert winners[0].counts() == SEED_000_COUNTS
    assert losers[0].counts() == dict.fromkeys(SEED_000_COUNTS, 0)
    for name in SEED_000_COUNTS:
        assert sum(getattr(r, name) for r in results) == SEED_000_COUNTS[name]
    seeded_loan.refresh_from_db()
    assert seeded_loan.servicing_status == ServicingStatus.NOT_SERVICING
    # The first to take the lock set the reason; the second kept it.
    assert seeded_loan.stop_servicing_reason == winners[0].loan.stop_servicing_reason
    assert losers[0].loan.stop_servicing_reason == winners[0].loan.stop_servicing_reason
    assert ServicingEvent.objects.filter(loan=seeded_loan).count() == 1
    assert pending_counts([seeded_loan.pk])[seeded_loan.pk].total == 0
