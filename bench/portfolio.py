"""The portfolio loader: N loans (with borrowers, setups, a current 6-period schedule each)
written by PostgreSQL itself with ``INSERT ... SELECT FROM generate_series`` (one statement per
table, no row crosses the wire), so 1,000,000 loans load in about a minute or two.

Every column gets a value: the ones the benchmark cares about from the SQL below, every other
one from the model field's default (or NULL), read from the model's ``_meta``, so a column
added by a later migration does not break the loader.

The data varies like a portfolio: statuses (about 5 % CLOSED, 2 % PENDING), sub-statuses,
servicing statuses, both engines, some charged off, 200 first names x 500 last names (a last
name matches N/500 borrowers), unique e-mails, installments partly paid.

Run alone: ``DATABASE_URL=postgres://root@127.0.0.1:5432/perf python -m bench.portfolio 100000``
loads into ``perf_bench`` and keeps it (dropped by the next benchmark run).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date
from decimal import Decimal


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy "
    "Matthew Betty Anthony Sandra Mark Margaret Donald Ashley Steven Kimberly Andrew Emily "
    "Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah "
    "Timothy Stephanie Ronald Dorothy Jason Rebecca Edward Sharon Jeffrey Laura Ryan Cynthia "
    "Jacob Amy Gary Kathleen Nicholas Angela Eric Shirley Jonathan Brenda Stephen Emma Larry "
    "Anna Justin Pamela Scott Nicole Brandon Samantha Benjamin Katherine Samuel Christine "
    "Gregory Debra Alexander Rachel Patrick Carolyn Frank Janet Raymond Maria Jack Olivia "
    "Dennis Heather Jerry Helen Tyler Catherine Aaron Diane Jose Julie Adam Victoria Nathan "
    "Joyce Henry Lauren Zachary Kelly Douglas Christina Peter Ruth Kyle Joan Noah Virginia "
    "Ethan Judith Jeremy Evelyn Walter Hannah Christian Andrea Keith Megan Roger Cheryl Terry "
    "Jacqueline Austin Madison Sean Teresa Gerald Abigail Carl Sophia Harold Martha Dylan "
    "Sara Arthur Gloria Lawrence Janice Jordan Kathryn Jesse Ann Bryan Isabella Billy Judy "
    "Bruce Charlotte Gabriel Julia Joe Grace Logan Amber Alan Alice Juan Jean Albert Denise "
    "Willie Frances Elijah Danielle Wayne Marilyn Randy Natalie Vincent Beverly Mason Diana "
    "Roy Brittany Ralph Theresa Bobby Kayla Russell Alexis Bradley Doris Philip Lori Eugene"
)[:200]

_SYLLABLES_A = _words(
    "Ab Bar Cal Dar El Fen Gar Hal Ing Jor Kel Lan Mor Nor Os Pen Quin Ros Sel Tor"
)
_SYLLABLES_B = _words("ton field berg ley man wood stone brook ridge well ford")
_SYLLABLES_C = "", "s", "er", "ing", "ham"
LAST_NAMES = [a + b + c for a in _SYLLABLES_A for b in _SYLLABLES_B for c in _SYLLABLES_C][:500]

VERBOSE = bool(os.environ.get("BENCH_VERBOSE"))  # per-statement times
CONTRACT_DATE = date(2029, 6, 1)
FIRST_PAYMENT = date(2029, 7, 1)


def _array(values) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _insert_sql(model, exprs: dict[str, str], from_sql: str, params: list):
    """``INSERT INTO <table> (every column) SELECT <expr or default> FROM <from_sql>``."""
    from django.db import connection

    columns, selects, defaults = [], [], []
    for f in model._meta.concrete_fields:
        columns.append(connection.ops.quote_name(f.column))
        if f.column in exprs:
            selects.append(exprs[f.column])
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            selects.append("now()")
        elif f.has_default() or f.has_db_default():
            value = f.get_default() if f.has_default() else None
            selects.append("%s")
            defaults.append(f.get_db_prep_save(value, connection))
        elif f.null:
            selects.append("NULL")
        elif f.empty_strings_allowed:  # a blank CharField without a default: ""
            selects.append("''")
        else:
            raise RuntimeError(f"bench loader: no value for {model.__name__}.{f.name}")
    table = connection.ops.quote_name(model._meta.db_table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(selects)} FROM {from_sql}"
    # Expressions carry no placeholders (they use mod(), not %): the defaults' come first.
    return sql, [*defaults, *params]


def drop_indexes_and_keys(cursor, tables: list[str]) -> list[str]:
    """Drop the tables' indexes, primary/unique keys and the foreign keys on or to them;
    return the statements that re-create them (keys, indexes, foreign keys). Building an index once over loaded rows is
    several times faster than updating it row by row (measured: 600,000 periods insert in
    3.8 s without indexes, 21.6 s with them). Foreign keys come back ``NOT VALID``: the loaded
    rows are consistent by construction, and every later write is checked as usual."""
    cursor.execute(
        """
        SELECT c.conname, c.conrelid::regclass::text, c.contype,
               pg_get_constraintdef(c.oid), c.conindid
        FROM pg_constraint c
        WHERE c.contype IN ('p', 'u', 'f')
          AND (c.conrelid::regclass::text = ANY(%s) OR c.confrelid::regclass::text = ANY(%s))
        """,
        [tables, tables],
    )
    constraints = cursor.fetchall()
    foreign = [c for c in constraints if c[2] == "f"]
    keys = [c for c in constraints if c[2] != "f" and c[1] in tables]
    cursor.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid::regclass::text = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        [tables],
    )
    indexes = cursor.fetchall()
    for name, table, _, _, _ in foreign + keys:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    return (
        [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {d}' for name, table, _, d, _ in keys],
        [definition for _, definition in indexes],
        [f'ALTER TABLE {t} ADD CONSTRAINT "{name}" {d} NOT VALID' for name, t, _, d, _ in foreign],
    )


def six_periods():
    from loans import schedules

    terms = schedules.Terms(
        loan_amount=Decimal("1200.00"),
        annual_rate_percent=Decimal("12"),
        term=Decimal(6),
        frequency="MONTHLY",
        contract_date=CONTRACT_DATE,
        first_payment_date=FIRST_PAYMENT,
    )
    return terms, schedules.generate_schedule(terms)


def _connect():
    import psycopg
    from django.db import connection

    d = connection.settings_dict
    return psycopg.connect(
        host=d["HOST"] or None,
        port=d["PORT"] or None,
        user=d["USER"] or None,
        password=d["PASSWORD"] or None,
        dbname=d["NAME"],
        autocommit=True,
    )


def _run_parallel(statements: list[tuple[str, str, list]], workers: int) -> None:
    """Run ``(label, sql, params)`` statements on ``workers`` connections, each in its own
    transaction (autocommit). Locks order what must be ordered (ALTER TABLE waits for the
    table's CREATE INDEX and the reverse)."""
    import queue
    import threading

    todo: queue.Queue = queue.Queue()
    for item in statements:
        todo.put(item)
    errors: list[BaseException] = []

    def work():
        with _connect() as conn:
            conn.execute("SET maintenance_work_mem = '256MB'")
            while not errors:
                try:
                    label, sql, params = todo.get_nowait()
                except queue.Empty:
                    return
                started = time.perf_counter()
                try:
                    conn.execute(sql, params or None)
                except BaseException as exc:  # reported by the main thread
                    errors.append(exc)
                    return
                if VERBOSE:
                    print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def portfolio_inserts(n: int, chunks: int) -> list[tuple[str, str, list]]:
    from loans.models import Borrower, Loan, LoanSetup, Schedule, SchedulePeriod

    terms, generated = six_periods()
    series = "generate_series(%s::int, %s::int) AS g(i)"
    first, last = _array(FIRST_NAMES), _array(LAST_NAMES)
    first_name = f"({first})[1 + mod(i, {len(FIRST_NAMES)})]"
    last_name = f"({last})[1 + mod(i / 7, {len(LAST_NAMES)})]"
    status = (
        "CASE WHEN mod(i, 20) = 0 THEN 'CLOSED' WHEN mod(i, 50) = 1 THEN 'PENDING' "
        "ELSE 'ACTIVE' END"
    )
    active = "(mod(i, 20) <> 0 AND mod(i, 50) <> 1)"
    values = ", ".join(
        f"({p.number}, DATE '{p.from_date}', DATE '{p.due_date}', {p.principal}, "
        f"{p.interest}, {p.balance_after})"
        for p in generated.periods
    )
    # CLOSED loans paid everything; the others the first i % 7 installments (0-6).
    paid = "(mod(i, 20) = 0 OR p.n <= mod(i, 7))"
    tables = {
        Borrower: (
            {
                "id": "i",
                "first_name": first_name,
                "last_name": last_name,
                "email": f"lower({first_name} || '.' || {last_name}) || i || '@example.com'",
                "phone": "'+1555' || lpad((mod(i, 10000000))::text, 7, '0')",
                "timezone": "'America/New_York'",
            },
            series,
        ),
        Loan: (
            {
                "id": "i",
                "external_id": "'EXT-' || lpad(i::text, 8, '0')",
                "display_id": "'LN-' || lpad(i::text, 8, '0')",
                "borrower_id": "i",
                "status": status,
                "sub_status": f"CASE WHEN {active} AND mod(i, 97) = 0 "
                "THEN 'CONTRACT_TERMINATION' END",
                "charged_off": f"({active} AND mod(i, 101) = 0)",
                "schedule_engine": "CASE WHEN mod(i, 3) = 0 THEN 'STANDARD' ELSE 'DYNAMIC' END",
                "servicing_status": "CASE WHEN mod(i, 25) = 0 THEN 'NOT_SERVICING' "
                "ELSE 'ACTIVE' END",
                "stop_servicing_reason": "CASE WHEN mod(i, 25) = 0 THEN 'PAID_OFF' END",
                "setup_id": "i",  # the setups get the loans' ids
            },
            series,
        ),
        LoanSetup: (
            {
                "id": "i",
                "loan_id": "i",
                "loan_amount": str(terms.loan_amount),
                "loan_rate": str(terms.annual_rate_percent),
                "loan_term": str(terms.term),
                "payment_frequency": "'MONTHLY'",
                "contract_date": f"DATE '{CONTRACT_DATE}'",
                "first_payment_date": f"DATE '{FIRST_PAYMENT}'",
                "payment": str(generated.payment),
                "active": "true",
                "activated_at": "now()",
            },
            series,
        ),
        Schedule: (
            {
                "id": "i",
                "loan_id": "i",
                "version": "1",
                "setup_id": "i",
                "reason": "'ACTIVATION'",
                "is_current": "true",
            },
            series + " WHERE NOT (mod(i, 50) = 1)",  # PENDING loans have no schedule yet
        ),
        SchedulePeriod: (
            {
                "id": f"(i - 1) * {len(generated.periods)} + p.n",
                "schedule_id": "i",
                "period": "p.n",
                "from_date": "p.from_date",
                "due_date": "p.due_date",
                "principal_due": "p.principal",
                "interest_due": "p.interest",
                "principal_paid": f"CASE WHEN {paid} THEN p.principal ELSE 0 END",
                "interest_paid": f"CASE WHEN {paid} THEN p.interest ELSE 0 END",
                "balance_after": "p.balance_after",
                "complete": paid,
                "obligations_met_on_date": f"CASE WHEN {paid} THEN p.due_date END",
            },
            series
            + f" CROSS JOIN (VALUES {values}) AS p(n, from_date, due_date, principal, interest,"
            " balance_after) WHERE NOT (mod(i, 50) = 1)",
        ),
    }
    statements = []
    for model, (exprs, from_sql) in tables.items():
        # the periods (6 rows a loan) in more pieces than the rest
        pieces = chunks * 2 if model is SchedulePeriod else chunks
        size = -(-n // pieces)
        for start in range(1, n + 1, size):
            stop = min(n, start + size - 1)
            sql, params = _insert_sql(model, exprs, from_sql, [start, stop])
            statements.append((f"{model._meta.db_table} {start}-{stop}", sql, params))
    statements.sort(key=lambda s: not s[0].startswith("loans_scheduleperiod"))  # biggest first
    return statements


def load_portfolio(n: int, *, quiet: bool = False, workers: int = 3) -> float:
    """Write ``n`` loans into the (empty, migrated) database; returns the seconds taken.

    Indexes and keys are dropped first and built once at the end; rows are inserted by
    ``workers`` connections in parallel (``INSERT ... SELECT generate_series`` in chunks)."""
    from django.db import connection

    from loans.models import Borrower, Loan, LoanSetup, Schedule, SchedulePeriod

    started = time.perf_counter()
    tables = [m._meta.db_table for m in (Borrower, Loan, LoanSetup, Schedule, SchedulePeriod)]
    with connection.cursor() as cursor:
        keys, indexes, foreign = drop_indexes_and_keys(cursor, tables)
    _run_parallel(portfolio_inserts(n, chunks=workers), workers)
    inserted = time.perf_counter() - started
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
    # Keys before indexes (ALTER TABLE locks the table), foreign keys once the keys exist.
    _run_parallel([(s[:60], s, []) for s in keys + indexes], workers)
    _run_parallel([(s[:60], s, []) for s in foreign], 1)
    loaded = time.perf_counter() - started
    if VERBOSE:
        print(f"  inserts {inserted:.1f} s, keys and indexes {loaded - inserted:.1f} s")
    with connection.cursor() as cursor:  # what autovacuum would do: statistics, visibility map
        cursor.execute(f"VACUUM ANALYZE {tables[1]}")  # index-only scans of the loans
        cursor.execute(f"ANALYZE {', '.join(t for t in tables if t != tables[1])}")
    total = time.perf_counter() - started
    if not quiet:
        print(
            f"loaded {n:,} loans (6-period schedules) in {loaded:.1f} s, "
            f"{total:.1f} s with VACUUM ANALYZE ({n / total:,.0f} loans/s; goal 1M <= 180 s)",
            flush=True,
        )
    return total


def main(argv: list[str]) -> None:
    from bench.db import bench_database_name, setup_django

    setup_django()
    from django.db import connection
    from django.test.utils import setup_test_environment

    n = int(argv[0]) if argv else 100_000
    setup_test_environment()
    connection.settings_dict.setdefault("TEST", {})["NAME"] = bench_database_name()
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    load_portfolio(n)
    print(f"kept database {connection.settings_dict['NAME']}")


if __name__ == "__main__":
    main(sys.argv[1:])
