"""The servicing clock on PostgreSQL (issue 12).

* close of business: loan-days per second with 1 and 2 worker processes (each process closes
  its share of the batches on its own connection, as two Celery workers would); goal >= 200
  per worker and 2 workers >= 1.7x one;
* dispatcher: due payments executed with the simulated ACH provider by 1, 2 and 3 processes at
  once (as the ``dispatch_due`` and ``dispatch_more`` tasks); goal 10,000 in <= 60 s;
* statements per loan-day: the same for a loan with 2 and with 30 transactions.

Loans: 36 monthly periods, ~10 transactions each (disbursement + 9 repayments): one built
through the services, the rest cloned from it in SQL (``build_portfolio``). ``CLOCK_BENCH_LOANS``
(default 10,000) and ``CLOCK_BENCH_ITEMS`` (default 10,000) size it; ``CLOCK_BENCH_ONLY=dispatcher``
runs the dispatcher's part alone (after one warm-up close of business).

The dispatcher's CPU per item is the worker's and, where the server runs on this machine, its
PostgreSQL backend's (``/proc``): on a shared machine the wall time moves with the load, so the
bench also prints the projection from CPU alone (items x CPU per item / cores), what an idle
machine with these cores would take when the work is CPU-bound.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import date, timedelta
from decimal import Decimal

LOANS = int(os.environ.get("CLOCK_BENCH_LOANS", "10000"))
ONLY = os.environ.get("CLOCK_BENCH_ONLY", "")
ITEMS = int(os.environ.get("CLOCK_BENCH_ITEMS", "10000"))
# The dispatcher's rounds: 1, 2 and 3 processes (on 2 cores a third process runs while the
# others wait for their COMMITs' flush); CLOCK_BENCH_DISPATCHERS="1,2" for fewer.
DISPATCHERS = tuple(int(n) for n in os.environ.get("CLOCK_BENCH_DISPATCHERS", "1,2,3").split(","))
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


CLONE_STRIDE = 1000  # > any id of the template's rows: clone g's ids are template id + g * stride


def _clone_sql(model, cloned: set, where: str) -> str:
    """``INSERT INTO <table> SELECT <each column> FROM <table> CROSS JOIN generate_series``:
    clone ``g`` of each template row, ids (and keys to the cloned tables) moved by
    ``g * CLONE_STRIDE``, unique text suffixed with ``-c<g>``, everything else as is."""
    from django.db import connection

    quote = connection.ops.quote_name
    columns, selects = [], []
    for f in model._meta.concrete_fields:
        column = quote(f.column)
        columns.append(column)
        if f.primary_key or (f.is_relation and f.related_model in cloned):
            selects.append(f"t.{column} + g * {CLONE_STRIDE}")
        elif f.unique and f.get_internal_type() == "CharField":
            selects.append(f"t.{column} || '-c' || g")
        else:
            selects.append(f"t.{column}")
    table = quote(model._meta.db_table)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(selects)} "
        f"FROM {table} t CROSS JOIN generate_series(1, %s) g WHERE {where}"
    )


def build_portfolio(user, n: int) -> list[int]:
    """``n`` identical loans: one built through the services (36 periods, disbursement and 9
    repayments: its stored schedule is what the replay gives), then cloned ``n - 1`` times by
    PostgreSQL itself (``INSERT ... SELECT ... generate_series``, one statement per table), so
    10,000 loans take seconds and every clone is a real loan (its own borrower, setup, schedule
    version, periods, transactions and audit rows)."""
    from django.core.management.color import no_style
    from django.db import connection, transaction

    from loans.models import Borrower, Loan, LoanEvent, LoanSetup, Schedule, SchedulePeriod
    from loans.models import Transaction as Tx

    (template,) = build_loans(user, 1)
    loan = Loan.objects.get(pk=template)
    models = (Borrower, Loan, LoanSetup, Schedule, SchedulePeriod, Tx, LoanEvent)
    cloned = set(models)
    where = {
        Borrower: f"t.id = {loan.borrower_id}",
        Loan: f"t.id = {template}",
        LoanSetup: f"t.loan_id = {template}",
        Schedule: f"t.loan_id = {template}",
        SchedulePeriod: f"t.schedule_id IN (SELECT id FROM loans_schedule WHERE loan_id = {template})",
        Tx: f"t.loan_id = {template}",
        LoanEvent: f"t.loan_id = {template}",
    }
    for model in models:
        biggest = model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        assert biggest < CLONE_STRIDE, (model, biggest)
    with transaction.atomic(), connection.cursor() as cursor:
        for model in models:
            cursor.execute(_clone_sql(model, cloned, where[model]), [n - 1])
        for sql in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(sql)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return [template + g * CLONE_STRIDE for g in range(n)]


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

    from bench.measure import count_statements_and_round_trips, load_line
    from loans.services import set_business_date
    from servicing import close_of_business as cob

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
    if ONLY == "dispatcher":
        dispatcher_part(ids, START + timedelta(days=3))
        return
    anchor_before = anchor_loan_days(ids)
    one, n, one_cpu = close_with(1, START + timedelta(days=1), user)
    anchor_after = anchor_loan_days(ids)
    two, _, two_cpu = close_with(2, START + timedelta(days=2), user)
    anchor = (anchor_before + anchor_after) / 2
    print(f"  {load_line()}", flush=True)
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
    few, few_trips, _ = count_statements_and_round_trips(
        lambda: cob.close_loan_day(loan=small, day=day, actor=user)
    )
    many, many_trips, _ = count_statements_and_round_trips(
        lambda: cob.close_loan_day(loan=large, day=day, actor=user)
    )
    print(
        f"  statements per loan-day: {few} in {few_trips} round trips (2 transactions), "
        f"{many} in {many_trips} (30 transactions); BEGIN/COMMIT not counted"
    )

    dispatcher_part(ids, day)


def dispatcher_part(ids: list[int], day: date) -> None:
    from bench.measure import load_line
    from loans.services import set_business_date
    from servicing.models import ScheduledPayment
    from servicing.system import system_user

    set_business_date(new_date=day, actor=system_user())
    ScheduledPayment.objects.filter(scheduled_date__lte=day).delete()  # none yet: a clean queue
    due = [ids[i % len(ids)] for i in range(ITEMS)]
    rounds = []
    for workers in DISPATCHERS:
        ScheduledPayment.objects.bulk_create(
            ScheduledPayment(loan_id=loan_id, amount=Decimal("1.00"), scheduled_date=day)
            for loan_id in due
        )
        rounds.append(dispatch_with(workers))
        print(f"  {load_line()}", flush=True)
    item_anchor = anchor_loan_days(due)
    print(
        f"  anchor for the dispatcher: {len(due) / item_anchor:.0f} lock-and-write "
        f"transactions/s ({item_anchor:.1f} s)",
        flush=True,
    )
    cores = os.cpu_count() or 1
    for workers, (elapsed, executed, cpu, statements, trips, server) in zip(
        DISPATCHERS, rounds, strict=True
    ):
        rate = executed / elapsed
        line = (
            f"  dispatcher, {workers} process{'es' if workers > 1 else ''}: {executed} of {ITEMS}"
            f" due payments executed in {elapsed:.1f} s ({rate:.0f}/s; 10,000 would take"
            f" {10000 / rate:.0f} s); {elapsed / item_anchor:.1f}x the anchor's time; worker CPU"
            f" {1000 * cpu / executed:.1f} ms per item"
        )
        if server is not None:
            per_item = (cpu + server) / executed
            # CPU-bound on an idle machine: a worker and its backend take turns (one waits for
            # the other), so each pair keeps at most one core busy
            projected = 10000 * per_item / min(cores, workers)
            line += (
                f" + PostgreSQL backend {1000 * server / executed:.1f} ms = {1000 * per_item:.1f}"
                f" ms; from CPU alone 10,000 would take {projected:.0f} s on {cores} idle cores"
            )
        print(
            f"{line}; {statements / executed:.1f} statements in {trips / executed:.1f} round"
            " trips per item; goal 10,000 in <= 60 s",
            flush=True,
        )


def _dispatch_share(queue) -> None:
    from django import db

    db.connections.close_all()
    from django.db import connection

    from bench.measure import backend_cpu_seconds, count_statements_and_round_trips
    from servicing import dispatcher

    server = backend_cpu_seconds(connection)
    started, cpu = time.perf_counter(), time.process_time()
    statements, trips, result = count_statements_and_round_trips(
        lambda: dispatcher.dispatch_due(reconcile=False)
    )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = backend_cpu_seconds(connection)
    server = None if server is None or after is None else after - server
    queue.put((elapsed, cpu, result.executed, statements, trips, server))


def dispatch_with(workers: int) -> tuple:
    """The due payments dispatched by ``workers`` processes at once (each on its own
    connection, as Celery's ``dispatch_due`` + ``dispatch_more`` tasks run): seconds, items
    executed, the processes' CPU seconds, statements (BEGIN/COMMIT not counted), round trips,
    their PostgreSQL backends' CPU seconds (None when not readable)."""
    from django import db

    db.connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    started = time.perf_counter()
    procs = [context.Process(target=_dispatch_share, args=(queue,)) for _ in range(workers)]
    for p in procs:
        p.start()
    shares = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    servers = [s[5] for s in shares]
    return (
        elapsed,
        sum(s[2] for s in shares),
        sum(s[1] for s in shares),
        sum(s[3] for s in shares),
        sum(s[4] for s in shares),
        None if None in servers else sum(servers),
    )


def main() -> None:
    from bench.db import throwaway_database

    with throwaway_database():
        run()


if __name__ == "__main__":
    from bench.db import setup_django

    setup_django()
    main()
