"""Statements sent as they are, several in one round trip where the database allows it: the hot
paths (a dispatched repayment, a loan-day of the close of business) run a handful of small
statements, and the ORM's compiling and the round trips cost more than the database's work.

* ``Bound``: one statement with its parameters and what turns its result into a value;
* ``run_together(*bound)``: runs them in order; on PostgreSQL (psycopg's client-side binding,
  Django's default) in ONE round trip -- the simple query protocol runs a string of statements
  one after the other in the current transaction, an error stopping the rest as one by one
  would; elsewhere one execute each;
* ``bound_insert(model, **values)`` / ``bound_update(model, where, **values)``: the INSERT /
  UPDATE ``create`` / ``filter(**where).update`` would send, its text built once per model and
  columns, each value adapted as its field would (dates, datetimes, decimals, JSON; text,
  numbers and ids as they are). No signals (none is connected to the models it is used for)
  and no ``auto_now_add``: the caller passes such a column's value;
* ``CompiledRead``: a query compiled by the ORM once per database and bound with new values.

In ``loans`` because the core's commands use them (the repayment command's hot path); the
servicing app imports them from ``servicing.statements``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import connections, transaction


@dataclass
class Bound:
    """One statement with its parameters (``CompiledRead.bind``, ``bound_insert``): whether it
    returns rows, and what turns them (or, for a write, its row count) into the result."""

    sql: str
    params: list
    returns_rows: bool
    finish: object = None


def combines(connection) -> bool:
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
        if len(statements) > 1 and combines(connection):
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
            adapters.append(_decimal_adapter(field, ops))
        elif kind == "JSONField":
            adapters.append(_json_adapter(field, connection))
        else:
            adapters.append(None)
    return adapters


def _decimal_adapter(field, ops):
    def adapt(value):
        return ops.adapt_decimalfield_value(value, field.max_digits, field.decimal_places)

    return adapt


def _json_adapter(field, connection):
    def adapt(value):
        return field.get_db_prep_save(value, connection)

    return adapt


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


# A model query's instance shape per compiled statement (``CompiledRead._instances``): the
# compilers live as long as their ``CompiledRead``, so their ids stay theirs.
_SHAPES: dict = {}


class CompiledRead:
    """A query compiled by the ORM once per database alias and then executed with new
    parameter values: the hot statements of the close of business and the dispatcher run once
    per loan-day or item, and compiling them cost more CPU than the database took to answer.
    ``build(**sentinels)`` returns the queryset (or, for an UPDATE, ``update_query(...)``); each
    keyword's sentinel value is found among the compiled parameters and replaced per call (as
    the backend adapted it). ``rows`` gives a ``values_list`` query's rows with the ORM's
    converters (SQLite's decimals and dates), ``instances`` a model query's instances (with its
    ``select_related`` objects) as the queryset would build them, ``execute`` an UPDATE's row
    count."""

    def __init__(self, build, **sentinels):
        self._build, self._sentinels, self._compiled = build, sentinels, {}

    def _compile(self, alias: str):
        built = self._build(**self._sentinels)
        query = built.query if hasattr(built, "query") else built
        compiler = query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        slots = {}
        for name, sentinel in self._sentinels.items():
            adapted = {sentinel, str(sentinel)}
            if isinstance(sentinel, date):
                adapted.add(connections[alias].ops.adapt_datefield_value(sentinel))
            found = [i for i, value in enumerate(params) if value in adapted]
            assert found, f"{name}: sentinel {sentinel!r} not among the compiled parameters"
            slots[name] = (found, isinstance(params[found[0]], str))
        select = getattr(compiler, "select", None) or []
        converters = list(compiler.get_converters([c for c, _, _ in select]).items())
        locks = bool(getattr(query, "select_for_update", False))
        self._compiled[alias] = (sql, list(params), slots, converters, compiler, locks)
        return self._compiled[alias]

    def bind(self, alias: str = "default", *, into: str = "rows", **values) -> Bound:
        """The statement with ``values`` in its parameters, to run with ``run_together``.
        ``into``: ``rows`` (converted rows), ``instances`` (model instances) or ``count``."""
        compiled = self._compiled.get(alias) or self._compile(alias)
        sql, params, slots, converters, compiler, locks = compiled
        if locks and connections[alias].get_autocommit():  # what the ORM would refuse too
            raise transaction.TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = list(params)
        for name, value in values.items():
            positions, as_text = slots[name]
            for i in positions:
                params[i] = value.isoformat() if as_text and isinstance(value, date) else value
        finish = {"rows": self._rows, "instances": self._instances}.get(into)
        return Bound(
            sql,
            params,
            select_query(compiler),
            finish and (lambda rows: finish(compiled, rows, alias)),
        )

    @staticmethod
    def _rows(compiled, fetched, alias: str) -> list[list]:
        connection = connections[alias]
        converters = compiled[3]
        rows = [list(row) for row in fetched]
        if not converters:
            return rows
        for row in rows:
            for position, (functions, expression) in converters:
                value = row[position]
                for function in functions:
                    value = function(value, expression, connection)
                row[position] = value
        return rows

    @classmethod
    def _instances(cls, compiled, fetched, alias: str) -> list:
        from django.db.models.query import get_related_populators

        rows = cls._rows(compiled, fetched, alias)
        compiler = compiled[4]
        shape = _SHAPES.get((id(compiler), alias))
        if shape is None:  # what the queryset's iterator works out per query, once
            select, klass_info = compiler.select, compiler.klass_info
            fields = klass_info["select_fields"]
            start, end = fields[0], fields[-1] + 1
            shape = _SHAPES[(id(compiler), alias)] = (
                klass_info["model"],
                start,
                end,
                [column[0].target.attname for column in select[start:end]],
                get_related_populators(klass_info, select, alias),
                list(compiler.annotation_col_map.items()),
            )
        model, start, end, names, populators, annotations = shape
        objects = []
        for row in rows:
            obj = model.from_db(alias, names, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in annotations:
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects

    def rows(self, alias: str = "default", **values) -> list[list]:
        return run_together(self.bind(alias, **values), alias=alias)[0]

    def execute(self, alias: str = "default", **values) -> int:
        return run_together(self.bind(alias, into="count", **values), alias=alias)[0]

    def instances(self, alias: str = "default", **values) -> list:
        return run_together(self.bind(alias, into="instances", **values), alias=alias)[0]


def select_query(compiler) -> bool:
    from django.db.models.sql.compiler import SQLUpdateCompiler

    return not isinstance(compiler, SQLUpdateCompiler)


def update_query(queryset, **values):
    """The UPDATE ``queryset.update(**values)`` would run, as a query to compile."""
    from django.db.models import sql

    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(values)
    query.annotations = {}
    return query
