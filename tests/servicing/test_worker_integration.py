"""Acceptance: the Procfile's worker line, started for real against Redis (database 5), runs a
close of business queued through ``POST /jobs`` and the dispatcher task.

Needs PostgreSQL (the worker process must see the test database) and Redis at 127.0.0.1:6379;
skipped cleanly otherwise. ``.ci/run`` runs these (``-m worker``) on PostgreSQL.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from servicing.models import Job, LoanDailySnapshot, ScheduledPayment
from tests.factories import make_active_loan, set_business_date

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CLOCK_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def procfile_line(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} line in the Procfile")


@pytest.fixture
def celery_on_redis(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share: PostgreSQL")
    if not redis_available():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    from servicing.celery import app

    previous = (app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_always_eager)
    app.conf.broker_url = REDIS_URL
    app.conf.broker_transport_options = {"max_retries": 1}
    app.conf.task_always_eager = False
    app._pool = app.amqp._producer_pool = None
    app.control.purge()  # only the celery queue of database 5
    db = connection.settings_dict
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_POOL": "solo",
        "DATABASE_URL": f"postgres://{db['USER'] or 'root'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "DEBUG": "1",
        "IGNORE_ENV_FILE": "1",
    }
    worker = subprocess.Popen(
        ["bash", "-c", "exec " + procfile_line("worker")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield app
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            output = worker.communicate(timeout=30)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            output = worker.communicate()[0].decode(errors="replace")
        app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_always_eager = (
            previous
        )
        app._pool = app.amqp._producer_pool = None
        print(output[-3000:])
        assert shlex.split(procfile_line("worker"))[0] == "celery"


def wait_for(predicate, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def test_real_worker_closes_the_day_and_dispatches(celery_on_redis, api, operator):
    set_business_date(date(2026, 2, 16))
    loan = make_active_loan(actor=operator)
    set_business_date(date(2026, 2, 18))
    response = api.post("/api/v1/jobs", {"kind": "CLOSE_OF_BUSINESS"}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "QUEUED"
    job_id = response.json()["id"]
    assert wait_for(lambda: Job.objects.get(pk=job_id).status in ("DONE", "FAILED"))
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.total, job.done, job.failed) == ("DONE", 1, 1, 0)
    assert LoanDailySnapshot.objects.filter(loan=loan).count() == 3
    assert api.get(f"/api/v1/jobs/{job_id}").json()["done"] == 1

    payment = ScheduledPayment.objects.create(
        loan=loan, amount=Decimal("25.00"), scheduled_date=date(2026, 2, 18)
    )
    from servicing.tasks import dispatch_due

    dispatch_due.delay()
    assert wait_for(lambda: ScheduledPayment.objects.get(pk=payment.pk).status == "PROCESSED")
    payment.refresh_from_db()
    assert payment.transaction.amount == Decimal("25.00")
    assert payment.transaction.created_by.username == "system"
