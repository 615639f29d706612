"""The servicing clock on PostgreSQL (issue 12).

* close of business: loan-days per second with 1 and 2 worker processes (each process closes
  its share of the batches on its own connection, as two Celery workers would); goal >= 200
  per worker and 2 workers >= 1.7x one;
* dispatcher: due payments executed with the simulated ACH provider; goal 10,000 in <= 60 s;
* statements per loan-day: the same for a loan with 2 and with 30 transactions.

Loans: 36 monthly periods, ~10 transactions each (disbursement + 9 repayments), built through
the services. ``CLOCK_BENCH_LOANS`` (default 10,000) and ``CLOCK_BENCH_ITEMS`` (default 10,000)
size it; on a shared 2-core machine a smaller run (e.g. 400) prints the same figures.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import date, timedelta
from decimal import Decimal

LOANS = int(os.environ.get("CLOCK_BENCH_LOANS", "10000"))
ITEMS = int(os.environ.get("CLOCK_BENCH_ITEMS", "10000"))
START = date(2026, 1, 1)


def build_loans(user, n: int, repayments: int = 9) -> list[int]:
    from loans import services
    from tests.factories import make_loan

    step = min(30, 360 // max(repayments, 1))  # every repayment dated before START
    ids = []
    for _ in range(n):
        loan = make_loan(
            actor=user,
            loan_term=Decimal("36"),
            contract_date=START - timedelta(days=400),
            first_payment_date=START - timedelta(days=370),
        )
        services.activate_loan(loan=loan, actor=user, as_of=START)
        for k in range(repayments):
            services.post_transaction(
                loan=loan,
                type="REPAYMENT",
                on=START - timedelta(days=360 - step * k),
                amount=Decimal("20.00"),
                actor=user,
                as_of=START,
            )
        ids.append(loan.pk)
    return ids


def _build_share(username: str, n: int, first: int, queue) -> None:
    import itertools

    from django import db
    from django.contrib.auth import get_user_model

    from tests import factories

    db.connections.close_all()
    factories._counter = itertools.count(first)  # external ids unique across the processes
    user = get_user_model().objects.get(username=username)
    queue.put(build_loans(user, n))


def build_portfolio(user, n: int, processes: int = 2) -> list[int]:
    """``n`` loans built through the services by ``processes`` forked processes (each on its
    own connection): the same loans as one process builds, in about half the time."""
    from django import db

    db.connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    shares = [n // processes + (1 if i < n % processes else 0) for i in range(processes)]
    procs = [
        context.Process(target=_build_share, args=(user.username, k, 1 + i * 1_000_000, queue))
        for i, k in enumerate(shares)
    ]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in queue.get()]
    for p in procs:
        p.join()
    import itertools

    from tests import factories

    factories._counter = itertools.count(1 + processes * 1_000_000)  # after the shares' ids
    return sorted(ids)


def anchor_loan_days(loan_ids: list[int]) -> float:
    """The anchor: the floor of any per-loan-transaction design, measured on the same loans
    in the same run -- per loan one transaction that locks the loan row and writes it back
    (BEGIN, SELECT ... FOR UPDATE, UPDATE, COMMIT). Returns seconds for all loans."""
    from django.db import transaction

    from loans.models import Loan
    from loans.versions import lock_loan

    started = time.perf_counter()
    for loan_id in loan_ids:
        with transaction.atomic():
            loan = lock_loan(loan_id)
            Loan.objects.filter(pk=loan.pk).update(
                last_closed_business_date=loan.last_closed_business_date
            )
    return time.perf_counter() - started


def _close_share(job_id: int, loan_ids: list[int], queue) -> None:
    from django import db

    db.connections.close_all()
    from servicing import close_of_business as cob

    started, cpu = time.perf_counter(), time.process_time()
    for batch in cob.batches(loan_ids, 100):
        cob.close_batch(job_id=job_id, loan_ids=batch)
    queue.put((time.perf_counter() - started, time.process_time() - cpu))


def close_with(workers: int, day: date, user) -> tuple[float, int, float]:
    """Seconds, loans closed, and the workers' CPU seconds (Python's side only: waiting for a
    core or for PostgreSQL does not count)."""
    from django import db

    from loans.services import set_business_date
    from servicing import close_of_business as cob

    set_business_date(new_date=day, actor=user)
    job = cob.create_job(business_date=day, actor=user)
    ids = cob.start_job(job.pk)
    shares = [ids[i::workers] for i in range(workers)]
    db.connections.close_all()
    queue = multiprocessing.get_context("fork").Queue()
    started = time.perf_counter()
    procs = [
        multiprocessing.get_context("fork").Process(target=_close_share, args=(job.pk, s, queue))
        for s in shares
    ]
    for p in procs:
        p.start()
    cpu = sum(queue.get()[1] for _ in procs)
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    job.refresh_from_db()
    assert job.done == len(ids), (job.done, len(ids), job.failed)
    return elapsed, len(ids), cpu


def run() -> None:
    from django.contrib.auth import get_user_model

    from bench.measure import count_statements, load_line
    from loans.services import set_business_date
    from servicing import close_of_business as cob
    from servicing import dispatcher
    from servicing.models import ScheduledPayment

    user = get_user_model().objects.create_user(username="bench")
    set_business_date(new_date=START, actor=user)
    print(f"  {load_line()}", flush=True)
    started = time.perf_counter()
    ids = build_portfolio(user, LOANS)
    print(f"  built {LOANS} loans in {time.perf_counter() - started:.1f} s", flush=True)

    # warm-up day, then one day with 1 worker and the next with 2 (alternated would need
    # twice the loans; the days are equivalent: no fee, no bucket change in between), the
    # anchor before and after the 1-worker day (its median is the figure's anchor)
    close_with(1, START, user)
    anchor_before = anchor_loan_days(ids)
    one, n, one_cpu = close_with(1, START + timedelta(days=1), user)
    anchor_after = anchor_loan_days(ids)
    two, _, two_cpu = close_with(2, START + timedelta(days=2), user)
    anchor = (anchor_before + anchor_after) / 2
    print(
        f"  anchor (per loan: BEGIN, lock the loan row, UPDATE it, COMMIT; 1 process): "
        f"{n / anchor:.0f} loans/s ({anchor_before:.2f} s before, {anchor_after:.2f} s after)",
        flush=True,
    )
    print(
        f"  close of business, 1 worker: {n / one:.0f} loan-days/s ({n} loans in {one:.2f} s);"
        f" {one / anchor:.1f}x the anchor's time; worker CPU {1000 * one_cpu / n:.1f} ms per"
        f" loan-day ({n / one_cpu:.0f} loan-days per CPU-second); goal >= 200 per worker",
        flush=True,
    )
    print(
        f"  close of business, 2 workers: {n / two:.0f} loan-days/s ({two:.2f} s); "
        f"speed-up {one / two:.2f}x; worker CPU {1000 * two_cpu / n:.1f} ms per loan-day;"
        " goal >= 1.7x",
        flush=True,
    )

    small, large = build_loans(user, 1, repayments=2)[0], build_loans(user, 1, repayments=30)[0]
    day = START + timedelta(days=3)
    set_business_date(new_date=day, actor=user)
    for loan_id in (small, large):  # the first close records the bucket: steady state after
        cob.close_loan_day(loan=loan_id, day=day - timedelta(days=1), actor=user)
    few, _ = count_statements(lambda: cob.close_loan_day(loan=small, day=day, actor=user))
    many, _ = count_statements(lambda: cob.close_loan_day(loan=large, day=day, actor=user))
    print(f"  statements per loan-day: {few} (2 transactions), {many} (30 transactions)")

    loans = list(
        __import__("loans.models", fromlist=["Loan"]).Loan.objects.values_list("id", flat=True)
    )
    ScheduledPayment.objects.bulk_create(
        ScheduledPayment(loan_id=loans[i % len(loans)], amount=Decimal("1.00"), scheduled_date=day)
        for i in range(ITEMS)
    )
    started = time.perf_counter()
    result = dispatcher.dispatch_due()
    elapsed = time.perf_counter() - started
    due = list(
        ScheduledPayment.objects.filter(scheduled_date=day).values_list("loan_id", flat=True)
    )
    item_anchor = anchor_loan_days(due)
    print(
        f"  anchor for the dispatcher: {len(due) / item_anchor:.0f} lock-and-write "
        f"transactions/s ({item_anchor:.1f} s); the dispatcher's time is "
        f"{elapsed / item_anchor:.1f}x the anchor's",
        flush=True,
    )
    print(
        f"  dispatcher: {result.executed} of {ITEMS} due payments executed in {elapsed:.1f} s "
        f"({result.executed / elapsed:.0f}/s; 10,000 would take {10000 / (result.executed / elapsed):.0f} s);"
        " goal 10,000 in <= 60 s",
        flush=True,
    )


def main() -> None:
    from bench.db import throwaway_database

    with throwaway_database():
        run()


if __name__ == "__main__":
    from bench.db import setup_django

    setup_django()
    main()
