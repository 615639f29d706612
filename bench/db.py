"""Helpers for benchmarks that need Django and a throwaway database."""

from __future__ import annotations

import os
from contextlib import contextmanager


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicing.settings")
    os.environ.setdefault("DEBUG", "1")
    import django
    from django.conf import settings

    django.setup()
    # Settings were read with DEBUG on (no SECRET_KEY needed, no SSL redirect); measure without
    # DEBUG's query logging.
    settings.DEBUG = False


@contextmanager
def throwaway_database():
    """A migrated test database (``test_<name>`` on PostgreSQL, in memory on SQLite), destroyed
    afterwards: the configured database is never touched."""
    setup_django()
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    print(f"database: {connection.vendor} ({name})", flush=True)
    try:
        yield connection
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
        teardown_test_environment()
