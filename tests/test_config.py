"""Settings come from the environment; with DEBUG off the process refuses to start without a
SECRET_KEY and turns on the secure defaults."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRINT = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
    "s.SECURE_SSL_REDIRECT, s.ALLOWED_HOSTS, s.DATABASES['default']['ENGINE'])"
)


def run(env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL"}}
    base.update({"DJANGO_SETTINGS_MODULE": "servicing.settings", "IGNORE_ENV_FILE": "1"}, **env)
    return subprocess.run(
        [sys.executable, "-c", PRINT],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_without_secret_key_when_debug_is_off():
    result = run({"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_defaults_are_secure():
    result = run(
        {
            "DEBUG": "0",
            "SECRET_KEY": "x" * 60,
            "ALLOWED_HOSTS": "servicing.example.com",
            "DATABASE_URL": "postgres://app@db.example.com:5432/servicing",
        }
    )
    assert result.returncode == 0, result.stderr
    # No SECURE_PROXY_SSL_HEADER: Django cannot tell https, so no redirect (it would loop).
    assert result.stdout.split(" ", 5)[:5] == ["False", "True", "True", "31536000", "False"]
    assert "servicing.example.com" in result.stdout
    assert "django.db.backends.postgresql" in result.stdout
    proxied = run(
        {
            "DEBUG": "0",
            "SECRET_KEY": "x" * 60,
            "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
        }
    )
    assert proxied.returncode == 0, proxied.stderr
    assert proxied.stdout.split(" ", 5)[:5] == ["False", "True", "True", "31536000", "True"]


def test_debug_runs_without_secret_key():
    result = run({"DEBUG": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True False False 0 False")


SERVE_ADMIN_CSS = (
    "import django; django.setup(); from django.templatetags.static import static; "
    "from django.test import Client; url = static('admin/css/base.css'); "
    "r = Client().get(url, HTTP_HOST='testserver'); "
    "print(url, r.status_code, b''.join(r.streaming_content)[:2] != b'')"
)


def run_production_python(code: str, **env_vars: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with DEBUG off and no .env; ``env_vars`` on top.
    DEBUG, ALLOWED_HOSTS and DATABASE_URL of this process are not inherited."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"DEBUG", "ALLOWED_HOSTS", "DATABASE_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="servicing.settings",
        IGNORE_ENV_FILE="1",
        DEBUG="0",
        SECRET_KEY="x" * 60,
        **env_vars,
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_production_without_collectstatic_serves_the_apps_static_files(tmp_path):
    """Found by the acceptance audit: DEBUG off, migrate, gunicorn, no collectstatic -> every
    admin page was a 500 (whitenoise's manifest storage: missing manifest entry)."""
    result = run_production_python(
        SERVE_ADMIN_CSS,
        ALLOWED_HOSTS="testserver",
        STATIC_ROOT=str(tmp_path / "staticfiles"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["/static/admin/css/base.css", "200", "True"]


def test_production_answers_on_loopback_without_allowed_hosts():
    """Found by the acceptance audit: DEBUG off and no ALLOWED_HOSTS -> 400 for every request,
    even http://127.0.0.1. Loopback names are allowed by default; other names are not."""
    code = (
        "import django; django.setup(); from django.test import Client; c = Client(); "
        "print(*[c.get('/api/v1/loans', HTTP_HOST=h).status_code "
        "for h in ('127.0.0.1:8000', 'localhost', 'servicing.example.com')])"
    )
    result = run_production_python(code, DATABASE_URL="sqlite:///:memory:")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["401", "401", "400"]


HTTP_STATUSES = (
    "import django; django.setup(); from django.test import Client; c = Client(); "
    "print(*[c.get('/api/v1/loans', HTTP_HOST='127.0.0.1:8000', **h).status_code "
    "for h in ({}, {'HTTP_X_FORWARDED_PROTO': 'https'})])"
)


def test_production_answers_plain_http_unless_https_can_be_told():
    """Found by the acceptance audit: DEBUG off -> http://127.0.0.1 was redirected to https
    (301) that nothing served. The redirect is on by default only with SECURE_PROXY_SSL_HEADER
    (then http is redirected and the proxy's https is answered), or with SECURE_SSL_REDIRECT=1."""
    plain = run_production_python(HTTP_STATUSES, DATABASE_URL="sqlite:///:memory:")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.split() == ["401", "401"]
    proxied = run_production_python(
        HTTP_STATUSES,
        DATABASE_URL="sqlite:///:memory:",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
    )
    assert proxied.returncode == 0, proxied.stderr
    assert proxied.stdout.split() == ["301", "401"]
    forced = run_production_python(
        HTTP_STATUSES, DATABASE_URL="sqlite:///:memory:", SECURE_SSL_REDIRECT="1"
    )
    assert forced.stdout.split() == ["301", "301"]
    off = run_production_python(
        HTTP_STATUSES,
        DATABASE_URL="sqlite:///:memory:",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
        SECURE_SSL_REDIRECT="0",
    )
    assert off.stdout.split() == ["401", "401"]


def test_sqlite_writers_wait_for_each_other_instead_of_database_is_locked(
    tmp_path, django_db_blocker
):
    """`make run` serves web, worker and beat on one SQLite file: a transaction that read
    first (``set_business_date`` selects, then updates) and then wrote while another process
    was writing failed at once with "database is locked" (a 500 on PUT /business-date and a
    dispatcher run lost, seen in the audit's `make run`): SQLite does not wait when a reader
    upgrades. Every transaction begins IMMEDIATE, so the busy timeout applies."""
    import threading
    import time

    from django.conf import settings
    from django.db.utils import ConnectionHandler

    if settings.DATABASES["default"]["ENGINE"] != "servicing.sqlite3":
        pytest.skip("the SQLite settings (DATABASE_URL unset)")
    options = settings.DATABASES["default"].get("OPTIONS", {})
    db = {
        "ENGINE": "servicing.sqlite3",
        "NAME": str(tmp_path / "locks.sqlite3"),
        "OPTIONS": dict(options),
    }
    with django_db_blocker.unblock():  # its own connections on its own file
        handler = ConnectionHandler({"default": db, "b": db})
        first = handler["default"]
        with first.cursor() as cursor:
            cursor.execute("CREATE TABLE t (n integer)")
        holding = threading.Event()

        def writer():
            own = ConnectionHandler({"default": db})["default"]
            own.ensure_connection()
            own._start_transaction_under_autocommit()
            with own.cursor() as cursor:
                cursor.execute("INSERT INTO t VALUES (1)")
                holding.set()
                time.sleep(0.5)
            own.commit()
            own.close()

        thread = threading.Thread(target=writer)
        thread.start()
        holding.wait(5)
        second = handler["b"]
        second.ensure_connection()
        second._start_transaction_under_autocommit()
        with second.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM t")
            cursor.execute("INSERT INTO t VALUES (2)")
        second.commit()
        thread.join()
        with second.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM t")
            assert cursor.fetchone()[0] == 2
        handler.close_all()
