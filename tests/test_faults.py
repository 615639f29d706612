"""Issue 16, kept in CI: a lost database connection in the middle of an activation (the
connection's backend is terminated after the disbursement and the schedule were written).
Nothing is half-done, the request is a JSON 500, and the Idempotency-Key can be retried: the
retry activates the loan once and a third call replays it."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection

from loans import versions
from loans.models import IdempotencyRecord, LoanStatus
from tests.conftest import token_client
from tests.factories import make_loan, set_business_date
from tests.test_concurrency import AS_OF, loan_state


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lost_connection_during_activation_leaves_nothing_and_the_key_can_be_retried(
    operator,
):
    set_business_date(AS_OF)
    loan = make_loan(actor=operator, external_id="FAULT-ACTIVATE-1")
    before = loan_state(loan.pk)
    client = token_client(operator)
    client.raise_request_exception = False
    url = f"/api/v1/loans/{loan.pk}/activate"
    real = versions.rebuild_schedule
    killed = []

    def rebuild_then_lose_the_connection(*args, **kwargs):
        result = real(*args, **kwargs)
        killed.append(True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return result

    with mock.patch.object(versions, "rebuild_schedule", rebuild_then_lose_the_connection):
        lost = client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="activate-once")

    assert killed == [True]
    assert lost.status_code == 500
    assert lost.json()["code"] == "server_error"
    connection.close()  # the test's own connection is the one that was terminated
    assert loan_state(loan.pk) == before  # no disbursement, schedule, event or key
    assert not IdempotencyRecord.objects.filter(key="activate-once").exists()

    retried = client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="activate-once")
    replayed = client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="activate-once")

    assert retried.status_code == 200, retried.content
    assert retried.json()["activated"] is True
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.content == retried.content
    after = loan_state(loan.pk)
    assert after["loan"]["status"] == LoanStatus.ACTIVE
    assert after["all_events"] == before["all_events"] + 1  # activated once
    assert len(after["schedules"]) == 1
