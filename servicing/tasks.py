"""Celery tasks: thin. Each parses ids and calls one service (STYLE "The servicing clock's
shape"); a message delivered twice does nothing twice because the services re-check under the
loan lock and the job counts each loan once."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from servicing import close_of_business as cob
from servicing import dispatcher
from servicing.system import system_user


@shared_task(name="servicing.tasks.run_close_of_business")
def run_close_of_business(job_id: int) -> int:
    """Start a job and hand its loans to the workers in batches."""
    ids = cob.start_job(int(job_id))
    for batch in cob.batches(ids):
        close_batch.delay(int(job_id), batch)
    return len(ids)


@shared_task(name="servicing.tasks.close_batch", acks_late=True)
def close_batch(job_id: int, loan_ids: list[int]) -> tuple[int, int]:
    return cob.close_batch(job_id=int(job_id), loan_ids=[int(i) for i in loan_ids])


@shared_task(name="servicing.tasks.nightly_close_of_business")
def nightly_close_of_business() -> int:
    """Close the business date, then (when the job ends) move it to the next day."""
    job = cob.create_job(actor=system_user(), advance_business_date=True)
    run_close_of_business.delay(job.pk)
    return job.pk


@shared_task(name="servicing.tasks.dispatch_due")
def dispatch_due() -> dict:
    """Beat, every minute: reconcile what a dead worker left IN_FLIGHT, hand the queue to
    ``DISPATCH_PARALLEL - 1`` more workers (``dispatch_more``) and dispatch here too; each
    claims its own batches (SKIP LOCKED and a lease), so N workers drain it N times faster."""
    for _ in range(max(settings.DISPATCH_PARALLEL, 1) - 1):
        dispatch_more.delay()
    return vars(dispatcher.dispatch_due())


@shared_task(name="servicing.tasks.dispatch_more", acks_late=True)
def dispatch_more() -> dict:
    """One more dispatcher on the same queue (no reconciliation: ``dispatch_due`` does it)."""
    return vars(dispatcher.dispatch_due(reconcile=False))
