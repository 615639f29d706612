"""Statements sent as they are, several in one round trip where the database allows it: the hot
paths of the close of business and the dispatcher run a handful of small statements per loan-day
or item, and the ORM's compiling and the round trips cost more than the database's work.

* ``Bound``: one statement with its parameters and what turns its result into a value;
* ``run_together(*bound)``: runs them in order; on PostgreSQL (psycopg's client-side binding,
  Django's default) in ONE round trip -- the simple query protocol runs a string of statements
  one after the other in the current transaction, an error stopping the rest as one by one
  would; elsewhere one execute each;
* ``bound_insert(model, **values)`` / ``bound_update(model, where, **values)``: the INSERT /
  UPDATE ``create`` / ``filter(**where).update`` would send, its text built once per model and
  columns, each value adapted as its field would (dates, datetimes, decimals; text, numbers
  and ids as they are). No signals (none is connected to the models it is used for).

``CompiledRead`` (``servicing.close_of_business``) binds ORM-compiled queries the same way.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connections


@dataclass
class Bound:
    """One statement with its parameters (``CompiledRead.bind``, ``bound_insert``): whether it
    returns rows, and what turns them (or, for a write, its row count) into the result."""

    sql: str
    params: list
    returns_rows: bool
    finish: object = None


def _combines(connection) -> bool:
    """Whether several statements can go in one round trip: PostgreSQL with psycopg's
    client-side binding (Django's default), whose simple query protocol runs a string of
    statements one after the other, in order, in the current transaction."""
    return connection.vendor == "postgresql" and not connection.settings_dict.get(
        "OPTIONS", {}
    ).get("server_side_binding")


def run_together(*statements: Bound, alias: str = "default") -> list:
    """Run ``statements`` in order and return each one's result. On PostgreSQL they go to the
    server in ONE round trip (joined by ``;``, results read with ``nextset``): the same
    statements, executed one after the other by the server in the caller's transaction, an
    error in one stopping the rest as it would one by one. Elsewhere one execute each."""
    connection = connections[alias]
    fetched = []
    with connection.cursor() as cursor:
        if len(statements) > 1 and _combines(connection):
            cursor.execute(
                ";\n".join(s.sql for s in statements),
                [p for s in statements for p in s.params],
            )
            for i, statement in enumerate(statements):
                if i:
                    cursor.nextset()
                fetched.append(cursor.fetchall() if statement.returns_rows else cursor.rowcount)
        else:
            for statement in statements:
                cursor.execute(statement.sql, statement.params)
                fetched.append(cursor.fetchall() if statement.returns_rows else cursor.rowcount)
    return [s.finish(f) if s.finish else f for s, f in zip(statements, fetched, strict=True)]


def _adapters(connection, fields: list) -> list:
    ops, adapters = connection.ops, []
    for field in fields:
        kind = field.get_internal_type()
        if kind == "DateField":
            adapters.append(ops.adapt_datefield_value)
        elif kind == "DateTimeField":
            adapters.append(ops.adapt_datetimefield_value)
        elif kind == "DecimalField":
            adapters.append(ops.adapt_decimalfield_value)
        else:
            adapters.append(None)
    return adapters


def _adapt(adapters: list, values) -> list:
    return [
        a(v) if a is not None and v is not None else v
        for a, v in zip(adapters, values, strict=True)
    ]


_BUILT: dict = {}


def bound_insert(model, alias: str = "default", *, returning: bool = False, **values) -> Bound:
    """``model.objects.create(**values)`` as a statement for ``run_together``; every column
    not in ``values`` gets its field's default. ``returning``: the result is the new row's
    primary key (``RETURNING``), else the row count."""
    connection = connections[alias]
    key = ("insert", model, tuple(values), returning, alias)
    built = _BUILT.get(key)
    if built is None:
        quote = connection.ops.quote_name
        fields = {f.attname: f for f in model._meta.concrete_fields if not f.primary_key}
        names = list(values) + [n for n in fields if n not in values]
        sql = (
            f"INSERT INTO {quote(model._meta.db_table)} "
            f"({', '.join(quote(fields[n].column) for n in names)}) "
            f"VALUES ({', '.join(['%s'] * len(names))})"
        )
        if returning:
            sql += f" RETURNING {quote(model._meta.pk.column)}"
        defaults = [fields[n] for n in names[len(values) :]]
        built = _BUILT[key] = (sql, _adapters(connection, [fields[n] for n in names]), defaults)
    sql, adapters, defaults = built
    raw = [*values.values(), *(f.get_default() for f in defaults)]
    if returning:
        return Bound(sql, _adapt(adapters, raw), True, _first_value)
    return Bound(sql, _adapt(adapters, raw), False)


def _first_value(rows):
    return rows[0][0]


def bound_update(model, where: dict, alias: str = "default", **values) -> Bound:
    """``model.objects.filter(**where).update(**values)`` (equality conditions on columns) as a
    statement for ``run_together``; its result is the row count."""
    connection = connections[alias]
    key = ("update", model, tuple(values), tuple(where), alias)
    built = _BUILT.get(key)
    if built is None:
        quote = connection.ops.quote_name
        fields = {f.attname: f for f in model._meta.concrete_fields}
        fields.update({"pk": model._meta.pk})
        sql = (
            f"UPDATE {quote(model._meta.db_table)} SET "
            + ", ".join(f"{quote(fields[n].column)} = %s" for n in values)
            + " WHERE "
            + " AND ".join(f"{quote(fields[n].column)} = %s" for n in where)
        )
        built = _BUILT[key] = (sql, _adapters(connection, [fields[n] for n in [*values, *where]]))
    sql, adapters = built
    return Bound(sql, _adapt(adapters, [*values.values(), *where.values()]), False)


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
