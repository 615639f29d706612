"""``python -m bench [name ...]``: run the benchmarks and print their figures.

Each ``bench/bench_<name>.py`` defines ``main()``. The runner configures Django, creates a
throwaway test database (``test_<name>`` on PostgreSQL, in memory on SQLite) with
migrations applied, runs each benchmark, and destroys the database. Set ``DATABASE_URL`` to
benchmark PostgreSQL.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicing.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    # Settings were read with DEBUG on (no SECRET_KEY needed, no SSL redirect); measure without
    # DEBUG's query logging.
    settings.DEBUG = False
    from django.test.utils import setup_test_environment

    import bench

    names = argv or sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules(bench.__path__)
        if m.name.startswith("bench_")
    )
    setup_test_environment()
    db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"database: {connection.vendor} ({db_name})")
    try:
        for name in names:
            module = importlib.import_module(f"bench.bench_{name}")
            print(f"\n== {name} ==")
            started = time.perf_counter()
            module.main()
            print(f"({name}: {time.perf_counter() - started:.1f} s)")
    finally:
        connection.creation.destroy_test_db(db_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
