"""Helpers for benchmarks that need Django and a throwaway PostgreSQL database.

Benchmarks run on PostgreSQL only: an in-memory SQLite database measures nothing a production
deployment would see (no network round trip, no planner, no MVCC), so ``setup_django`` refuses
to go on when ``DATABASE_URL`` is not PostgreSQL. ``make bench`` starts/checks the services and
sets ``DATABASE_URL`` (default ``postgres://root@127.0.0.1:5432/bench``).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

USAGE = (
    "Benchmarks run on PostgreSQL only. Use `make bench` (it starts the services), or\n"
    "  DATABASE_URL=postgres://root@127.0.0.1:5432/<name> .venv/bin/python -m bench [module]\n"
    "Each benchmark works in a throwaway database <name>_bench, created and dropped."
)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicing.settings")
    os.environ.setdefault("DEBUG", "1")
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit(f"bench: refusing to run without PostgreSQL.\n{USAGE}")
    import django
    from django.conf import settings

    django.setup()
    # Settings were read with DEBUG on (no SECRET_KEY needed, no SSL redirect); measure without
    # DEBUG's query logging.
    settings.DEBUG = False
    from django.db import connection

    if connection.vendor != "postgresql":  # e.g. a DATABASE_URL the settings rewrote
        sys.exit(f"bench: refusing to run on {connection.vendor}.\n{USAGE}")


def bench_database_name() -> str:
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    return name if name.endswith("_bench") else f"{name}_bench"


def server_line(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (version,) = cursor.fetchone()
    return f"PostgreSQL {version}, database {connection.settings_dict['NAME']}"


@contextmanager
def throwaway_database():
    """A migrated database ``<name>_bench`` next to the configured one, dropped afterwards:
    the configured database is never touched."""
    setup_django()
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    connection.settings_dict.setdefault("TEST", {})["NAME"] = bench_database_name()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    print(f"database: {server_line(connection)}", flush=True)
    try:
        yield connection
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


@contextmanager
def reused_database():
    """Development only (``BENCH_REUSE=1``): the ``<name>_bench`` database a previous
    ``python -m bench.portfolio N`` kept, migrated to the current code."""
    setup_django()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    connection.close()
    connection.settings_dict["NAME"] = bench_database_name()
    call_command("migrate", verbosity=0)
    print(f"database (reused): {server_line(connection)}", flush=True)
    yield connection
