"""Queueing a close of business on the broker (``POST /jobs``, the admin's button).

The job row is committed first, then the task is sent. When the broker cannot be reached the
job is marked ``FAILED`` with the error and ``BrokerUnavailableError`` (503
``broker_unavailable``) is raised: the web stays up, nothing else changed.
"""

from __future__ import annotations

from datetime import date

from django.db import transaction

from loans.exceptions import DomainError
from servicing import close_of_business as cob
from servicing.models import Job


class BrokerUnavailableError(DomainError):
    status = 503
    default_code = "broker_unavailable"


def send_job(job: Job) -> None:
    from kombu.exceptions import OperationalError

    from servicing.tasks import run_close_of_business

    try:
        run_close_of_business.apply_async((job.pk,), retry=False)
    except (OperationalError, OSError, ConnectionError, RuntimeError) as exc:
        cob.fail_job(job.pk, f"Broker unavailable: {exc}")
        raise BrokerUnavailableError(
            "The task broker cannot be reached; the close of business was not queued. "
            "Try again when it is back.",
        )


def enqueue_close_of_business(*, business_date: date | None = None, actor) -> Job:
    with transaction.atomic():
        job = cob.create_job(business_date=business_date, actor=actor)
    send_job(job)
    job.refresh_from_db()
    return job
