"""The clock's API: /jobs, /dispatch, /loans/{id}/autopay, /autopays/{id}/cancel,
/loans/{id}/snapshots, /loans/{id}/dispatch-attempts, and the loan's new fields."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from servicing.models import Autopay, DispatchAttempt, Job, LoanDailySnapshot, ScheduledPayment
from tests.factories import make_active_loan, set_business_date

AS_OF = date(2026, 2, 18)


@pytest.fixture
def loan(db, operator):
    set_business_date(date(2026, 2, 16))
    loan = make_active_loan(actor=operator)
    set_business_date(AS_OF)
    return loan


def paths(loan, suffix):
    return [
        f"/api/v1/loans/{loan.pk}{suffix}",
        f"/api/v1/loans/external-id/{loan.external_id}{suffix}",
    ]


def test_post_jobs_runs_the_close_of_business_and_answers_202(api, loan):
    response = api.post("/api/v1/jobs", {"kind": "CLOSE_OF_BUSINESS"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    # eager in tests: the job ran inside the request
    assert {k: body[k] for k in ("kind", "businessDate", "total", "done", "failed")} == {
        "kind": "CLOSE_OF_BUSINESS",
        "businessDate": "2026-02-18",
        "total": 1,
        "done": 1,
        "failed": 0,
    }
    assert body["status"] == "DONE"
    detail = api.get(f"/api/v1/jobs/{body['id']}").json()
    assert detail["failures"] == [] and detail["status"] == "DONE"
    listing = api.get("/api/v1/jobs").json()
    assert [j["id"] for j in listing["results"]] == [body["id"]]
    loan_body = api.get(f"/api/v1/loans/{loan.pk}").json()
    assert loan_body["lastClosedBusinessDate"] == "2026-02-18"
    assert loan_body["delinquencyBucket"] == "DPD_1_30"  # installment of 1 Feb unpaid
    assert loan_body["summary"]["delinquencyBucket"] == "DPD_1_30"
    assert loan_body["summary"]["daysPastDue"] == 17


def test_post_jobs_with_the_broker_down_is_503_and_the_job_failed(api, loan, settings):
    from servicing.celery import app

    app.conf.task_always_eager = False
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app.conf.broker_transport_options = {"max_retries": 0, "socket_connect_timeout": 0.5}
    app._pool = app.amqp._producer_pool = None
    try:
        response = api.post("/api/v1/jobs", {"kind": "CLOSE_OF_BUSINESS"}, format="json")
    finally:
        app.conf.task_always_eager = True
        app.conf.broker_url = settings.CELERY_BROKER_URL
        app.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        app.pool.force_close_all()
        app._pool = app.amqp._producer_pool = None  # fresh pools for the restored broker
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["code"] == "broker_unavailable"
    assert set(body) == {"code", "detail", "errors"}
    job = Job.objects.get()
    assert job.status == "FAILED" and job.error.startswith("Broker unavailable")
    assert api.get("/api/v1/jobs").status_code == 200  # the web stays up


def test_post_jobs_needs_the_permission(viewer_api, loan):
    response = viewer_api.post("/api/v1/jobs", {"kind": "CLOSE_OF_BUSINESS"}, format="json")
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_post_jobs_refuses_a_future_date(api, loan):
    response = api.post(
        "/api/v1/jobs", {"kind": "CLOSE_OF_BUSINESS", "businessDate": "2026-02-19"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "future_date"


def test_post_dispatch(api, loan, viewer_api):
    ScheduledPayment.objects.create(loan=loan, amount=Decimal("25.00"), scheduled_date=AS_OF)
    assert viewer_api.post("/api/v1/dispatch").status_code == 403
    response = api.post("/api/v1/dispatch")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["claimed"], body["executed"], body["deferred"], body["failed"]) == (1, 1, 0, 0)
    for url in paths(loan, "/dispatch-attempts"):
        attempts = api.get(url).json()["results"]
        assert [(a["kind"], a["number"], a["status"], a["amount"]) for a in attempts] == [
            ("PAYMENT", 1, "SUCCEEDED", "25.00")
        ]
        assert attempts[0]["idempotencyKey"] == f"attempt-{attempts[0]['id']}"


def test_autopay_set_up_list_and_cancel(api, loan, viewer_api):
    url = paths(loan, "/autopay")[1]
    assert viewer_api.post(url, {}, format="json").status_code == 403
    response = api.post(
        url, {"amountType": "FIXED", "amount": "40.00", "processDaysBefore": 2}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amountType"], body["amount"], body["startDate"], body["status"]) == (
        "FIXED",
        "40.00",
        "2026-02-18",
        "ACTIVE",
    )
    payment = ScheduledPayment.objects.get(autopay_id=body["id"])
    assert (payment.due_date, payment.scheduled_date, payment.amount) == (
        date(2026, 3, 1),
        date(2026, 2, 27),
        Decimal("40.00"),
    )
    again = api.post(url, {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "autopay_exists")
    assert [a["id"] for a in api.get(paths(loan, "/autopay")[0]).json()] == [body["id"]]
    cancelled = api.post(
        f"/api/v1/autopays/{body['id']}/cancel", {"reason": "asked"}, format="json"
    )
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["cancelledScheduledPayments"] == 1
    assert Autopay.objects.get().status == "CANCELLED"
    twice = api.post(f"/api/v1/autopays/{body['id']}/cancel", {}, format="json")
    assert (twice.status_code, twice.json()["code"]) == (409, "not_active")


def test_autopay_bad_input(api, loan):
    url = paths(loan, "/autopay")[0]
    for body in (
        {"amountType": "FIXED"},
        {"amountType": "SCHEDULED_PAYMENT", "amount": "10.00"},
        {"processDaysBefore": 31},
        {"method": "WIRE"},
    ):
        response = api.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
    assert not Autopay.objects.exists()


def test_snapshots_with_from_and_to(api, loan, operator):
    from servicing.close_of_business import close_business_day

    close_business_day(business_date=AS_OF, actor=operator)
    assert LoanDailySnapshot.objects.filter(loan=loan).count() == 3  # 16, 17, 18 Feb
    for url in paths(loan, "/snapshots"):
        rows = api.get(url, {"from": "2026-02-17", "to": "2026-02-17"}).json()["results"]
        assert [(r["businessDate"], r["daysPastDue"], r["delinquencyBucket"]) for r in rows] == [
            ("2026-02-17", 16, "DPD_1_30")
        ]
        assert rows[0]["amountPastDue"] == "88.85"
        assert len(api.get(url).json()["results"]) == 3
    bad = api.get(paths(loan, "/snapshots")[0], {"from": "2026-02-30"})
    assert bad.status_code == 400 and set(bad.json()) == {"code", "detail", "errors"}
    # The error names the query parameter sent (it said "date_from": acceptance audit).
    assert [error["field"] for error in bad.json()["errors"]] == ["from"]
    bad = api.get(paths(loan, "/snapshots")[1], {"to": "tomorrow"})
    assert [error["field"] for error in bad.json()["errors"]] == ["to"]
    for url in paths(loan, "/snapshots"):
        bad = api.get(url, {"from": "2026-02-18", "to": "2026-02-17"})
        assert bad.status_code == 400, bad.content
        assert [(e["field"], e["code"]) for e in bad.json()["errors"]] == [
            ("to", "end_before_start")
        ]


def test_idempotent_post_jobs_runs_once(api, loan):
    first = api.post(
        "/api/v1/jobs", {"kind": "CLOSE_OF_BUSINESS"}, format="json", HTTP_IDEMPOTENCY_KEY="cob-1"
    )
    second = api.post(
        "/api/v1/jobs", {"kind": "CLOSE_OF_BUSINESS"}, format="json", HTTP_IDEMPOTENCY_KEY="cob-1"
    )
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Job.objects.count() == 1


def test_idempotent_autopay_set_up_runs_once(api, loan):
    url = paths(loan, "/autopay")[0]
    first = api.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="ap-1")
    second = api.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="ap-1")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert Autopay.objects.count() == 1


def test_post_dispatch_with_an_idempotency_key_replays_and_dispatches_nothing_again(api, loan):
    from loans.models import IdempotencyRecord

    ScheduledPayment.objects.create(loan=loan, amount=Decimal("25.00"), scheduled_date=AS_OF)
    first = api.post("/api/v1/dispatch", {}, format="json", HTTP_IDEMPOTENCY_KEY="dispatch-1")
    assert first.status_code == 200, first.content
    assert "Idempotent-Replayed" not in first
    assert (first.json()["claimed"], first.json()["executed"]) == (1, 1)
    record = IdempotencyRecord.objects.get(key="dispatch-1")
    assert (record.state, record.status_code, record.locked_until) == ("DONE", 200, None)
    later = ScheduledPayment.objects.create(loan=loan, amount=Decimal("5.00"), scheduled_date=AS_OF)
    replay = api.post("/api/v1/dispatch", {}, format="json", HTTP_IDEMPOTENCY_KEY="dispatch-1")
    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    later.refresh_from_db()
    assert later.status == "PENDING"
    assert DispatchAttempt.objects.count() == 1
    other = api.post(
        "/api/v1/dispatch", {"limit": 5}, format="json", HTTP_IDEMPOTENCY_KEY="dispatch-1"
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"


@pytest.mark.django_db(transaction=True)
def test_post_dispatch_with_a_key_calls_the_provider_outside_any_transaction(
    api, loan, monkeypatch
):
    """The claim and each item commit before the provider is called (DESIGN §11), with an
    Idempotency-Key too: the view is not wrapped in one transaction."""
    from django.db import connection

    from servicing import providers

    seen = []
    real = providers.SimulatedAchProvider.send

    def send(self, message, *, idempotency_key):
        seen.append(connection.in_atomic_block)
        return real(self, message, idempotency_key=idempotency_key)

    monkeypatch.setattr(providers.SimulatedAchProvider, "send", send)
    ScheduledPayment.objects.create(loan=loan, amount=Decimal("25.00"), scheduled_date=AS_OF)
    response = api.post("/api/v1/dispatch", {}, format="json", HTTP_IDEMPOTENCY_KEY="dispatch-2")
    assert response.status_code == 200, response.content
    assert response.json()["executed"] == 1
    assert seen == [False]


def test_post_jobs_with_an_idempotency_key_replays_the_job(api, loan):
    body = {"kind": "CLOSE_OF_BUSINESS"}
    first = api.post("/api/v1/jobs", body, format="json", HTTP_IDEMPOTENCY_KEY="jobs-1")
    assert first.status_code == 202, first.content
    replay = api.post("/api/v1/jobs", body, format="json", HTTP_IDEMPOTENCY_KEY="jobs-1")
    assert (replay.status_code, replay["Idempotent-Replayed"]) == (202, "true")
    assert replay.content == first.content
    assert Job.objects.count() == 1
