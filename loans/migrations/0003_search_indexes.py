"""Indexes for the admin's loan search at portfolio scale (issue 14), PostgreSQL only.

* ``pg_trgm`` and a GIN trigram index on the borrower's name and e-mail expression that
  ``loans.search`` searches with ``LIKE '%TERM%'``;
* btree ``text_pattern_ops`` indexes on ``UPPER(external_id)`` and ``UPPER(display_id)`` for
  the case-insensitive exact and prefix id search (``LIKE 'TERM%'``);
* a partial index of the charged-off loans (the changelist's filter; few rows).

On SQLite this migration does nothing: the same queries run there without the indexes.
The index expressions must stay identical to ``loans.search``'s SQL.
"""

from django.db import migrations

INDEXES = [
    (
        "loan_borrower_search_trgm",
        "CREATE INDEX IF NOT EXISTS loan_borrower_search_trgm ON loans_borrower USING gin "
        "((UPPER(first_name || ' ' || last_name || ' ' || email)) gin_trgm_ops)",
    ),
    (
        "loan_external_id_upper",
        "CREATE INDEX IF NOT EXISTS loan_external_id_upper ON loans_loan "
        "((UPPER(external_id)) text_pattern_ops)",
    ),
    (
        "loan_display_id_upper",
        "CREATE INDEX IF NOT EXISTS loan_display_id_upper ON loans_loan "
        "((UPPER(display_id)) text_pattern_ops)",
    ),
    (
        "loan_charged_off_partial",
        "CREATE INDEX IF NOT EXISTS loan_charged_off_partial ON loans_loan (id) "
        "WHERE charged_off",
    ),
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for _, sql in INDEXES:
        schema_editor.execute(sql)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("loans", "0002_groups")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
