"""Idempotency-Key on API commands (DESIGN §6, issue 6)."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from drf_spectacular.generators import EndpointEnumerator

from loans.idempotency import IdempotentMixin, request_fingerprint
from loans.models import IdempotencyRecord, IdempotencyRecordState, LoanEvent, Transaction
from tests.conftest import token_client

pytestmark = pytest.mark.django_db

REPAYMENT = {"transactionDate": "2026-02-18", "transactionAmount": "10.00"}


@pytest.fixture
def loan(baseline_b):
    return baseline_b


def repay(client, loan, body=REPAYMENT, key="key-1", command="repayment"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(
        f"/api/v1/loans/{loan.pk}/transactions?command={command}", body, format="json", **headers
    )


def counts():
    return (Transaction.objects.count(), LoanEvent.objects.count())


def test_replay_returns_the_stored_response_and_does_nothing_again(api, loan):
    first = repay(api, loan)
    assert first.status_code == 200, first.content
    assert "Idempotent-Replayed" not in first.headers
    before = counts()

    second = repay(api, loan)

    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.content == first.content  # byte for byte: key order and spacing too
    assert counts() == before
    record = IdempotencyRecord.objects.get(key="key-1")
    assert record.state == IdempotencyRecordState.DONE
    assert record.status_code == 200
    assert record.method == "POST"
    assert record.path == f"/api/v1/loans/{loan.pk}/transactions?command=repayment"
    assert bytes(record.response_content) == first.content
    assert record.content_type == "application/json"
    assert record.locked_until is None


def test_json_key_order_and_spacing_do_not_change_the_request(api, loan):
    first = repay(api, loan, body={"transactionAmount": "10.00", "transactionDate": "2026-02-18"})
    before = counts()
    raw = '{ "transactionDate" : "2026-02-18",  "transactionAmount": "10.00" }'
    second = api.post(
        f"/api/v1/loans/{loan.pk}/transactions?command=repayment",
        raw,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="key-1",
    )
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert counts() == before


def test_same_key_with_a_different_body_is_409(api, loan):
    repay(api, loan)
    before = counts()

    response = repay(api, loan, body={**REPAYMENT, "transactionAmount": "11.00"})

    assert response.status_code == 409
    assert response.json() == {
        "code": "idempotency_key_reused",
        "detail": "The Idempotency-Key 'key-1' was already used for a different request; "
        "use a new key.",
        "errors": [],
    }
    assert counts() == before


def test_same_key_on_another_path_is_409(api, loan):
    repay(api, loan)
    before = counts()

    response = repay(
        api, loan, command="charge", body={"transactionDate": "2026-02-18", "amount": "10.00"}
    )

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert counts() == before


def test_retry_while_the_first_request_runs_is_409(api, operator, loan):
    path = f"/api/v1/loans/{loan.pk}/transactions?command=repayment"
    IdempotencyRecord.objects.create(
        key="key-1",
        user=operator,
        method="POST",
        path=path,
        request_hash=request_fingerprint("POST", path, json.dumps(REPAYMENT).encode()),
        state=IdempotencyRecordState.IN_PROGRESS,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    before = counts()

    response = repay(api, loan)

    assert response.status_code == 409
    assert response.json() == {
        "code": "request_in_progress",
        "detail": "A request with the Idempotency-Key 'key-1' is still being processed; "
        "retry later.",
        "errors": [],
    }
    assert counts() == before


def test_an_expired_key_is_treated_as_new(api, operator, loan):
    IdempotencyRecord.objects.create(
        key="key-1",
        user=operator,
        method="POST",
        path="/api/v1/elsewhere",
        request_hash="0" * 64,
        state=IdempotencyRecordState.DONE,
        status_code=201,
        response_content=b'{"old":true}',
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    before = counts()

    response = repay(api, loan)

    assert response.status_code == 200
    assert "Idempotent-Replayed" not in response.headers
    assert counts() == (before[0] + 1, before[1] + 1)
    record = IdempotencyRecord.objects.get(key="key-1")
    assert record.state == IdempotencyRecordState.DONE
    assert record.status_code == 200
    assert record.path == f"/api/v1/loans/{loan.pk}/transactions?command=repayment"
    assert record.expires_at > timezone.now() + timedelta(hours=23)


def test_ttl_comes_from_settings(api, loan, settings):
    settings.IDEMPOTENCY_KEY_TTL_SECONDS = 60
    repay(api, loan)
    record = IdempotencyRecord.objects.get(key="key-1")
    assert timedelta(seconds=55) < record.expires_at - record.created_at <= timedelta(seconds=60)


def test_keys_are_per_user(api, loan, django_user_model, operator):
    other = django_user_model.objects.create_user(username="operator2", password="x-pass-123-x")
    other.user_permissions.set(operator.user_permissions.all())
    before = counts()

    first = repay(api, loan)
    second = repay(token_client(other), loan)

    assert first.status_code == second.status_code == 200
    assert "Idempotent-Replayed" not in second.headers
    assert first.json()["id"] != second.json()["id"]
    assert counts() == (before[0] + 2, before[1] + 2)
    assert IdempotencyRecord.objects.filter(key="key-1").count() == 2


def test_a_400_is_stored_and_replayed(api, loan):
    future = {"transactionDate": "2026-03-01", "transactionAmount": "10.00"}
    first = repay(api, loan, body=future)
    assert first.status_code == 400
    assert first.json()["code"] == "future_date"
    before = counts()

    second = repay(api, loan, body=future)

    assert second.status_code == 400
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert counts() == before


def test_a_server_error_releases_the_key(api, loan):
    client = api
    client.raise_request_exception = False
    with mock.patch("loans.services.post_transaction", side_effect=RuntimeError("boom")):
        failed = repay(client, loan)
    assert failed.status_code == 500
    assert not IdempotencyRecord.objects.filter(key="key-1").exists()

    retried = repay(client, loan)

    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers


def test_a_failure_after_the_command_undoes_it_and_the_retry_runs_it_once(api, loan):
    """The command and its stored answer commit together: a request that dies after the
    command ran (here: rendering its answer) leaves neither, so the retry runs it once."""
    api.raise_request_exception = False
    before = counts()
    with mock.patch("loans.api.TransactionSerializer", side_effect=RuntimeError("boom")):
        failed = repay(api, loan)
    assert failed.status_code == 500
    assert failed.json()["code"] == "server_error"
    assert counts() == before
    assert not IdempotencyRecord.objects.exists()

    retried = repay(api, loan)
    replayed = repay(api, loan)

    assert retried.status_code == replayed.status_code == 200
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert counts() == (before[0] + 1, before[1] + 1)


def test_an_error_body_with_nul_is_stored_and_replayed(api, loan):
    """Issue 16: a NUL in the request (echoed or not in the error) used to make the stored body
    unstorable on PostgreSQL: a 500, and the key stuck IN_PROGRESS."""
    url = f"/api/v1/loans/{loan.pk}/scheduled-payments"
    body = '{"amount": "1.00", "scheduledDate": "2026-03-01", "method": "a\\u0000b"}'
    send = lambda: api.post(  # noqa: E731
        url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="nul-1"
    )
    first = send()
    assert first.status_code == 400, first.content
    second = send()
    assert second.status_code == 400
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    assert IdempotencyRecord.objects.get(key="nul-1").state == IdempotencyRecordState.DONE


def _claim(operator, loan, *, age: timedelta, locked_until=None):
    path = f"/api/v1/loans/{loan.pk}/transactions?command=repayment"
    record = IdempotencyRecord.objects.create(
        key="key-1",
        user=operator,
        method="POST",
        path=path,
        request_hash=request_fingerprint("POST", path, json.dumps(REPAYMENT).encode()),
        state=IdempotencyRecordState.IN_PROGRESS,
        expires_at=timezone.now() + timedelta(hours=23),
        locked_until=locked_until,
    )
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - age)


@pytest.mark.parametrize(
    "locked_until",
    [None, timezone.now() - timedelta(seconds=1)],
    ids=["claimed before the request timeout", "lease expired"],
)
def test_a_claim_whose_holder_died_can_be_retried_and_runs_once(
    api, operator, loan, settings, locked_until
):
    """A worker killed mid-command (gunicorn's timeout) left its claim IN_PROGRESS: once the
    request timeout has passed nobody can hold it, and the retry runs the command once."""
    settings.REQUEST_TIMEOUT_SECONDS = 60
    _claim(operator, loan, age=timedelta(seconds=61), locked_until=locked_until)
    before = counts()

    retried = repay(api, loan)
    replayed = repay(api, loan)

    assert retried.status_code == 200, retried.content
    assert "Idempotent-Replayed" not in retried.headers
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert counts() == (before[0] + 1, before[1] + 1)
    assert IdempotencyRecord.objects.get(key="key-1").state == IdempotencyRecordState.DONE


def test_a_live_claim_is_still_409(api, operator, loan, settings):
    settings.REQUEST_TIMEOUT_SECONDS = 60
    _claim(
        operator,
        loan,
        age=timedelta(seconds=61),
        locked_until=timezone.now() + timedelta(seconds=30),
    )
    before = counts()
    response = repay(api, loan)
    assert response.status_code == 409
    assert response.json()["code"] == "request_in_progress"
    assert counts() == before


def test_a_view_outside_the_transaction_leases_its_claim(api, loan, settings):
    """``idempotency_in_transaction = False``: the claim is committed with a lease, stored
    when done and released on a 500."""
    from loans.api import TransactionsView

    settings.REQUEST_TIMEOUT_SECONDS = 60
    api.raise_request_exception = False
    with mock.patch.object(TransactionsView, "idempotency_in_transaction", False):
        with mock.patch("loans.services.post_transaction", side_effect=RuntimeError("boom")):
            assert repay(api, loan).status_code == 500
        assert not IdempotencyRecord.objects.exists()
        first = repay(api, loan)
        second = repay(api, loan)
    assert first.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.content == first.content
    record = IdempotencyRecord.objects.get(key="key-1")
    assert (record.state, record.locked_until) == (IdempotencyRecordState.DONE, None)


@pytest.mark.parametrize("key", ["a\x00b", "tab\there", "\x7f"])
def test_a_key_with_control_characters_is_400(api, loan, key):
    response = repay(api, loan, key=key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"


def test_anonymous_and_unpermitted_requests_are_refused_before_the_key(anon_api, viewer_api, loan):
    assert repay(anon_api, loan).status_code == 401
    assert repay(viewer_api, loan).status_code == 403
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("key", ["", " ", "k" * 256])
def test_an_invalid_key_is_400(api, loan, key):
    before = counts()
    response = repay(api, loan, key=key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert counts() == before


def test_requests_without_a_key_run_every_time(api, loan):
    before = counts()
    assert repay(api, loan, key=None).status_code == 200
    assert repay(api, loan, key=None).status_code == 200
    assert counts() == (before[0] + 2, before[1] + 2)
    assert not IdempotencyRecord.objects.exists()


def test_only_post_is_idempotent(api, business_date):
    for _ in range(2):
        response = api.put(
            "/api/v1/business-date", {"date": "2026-02-19"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
        )
        assert response.status_code == 200
        assert "Idempotent-Replayed" not in response.headers
    assert not IdempotencyRecord.objects.exists()


def test_every_api_view_inherits_the_idempotent_base():
    """A view added later that subclasses DRF's APIView directly fails here: inherit
    ``loans.api_common.APIView`` (or ``LoanAPIView``)."""
    offenders = []
    for path, _regex, method, callback in EndpointEnumerator().get_api_endpoints():
        view = callback.cls
        if view.__module__.startswith("drf_spectacular."):
            continue
        if not issubclass(view, IdempotentMixin):
            offenders.append(f"{method} {path} ({view.__module__}.{view.__qualname__})")
    assert offenders == []


def test_the_schema_documents_the_header_on_every_post(api):
    schema = api.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    posts = [
        (path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method == "post" and op.get("security")
    ]
    assert posts
    for path, op in posts:
        names = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in names, path


def test_purge_deletes_only_expired_keys(operator):
    from io import StringIO

    from django.core.management import call_command

    now = timezone.now()
    for key, expires in (("old", now - timedelta(seconds=1)), ("new", now + timedelta(hours=1))):
        IdempotencyRecord.objects.create(
            key=key, user=operator, method="POST", path="/p", request_hash="h", expires_at=expires
        )
    out = StringIO()
    call_command("purge_idempotency_keys", stdout=out)
    assert out.getvalue() == "Deleted 1 expired idempotency key(s).\n"
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


# ------------------------------------------------------------------ the later commands


def _charged_off(operator):
    from loans import services
    from tests import test_concurrency as c

    loan = c._active(operator)
    services.charge_off(loan, actor=operator, as_of=c.AS_OF)
    return loan


def _new_command_rows():
    from tests import test_concurrency as c

    return [
        ("cancel-servicing", c.with_servicing_items, "/cancel-servicing", {"reason": "PAID_OFF"}),
        ("resume-servicing", c.not_servicing, "/resume-servicing", {"note": "back"}),
        (
            "contractTermination",
            c._active,
            "/transactions?command=contractTermination",
            {"note": "x", "externalId": "CT-IDEM-1"},
        ),
        (
            "undoContractTermination",
            c.terminated,
            "/transactions?command=undoContractTermination",
            {"note": "x"},
        ),
        (
            "chargeOff",
            c._active,
            "/transactions?command=chargeOff",
            {"note": "x", "externalId": "CO-IDEM-1", "reason": "BANKRUPTCY"},
        ),
        ("undoChargeOff", _charged_off, "/transactions?command=undoChargeOff", {"note": "x"}),
        ("modifications", c._active, "/modifications", {"modificationDate": "2026-02-07"}),
        (
            "roll-payment",
            c.with_draft_modification,
            "/roll-payment",
            {"amount": "60.00", "method": "loan.rollPayment.termExact"},
        ),
        ("activate modification", c.with_draft_modification, "/activate", {}),
        ("cancel modification", c.with_draft_modification, "/modifications/cancel", {}),
        (
            "payoff",
            c._active,
            "/transactions?command=payoff",
            # 600.00 + 13.85 interest due + 2.18 of #4's 2.77 (11 of 14 days)
            {"transactionDate": "2026-02-18", "transactionAmount": "616.03"},
        ),
        (
            "creditBalanceRefund",
            c.overpaid,
            "/transactions?command=creditBalanceRefund",
            {"transactionDate": "2026-02-18", "transactionAmount": "5.00"},
        ),
        ("autopay", c._active, "/autopay", {"method": "ACH", "amountType": "SCHEDULED_PAYMENT"}),
    ]


NEW_COMMANDS = _new_command_rows()


@pytest.mark.parametrize(
    ("name", "prepare", "suffix", "body"), NEW_COMMANDS, ids=[r[0] for r in NEW_COMMANDS]
)
@pytest.mark.parametrize("form", ["id", "external-id"])
def test_later_commands_replay_and_do_nothing_twice(
    api, operator, name, prepare, suffix, body, form
):
    from tests import test_concurrency as c
    from tests.factories import set_business_date

    set_business_date(c.AS_OF)
    loan = prepare(operator)
    base = (
        f"/api/v1/loans/{loan.pk}"
        if form == "id"
        else f"/api/v1/loans/external-id/{loan.external_id}"
    )
    url = f"{base}{suffix}"
    before = c.loan_state(loan.pk)
    key = f"idem-{name}"

    first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code in (200, 201), first.content
    assert "Idempotent-Replayed" not in first.headers
    done = c.loan_state(loan.pk)
    assert done["all_events"] == before["all_events"] + 1  # the command ran once
    assert done["row_counts"]["loans.IdempotencyRecord"] == (
        before["row_counts"]["loans.IdempotencyRecord"] + 1
    )

    second = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)

    assert second.status_code == first.status_code
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert c.loan_state(loan.pk) == done  # nothing done twice, nothing else stored

    other = api.post(url, {**body, "unexpected": "x"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert c.loan_state(loan.pk) == done


def test_autopay_cancel_replays_and_cancels_nothing_twice(api, operator):
    from servicing.autopay import setup_autopay
    from servicing.models import AutopayStatus, ScheduledPaymentStatus
    from tests import test_concurrency as c
    from tests.factories import set_business_date

    set_business_date(c.AS_OF)
    loan = c._active(operator)
    autopay = setup_autopay(loan=loan.pk, actor=operator, as_of=c.AS_OF)
    url = f"/api/v1/autopays/{autopay.pk}/cancel"
    before = c.loan_state(loan.pk)

    first = api.post(url, {"reason": "asked"}, format="json", HTTP_IDEMPOTENCY_KEY="idem-ap")
    assert first.status_code == 200, first.content
    assert first.json()["cancelledScheduledPayments"] == 3
    done = c.loan_state(loan.pk)
    assert done["all_events"] == before["all_events"] + 1
    assert [p["status"] for p in done["scheduled_payments"]] == [
        ScheduledPaymentStatus.CANCELLED
    ] * 3

    second = api.post(url, {"reason": "asked"}, format="json", HTTP_IDEMPOTENCY_KEY="idem-ap")
    assert (second.status_code, second.headers["Idempotent-Replayed"]) == (200, "true")
    assert second.json() == first.json()
    assert c.loan_state(loan.pk) == done
    autopay.refresh_from_db()
    assert autopay.status == AutopayStatus.CANCELLED

    # Without the key the repeat is a real second cancel: 409, nothing changed.
    third = api.post(url, {"reason": "asked"}, format="json")
    assert (third.status_code, third.json()["code"]) == (409, "not_active")
    assert c.loan_state(loan.pk) == done


# ------------------------------------------------------------------ a borrower's stops (§12)


@pytest.mark.parametrize(
    ("suffix", "body"),
    [("cancel-servicing", {"reason": "BANKRUPTCY"}), ("cancel-communications", {})],
)
@pytest.mark.parametrize("form", ["id", "external-id"])
def test_borrower_commands_replay_and_do_nothing_twice(api, operator, suffix, body, form):
    from loans.models import LoanEvent
    from servicing.models import ScheduledCommunication, ServicingEvent
    from tests.servicing.test_borrower_stops import borrower_with_loans

    borrower, _ = borrower_with_loans(operator, 2)
    path = borrower.pk if form == "id" else f"external-id/{borrower.external_id}"
    url = f"/api/v1/borrowers/{path}/{suffix}"

    def state():
        return (
            LoanEvent.objects.count(),
            ServicingEvent.objects.count(),
            sorted(ScheduledCommunication.objects.values_list("pk", "status")),
            IdempotencyRecord.objects.count(),
        )

    first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"b-{suffix}")
    assert first.status_code == 200, first.content
    done = state()
    assert first.json()["cancelledCalls"] == 10

    second = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"b-{suffix}")

    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert state() == done
    other = api.post(url, {"x": 1}, format="json", HTTP_IDEMPOTENCY_KEY=f"b-{suffix}")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
