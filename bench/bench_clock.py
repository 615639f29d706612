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
                on=START - timedelta(days=360 - 30 * k),
                amount=Decimal("20.00"),
                actor=user,
                as_of=START,
            )
        ids.append(loan.pk)
    return ids


def _close_share(job_id: int, loan_ids: list[int], queue) -> None:
    from django import db

    db.connections.close_all()
    from servicing import close_of_business as cob

    started = time.perf_counter()
    for batch in cob.batches(loan_ids, 100):
        cob.close_batch(job_id=job_id, loan_ids=batch)
    queue.put(time.perf_counter() - started)


def close_with(workers: int, day: date, user) -> tuple[float, int]:
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
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    job.refresh_from_db()
    assert job.done == len(ids), (job.done, len(ids), job.failed)
    return elapsed, len(ids)


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
    build_loans(user, LOANS)
    print(f"  built {LOANS} loans in {time.perf_counter() - started:.1f} s", flush=True)

    # warm-up day, then one day with 1 worker and the next with 2 (alternated would need
    # twice the loans; the days are equivalent: no fee, no bucket change in between)
    close_with(1, START, user)
    one, n = close_with(1, START + timedelta(days=1), user)
    two, _ = close_with(2, START + timedelta(days=2), user)
    print(
        f"  close of business, 1 worker: {n / one:.0f} loan-days/s ({n} loans in {one:.2f} s);"
        " goal >= 200 per worker",
        flush=True,
    )
    print(
        f"  close of business, 2 workers: {n / two:.0f} loan-days/s ({two:.2f} s); "
        f"speed-up {one / two:.2f}x; goal >= 1.7x",
        flush=True,
    )

    small, large = build_loans(user, 1, repayments=2)[0], build_loans(user, 1, repayments=30)[0]
    day = START + timedelta(days=3)
    set_business_date(new_date=day, actor=user)
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
