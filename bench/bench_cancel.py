"""Benchmark of cancel servicing (issue 3) on PostgreSQL.

1. One loan with 10,000 pending items (4,000 payments, 1,900 calls, 1,900 emails, 1,900 SMS,
   100 call, 100 email and 100 SMS schedules): statements and time of ``cancel_servicing`` next
   to the seven raw SQL UPDATEs of the same rows (goal: at most 3x, and the same statement
   count as for 10 items).
2. Set-based: ``cancel_servicing_bulk`` on 1,000 loans and the borrower-level stop
   (``cancel_borrower_servicing``) of a borrower with 1,000 loans, each next to the same
   UPDATEs written by hand, alternated (goal: at most 1 s and 3x).
3. The admin action "Cancel servicing" on 1,000 loans (6 pending items each), posted through
   the Django test client to the loan changelist: statements per loan and total time (goal:
   at most 10 s). The confirmation page for the same 1,000 loans is timed too.

Database: a throwaway ``<name>_bench`` database next to the one ``DATABASE_URL`` names,
dropped at the end (``bench.db``). Run: ``make bench BENCH=cancel``.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, date, datetime

from bench.measure import alternate, count_statements, load_line, print_figure

REPEAT = 5


def _make_loans(n: int, prefix: str):
    from loans.models import Borrower, Loan, LoanStatus

    borrowers = Borrower.objects.bulk_create(
        Borrower(
            first_name="Bench",
            last_name=f"{prefix}{i}",
            email=f"{prefix.lower()}{i}@example.com",
            phone="+15550100",
            timezone="America/New_York",
        )
        for i in range(n)
    )
    return Loan.objects.bulk_create(
        Loan(
            external_id=f"{prefix}-{i:05d}",
            display_id=f"{prefix[:2]}-{i:06d}",
            borrower=b,
            status=LoanStatus.ACTIVE,
        )
        for i, b in enumerate(borrowers)
    )


def _add_items(loans, *, payments: int, per_channel: int, schedules_per_channel: int) -> int:
    from servicing.models import (
        Channel,
        CommunicationSchedule,
        ScheduledCommunication,
        ScheduledPayment,
    )

    at = datetime(2026, 3, 1, 15, tzinfo=UTC)
    start = date(2026, 3, 1)
    total = 0
    rows = [
        ScheduledPayment(loan=loan, amount="10.00", scheduled_date=start)
        for loan in loans
        for _ in range(payments)
    ]
    ScheduledPayment.objects.bulk_create(rows, batch_size=5000)
    total += len(rows)
    for channel in Channel.values:
        rows = [
            ScheduledCommunication(loan=loan, channel=channel, scheduled_at=at)
            for loan in loans
            for _ in range(per_channel)
        ]
        ScheduledCommunication.objects.bulk_create(rows, batch_size=5000)
        total += len(rows)
        rows = [
            CommunicationSchedule(
                loan=loan, channel=channel, every_days=7, start_date=start, occurrences=1
            )
            for loan in loans
            for _ in range(schedules_per_channel)
        ]
        CommunicationSchedule.objects.bulk_create(rows, batch_size=5000)
        total += len(rows)
    return total


RAW_UPDATES = [
    ("servicing_scheduledpayment", "PENDING", None),
    ("servicing_scheduledcommunication", "PENDING", "CALL"),
    ("servicing_scheduledcommunication", "PENDING", "EMAIL"),
    ("servicing_scheduledcommunication", "PENDING", "SMS"),
    ("servicing_communicationschedule", "ACTIVE", "CALL"),
    ("servicing_communicationschedule", "ACTIVE", "EMAIL"),
    ("servicing_communicationschedule", "ACTIVE", "SMS"),
]


def _raw_item_updates(cursor, loan_ids: list[int], user_id: int, reason: str, now) -> int:
    """The seven hand-written item UPDATEs (``loan_id = ANY(ids)``); the rows cancelled."""
    count = 0
    for table, status, channel in RAW_UPDATES:
        sql = (
            f"UPDATE {table} SET status = 'CANCELLED', cancelled_at = %s, "
            "cancelled_by_id = %s, cancel_reason = %s WHERE loan_id = ANY(%s) AND status = %s"
        )
        params = [now, user_id, f"Servicing cancelled: {reason}", loan_ids, status]
        if channel:
            sql += " AND channel = %s"
            params.append(channel)
        cursor.execute(sql, params)
        count += cursor.rowcount
    return count


def _raw_cancel(loan_id: int, user_id: int) -> int:
    """The same rows cancelled with seven hand-written UPDATEs in one transaction."""
    from django.db import connection, transaction
    from django.utils import timezone

    with transaction.atomic(), connection.cursor() as cursor:
        return _raw_item_updates(cursor, [loan_id], user_id, "PAID_OFF", timezone.now())


def _reset(loan_id: int) -> None:
    _reset_many([loan_id])


def bench_one_loan(user) -> dict:
    from servicing import services

    (loan,) = _make_loans(1, "BIG")
    created = _add_items([loan], payments=4000, per_channel=1900, schedules_per_channel=100)
    assert created == 10_000, created
    (small,) = _make_loans(1, "SMALL")
    _add_items([small], payments=4, per_channel=1, schedules_per_channel=1)
    _reset(loan.pk)

    small_statements, small_result = count_statements(
        lambda: services.cancel_servicing(loan=small.pk, reason="PAID_OFF", actor=user)
    )
    outcome = {}

    def service_run() -> float:
        started = time.perf_counter()
        statements, result = count_statements(
            lambda: services.cancel_servicing(loan=loan.pk, reason="PAID_OFF", actor=user)
        )
        seconds = time.perf_counter() - started
        outcome.update(statements=statements, cancelled=result.total)
        _reset(loan.pk)  # not timed
        return seconds

    def raw_run() -> float:
        started = time.perf_counter()
        assert _raw_cancel(loan.pk, user.pk) == 10_000
        seconds = time.perf_counter() - started
        _reset(loan.pk)
        return seconds

    samples = alternate({"cancel_servicing": service_run, "raw SQL": raw_run}, repeat=REPEAT)
    service_times = samples["cancel_servicing"].seconds
    raw_times = samples["raw SQL"].seconds
    statements, cancelled = outcome["statements"], outcome["cancelled"]
    service, raw = statistics.median(service_times), statistics.median(raw_times)
    return {
        "items": created,
        "cancelled": cancelled,
        "queries_10k": statements,
        "queries_small": small_statements,
        "spread": (min(service_times) * 1000, max(service_times) * 1000),
        "raw_spread": (min(raw_times) * 1000, max(raw_times) * 1000),
        "small_cancelled": small_result.total,
        "service_ms": service * 1000,
        "raw_ms": raw * 1000,
        "ratio": service / raw,
    }


def bench_admin_bulk(user, n_loans: int = 1000) -> dict:
    from django.test import Client

    from loans.models import Loan, ServicingStatus

    loans = _make_loans(n_loans, "BULK")
    items = _add_items(loans, payments=2, per_channel=1, schedules_per_channel=0)
    # one call schedule per loan too: six pending items per loan
    from servicing.models import CommunicationSchedule

    CommunicationSchedule.objects.bulk_create(
        CommunicationSchedule(
            loan=loan, channel="CALL", every_days=7, start_date=date(2026, 3, 1), occurrences=1
        )
        for loan in loans
    )
    items += n_loans
    ids = [loan.pk for loan in loans]
    client = Client()
    client.force_login(user)
    # As an operator would: search the changelist, tick "select all N", run the action (a
    # form carrying 1,000 ids would exceed DATA_UPLOAD_MAX_NUMBER_FIELDS).
    url = "/admin/loans/loan/?q=BULK"
    payload = {
        "action": "cancel_servicing_selected",
        "_selected_action": ids[:50],
        "select_across": "1",
    }

    # Counted with an execute wrapper: the request resets connection.queries, so a
    # CaptureQueriesContext around it read 0 statements.
    started = time.perf_counter()
    first_pass, page = count_statements(lambda: client.post(url, payload, secure=True))
    first_seconds = time.perf_counter() - started
    assert page.status_code == 200, page.status_code
    assert page.content.count(b'<td class="num total">6</td>') == n_loans

    started = time.perf_counter()
    statements, response = count_statements(
        lambda: client.post(url, {**payload, "post": "yes", "reason": "SOLD_OFF"}, secure=True)
    )
    seconds = time.perf_counter() - started
    assert response.status_code == 302, response.status_code
    stopped = Loan.objects.filter(pk__in=ids, servicing_status=ServicingStatus.NOT_SERVICING)
    assert stopped.count() == n_loans
    return {
        "loans": n_loans,
        "items": items,
        "first_pass_s": first_seconds,
        "first_pass_queries": first_pass,
        "seconds": seconds,
        "queries": statements,
        "queries_per_loan": statements / n_loans,
    }


def _raw_cancel_many(loan_ids: list[int], user_id: int) -> int:
    """Hand-written set-based cancel of many loans: the loans' UPDATE and the seven item
    UPDATEs in one transaction; no audit rows."""
    from django.db import connection, transaction
    from django.utils import timezone

    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE loans_loan SET servicing_status = 'NOT_SERVICING', stop_servicing_reason = %s, "
            "servicing_changed_at = %s, servicing_changed_by_id = %s, updated_at = %s "
            "WHERE id = ANY(%s) AND servicing_status = 'ACTIVE'",
            ["SOLD_OFF", now, user_id, now, loan_ids],
        )
        return _raw_item_updates(cursor, loan_ids, user_id, "SOLD_OFF", now)


def _reset_many(loan_ids: list[int]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table, status in [
            ("servicing_scheduledpayment", "PENDING"),
            ("servicing_scheduledcommunication", "PENDING"),
            ("servicing_communicationschedule", "ACTIVE"),
        ]:
            cursor.execute(
                f"UPDATE {table} SET status = %s, cancelled_at = NULL, cancelled_by_id = NULL, "
                "cancel_reason = '' WHERE loan_id = ANY(%s) AND status = 'CANCELLED'",
                [status, loan_ids],
            )
        cursor.execute(
            "UPDATE loans_loan SET servicing_status = 'ACTIVE', stop_servicing_reason = NULL "
            "WHERE id = ANY(%s)",
            [loan_ids],
        )
        # Untimed: every run starts without the previous run's dead rows.
        cursor.execute(
            "VACUUM ANALYZE servicing_scheduledpayment, servicing_scheduledcommunication, "
            "servicing_communicationschedule, loans_loan"
        )


def bench_set_based(user, n_loans: int = 1000) -> None:
    """``cancel_servicing_bulk`` on 1,000 loans and the borrower-level stop on a borrower with
    1,000 loans (six pending items a loan), each next to the same UPDATEs written by hand,
    alternated; every run is followed by an untimed reset (audit rows accumulate)."""
    from loans.models import Borrower, Loan
    from servicing import services

    loans = _make_loans(n_loans, "SET")
    _add_items(loans, payments=3, per_channel=1, schedules_per_channel=0)
    ids = [loan.pk for loan in loans]
    borrower = Borrower.objects.create(
        first_name="Bench",
        last_name="Many",
        email="many@example.com",
        phone="+15550100",
        timezone="UTC",
    )
    own = _make_loans(n_loans, "OWN")
    Loan.objects.filter(pk__in=[loan.pk for loan in own]).update(borrower=borrower)
    _add_items(own, payments=3, per_channel=1, schedules_per_channel=0)
    own_ids = [loan.pk for loan in own]
    counts = {}

    def timed(label, func, reset_ids):
        def run() -> float:
            started = time.perf_counter()
            statements, result = count_statements(func)
            seconds = time.perf_counter() - started
            counts[label] = (statements, result)
            _reset_many(reset_ids)
            return seconds

        return run

    cases = {
        "cancel_servicing_bulk, 1,000 loans": timed(
            "bulk",
            lambda: services.cancel_servicing_bulk(loan_ids=ids, reason="SOLD_OFF", actor=user),
            ids,
        ),
        "hand-written UPDATEs, 1,000 loans": timed(
            "raw", lambda: _raw_cancel_many(ids, user.pk), ids
        ),
        "cancel_borrower_servicing, 1,000 loans": timed(
            "borrower",
            lambda: services.cancel_borrower_servicing(borrower.pk, actor=user, reason="SOLD_OFF"),
            own_ids,
        ),
        "hand-written UPDATEs, the borrower's 1,000 loans": timed(
            "raw borrower", lambda: _raw_cancel_many(own_ids, user.pk), own_ids
        ),
    }
    samples = alternate(cases, repeat=REPEAT)
    print(f"set-based cancel ({REPEAT} rounds, alternated; {load_line()}):")
    bulk, raw, by_borrower, raw_borrower = samples.values()
    assert counts["bulk"][1].loans_updated == n_loans
    assert counts["raw"][1] == 6 * n_loans, counts["raw"][1]
    assert counts["borrower"][1].loans_updated == n_loans
    for sample, key in ((bulk, "bulk"), (raw, "raw"), (by_borrower, "borrower")):
        sample.label += f" [{counts[key][0]} statements]"
    raw_borrower.label += f" [{counts['raw borrower'][0]} statements]"
    print_figure(raw)
    print_figure(bulk, raw, goal="<= 1 s", ratio_goal="<= 3x")
    print_figure(raw_borrower)
    print_figure(by_borrower, raw_borrower, goal="<= 1 s", ratio_goal="<= 3x")


def main() -> None:
    from bench.db import throwaway_database

    load_before = load_line()
    with throwaway_database():
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "x")
        one = bench_one_loan(user)
        bench_set_based(user)
        bulk = bench_admin_bulk(user)
    print(f"{load_before}; after: {load_line()}")
    print(
        f"cancel_servicing, one loan with {one['items']:,} pending items "
        f"(median of {REPEAT}, alternated):\n"
        f"  statements: {one['queries_10k']} (for {one['small_cancelled']} items: "
        f"{one['queries_small']}; BEGIN/COMMIT included)\n"
        f"  cancel_servicing: median {one['service_ms']:.1f} ms "
        f"(min {one['spread'][0]:.1f}, max {one['spread'][1]:.1f}), "
        f"cancelled {one['cancelled']:,}\n"
        f"  raw SQL, 7 UPDATEs: median {one['raw_ms']:.1f} ms "
        f"(min {one['raw_spread'][0]:.1f}, max {one['raw_spread'][1]:.1f})\n"
        f"  ratio: {one['ratio']:.2f}x (goal <= 3x)"
    )
    print(
        f"admin action 'Cancel servicing' on {bulk['loans']:,} loans "
        f"({bulk['items']:,} pending items):\n"
        f"  confirmation page: {bulk['first_pass_s']:.2f} s, "
        f"{bulk['first_pass_queries']} statements\n"
        f"  confirm: {bulk['seconds']:.2f} s (goal <= 10 s), {bulk['queries']:,} statements, "
        f"{bulk['queries_per_loan']:.2f} per loan"
    )


if __name__ == "__main__":
    main()
