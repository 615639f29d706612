"""Statements sent as they are, several in one round trip where the database allows it
(``loans.statements``: ``Bound``, ``run_together``, ``bound_insert``, ``bound_update``,
``CompiledRead``; the core's commands use them too, so they live there), and the close of
business's ``asynchronous_commit``.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connections

from loans.statements import (
    Bound,
    CompiledRead,
    bound_insert,
    bound_update,
    combines,
    run_together,
    select_query,
    update_query,
)

__all__ = [
    "Bound",
    "CompiledRead",
    "asynchronous_commit",
    "bound_insert",
    "bound_update",
    "combines",
    "run_together",
    "select_query",
    "update_query",
]

_combines = combines  # the name the tests know


@contextmanager
def asynchronous_commit(alias: str = "default"):
    """The close of business's loan-days commit without waiting for the WAL flush
    (PostgreSQL's ``synchronous_commit = off`` for the session, reset on the way out), when
    ``COB_ASYNCHRONOUS_COMMIT`` is on (the default).

    Why it is safe here: each loan-day stays atomic (a transaction is applied whole or not at
    all); what a *server* crash may lose is the last few hundred milliseconds of committed
    loan-days, which are then simply not closed, and the next run closes them (catch-up, each
    step idempotent: the late fee's unique external id, the snapshot's unique day). A worker
    crash loses nothing committed. Anything that depends on a loan-day and commits
    synchronously (the dispatcher, an API command, the job's end) flushes the WAL up to it
    first, so nothing can outlive a lost loan-day. Why it is needed: on this class of disk a
    flushed COMMIT costs ~5 ms, more than a loan-day's work, so one worker could never close
    200 loan-days a second (the bench's anchor, a bare locked UPDATE per loan, makes ~185/s).
    Not used inside an outer transaction (tests' wrapping one, a caller's ``atomic``)."""
    connection = connections[alias]
    if (
        connection.vendor != "postgresql"
        or not getattr(settings, "COB_ASYNCHRONOUS_COMMIT", True)
        or connection.in_atomic_block
    ):
        yield False
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    try:
        yield True
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        except DatabaseError:  # the connection broke inside: never reuse it as it is
            connection.close()
