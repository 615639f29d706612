"""Admin of the servicing clock: Jobs page, run button, progress JSON, retry, queue, outbox,
inlines on the loan page."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from servicing import close_of_business as cob
from servicing.models import Job, JobFailure, ScheduledPayment
from tests.factories import make_active_loan, set_business_date


@pytest.fixture
def client_(operator):
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def loan(db, operator):
    set_business_date(date(2026, 2, 18))
    return make_active_loan(actor=operator)


def test_jobs_page_runs_the_close_of_business_and_shows_progress(client_, loan):
    ScheduledPayment.objects.create(
        loan=loan, amount=Decimal("10.00"), scheduled_date=date(2026, 2, 18)
    )
    page = client_.get("/admin/servicing/job/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Run close of business for 2026-02-18" in html
    assert "Dispatcher queue: 1 due, 0 deferred, 0 in flight, 0 failed today." in html
    response = client_.post("/admin/servicing/job/run/")
    job = Job.objects.get()
    assert response.status_code == 302 and response.url.endswith(
        f"/admin/servicing/job/{job.pk}/change/"
    )
    detail = client_.get(response.url)
    assert detail.status_code == 200
    assert 'id="job-progress"' in detail.content.decode()
    progress = client_.get(f"/admin/servicing/job/{job.pk}/progress.json").json()
    assert progress == {
        "id": job.pk,
        "status": "DONE",
        "total": 1,
        "done": 1,
        "failed": 0,
        "percent": 100,
    }
    queue = client_.get("/admin/servicing/job/queue/")
    assert '<td id="queue-due">1</td>' in queue.content.decode()


def test_viewer_cannot_run_it(viewer, loan):
    client = Client()
    client.force_login(viewer)
    assert "Run close of business" not in client.get("/admin/servicing/job/").content.decode()
    assert client.post("/admin/servicing/job/run/").status_code == 403
    assert not Job.objects.exists()


def test_retry_action_closes_the_failed_loan(client_, loan, operator, monkeypatch):
    real = cob.close_loan_day
    monkeypatch.setattr(
        cob, "close_loan_day", lambda **kw: (_ for _ in ()).throw(ValueError("boom"))
    )
    job = cob.close_business_day(actor=operator)
    assert (job.status, job.failed) == ("FAILED", 1)
    page = client_.get(f"/admin/servicing/job/{job.pk}/change/").content.decode()
    assert "ValueError: boom" in page
    monkeypatch.setattr(cob, "close_loan_day", real)
    response = client_.post(
        "/admin/servicing/job/",
        {"action": "retry_failed_loans", "_selected_action": [job.pk]},
        follow=True,
    )
    assert "1 loan(s) closed again, 0 failed again." in response.content.decode()
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("DONE", 1, 0)
    assert JobFailure.objects.get().retried_at is not None


def test_loan_page_and_outbox_render(client_, loan):
    from servicing.dispatcher import dispatch_due

    ScheduledPayment.objects.create(
        loan=loan, amount=Decimal("10.00"), scheduled_date=date(2026, 2, 18)
    )
    dispatch_due()
    page = client_.get(f"/admin/loans/loan/{loan.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Autopay" in html
    outbox = client_.get("/admin/servicing/outboxmessage/")
    assert outbox.status_code == 200 and "10.00" in outbox.content.decode()


def test_retry_button_of_one_failed_loan(client_, loan, operator, viewer, monkeypatch):
    from loans.models import Loan, LoanEvent

    other = make_active_loan(actor=operator)
    real = cob.close_loan_day

    def flaky(*, loan, day, **kwargs):
        if loan == other.pk:
            raise ValueError("boom")
        return real(loan=loan, day=day, **kwargs)

    monkeypatch.setattr(cob, "close_loan_day", flaky)
    job = cob.close_business_day(actor=operator)
    assert (job.status, job.total, job.done, job.failed) == ("FAILED", 2, 1, 1)
    failure = JobFailure.objects.get(job=job)
    assert Loan.objects.get(pk=other.pk).last_closed_business_date is None
    url = f"/admin/servicing/job/{job.pk}/failures/{failure.pk}/retry/"
    page = client_.get(f"/admin/servicing/job/{job.pk}/change/").content.decode()
    assert f'action="{url}"' in page and "ValueError: boom" in page

    # without run_close_of_business: no button, 403, nothing changes
    viewer_client = Client()
    viewer_client.force_login(viewer)
    shown = viewer_client.get(f"/admin/servicing/job/{job.pk}/change/").content.decode()
    assert f'action="{url}"' not in shown
    assert viewer_client.post(url).status_code == 403
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("FAILED", 1, 1)

    # failing again: the failure keeps the new error, the counts stand
    monkeypatch.setattr(cob, "close_loan_day", lambda **kw: (_ for _ in ()).throw(KeyError("x")))
    again = client_.post(url, follow=True)
    assert again.redirect_chain == [(f"/admin/servicing/job/{job.pk}/change/", 302)]
    assert f"Loan {other.pk} failed again on 2026-02-18: KeyError: &#x27;x&#x27;" in (
        again.content.decode()
    )
    failure.refresh_from_db()
    assert (failure.error, failure.retried_at) == ("KeyError: 'x'", None)
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("FAILED", 1, 1)

    monkeypatch.setattr(cob, "close_loan_day", real)
    response = client_.post(url, follow=True)
    assert f"Loan {other} closed again up to 2026-02-18." in response.content.decode()
    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.failed) == ("DONE", 2, 2, 0)
    assert Loan.objects.get(pk=other.pk).last_closed_business_date == date(2026, 2, 18)
    failure.refresh_from_db()
    assert failure.retried_at is not None
    event = LoanEvent.objects.get(loan=other, command="retry_close_of_business")
    assert (event.actor, event.business_date) == (operator, date(2026, 2, 18))
    page = client_.get(f"/admin/servicing/job/{job.pk}/change/").content.decode()
    assert f'action="{url}"' not in page  # retried: no button any more

    twice = client_.post(url, follow=True)
    assert f"Loan {other.pk} was closed again already" in twice.content.decode()
    job.refresh_from_db()
    assert (job.done, job.failed) == (2, 0)
    assert client_.post(f"/admin/servicing/job/{job.pk}/failures/999999/retry/").status_code == 404
