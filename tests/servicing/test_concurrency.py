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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_cancel_waits_for_the_first_and_then_counts_nothing(seeded_loan, operator):
    """Deterministic interleaving: the first cancel holds the loan lock (its transaction is
    kept open) while the second starts; the second blocks on the lock, then sees the loan
    already stopped and returns zeros."""
    import time

    from django.db import transaction

    first_done, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def first() -> None:
        try:
            with transaction.atomic():
                outcome["first"] = services.cancel_servicing(
                    loan=seeded_loan.pk, reason="BANKRUPTCY", actor=operator
                )
                first_done.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    def second() -> None:
        try:
            started = time.perf_counter()
            outcome["second"] = services.cancel_servicing(
                loan=seeded_loan.pk, reason="MISTAKE", actor=operator
            )
            outcome["waited"] = time.perf_counter() - started
        finally:
            connection.close()

    holder = threading.Thread(target=first)
    holder.start()
    assert first_done.wait(timeout=10)
    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive()  # blocked on the row lock
    release.set()
    holder.join(timeout=10)
    waiter.join(timeout=10)

    assert outcome["waited"] >= 0.4
    assert outcome["first"].counts() == SEED_000_COUNTS
    assert outcome["second"].changed is False
    assert outcome["second"].counts() == dict.fromkeys(SEED_000_COUNTS, 0)
    assert outcome["second"].loan.stop_servicing_reason == "BANKRUPTCY"
    assert ServicingEvent.objects.filter(loan=seeded_loan).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_scheduling_racing_a_cancel_is_refused_after_it(loan, operator):
    """A payment scheduled while a cancel holds the lock waits, then gets 409
    loan_not_servicing: nothing is left PENDING on a stopped loan."""
    from decimal import Decimal

    from django.db import transaction

    from loans.exceptions import ConflictError
    from servicing.models import ScheduledPayment
    from tests.servicing.helpers import AS_OF

    locked, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def cancel() -> None:
        try:
            with transaction.atomic():
                services.cancel_servicing(loan=loan.pk, actor=operator)
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    def schedule() -> None:
        try:
            services.schedule_payment(
                loan=loan.pk, amount=Decimal("5.00"), scheduled_date=AS_OF, actor=operator
            )
        except ConflictError as exc:
            outcome["code"] = exc.code
        finally:
            connection.close()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    assert locked.wait(timeout=10)
    scheduler = threading.Thread(target=schedule)
    scheduler.start()
    scheduler.join(timeout=0.3)
    release.set()
    canceller.join(timeout=10)
    scheduler.join(timeout=10)

    assert outcome == {"code": "loan_not_servicing"}
    assert ScheduledPayment.objects.filter(loan=loan).count() == 0
