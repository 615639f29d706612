"""The servicing API: seed 000's shapes, every status code, both loan path forms."""

from __future__ import annotations

from decimal import Decimal

import pytest

from loans.models import ServicingStatus, StopServicingReason
from servicing import services
from servicing.models import ScheduledCommunication, ScheduledPayment
from tests.servicing.helpers import AS_OF, at

pytestmark = pytest.mark.django_db

RESPONSE_KEYS = [
    "id",
    "servicingStatus",
    "stopServicingReason",
    "cancelledScheduledPayments",
    "cancelledCallSchedules",
    "cancelledEmailSchedules",
    "cancelledSmsSchedules",
    "cancelledCalls",
    "cancelledEmails",
    "cancelledSms",
]


def cancel_url(loan, form: str) -> str:
    if form == "id":
        return f"/api/v1/loans/{loan.pk}/cancel-servicing"
    return f"/api/v1/loans/external-id/{loan.external_id}/cancel-servicing"


@pytest.mark.parametrize("form", ["id", "external-id"])
def test_cancel_servicing_returns_seed_000_response(api, seeded_loan, form):
    response = api.post(cancel_url(seeded_loan, form), {"reason": "PAID_OFF"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert list(body) == RESPONSE_KEYS
    assert body == {
        "id": seeded_loan.external_id,
        "servicingStatus": "NOT_SERVICING",
        "stopServicingReason": "PAID_OFF",
        "cancelledScheduledPayments": 3,
        "cancelledCallSchedules": 1,
        "cancelledEmailSchedules": 1,
        "cancelledSmsSchedules": 1,
        "cancelledCalls": 5,
        "cancelledEmails": 2,
        "cancelledSms": 3,
    }


def test_cancel_servicing_without_a_body_defaults_to_api_request(api, loan):
    response = api.post(cancel_url(loan, "id"))
    assert response.status_code == 200, response.content
    assert response.json()["stopServicingReason"] == "API_REQUEST"
    assert response.json()["cancelledScheduledPayments"] == 0


def test_cancel_servicing_with_null_reason_defaults(api, loan):
    response = api.post(cancel_url(loan, "id"), {"reason": None}, format="json")
    assert response.json()["stopServicingReason"] == "API_REQUEST"


def test_cancel_servicing_twice_is_idempotent(api, seeded_loan):
    api.post(cancel_url(seeded_loan, "id"), {"reason": "MILITARY"}, format="json")
    response = api.post(cancel_url(seeded_loan, "external-id"), {"reason": "DUPLICATE"})
    assert response.status_code == 200
    body = response.json()
    assert body["stopServicingReason"] == "MILITARY"
    assert body["servicingStatus"] == "NOT_SERVICING"
    assert [body[k] for k in RESPONSE_KEYS[3:]] == [0] * 7


@pytest.mark.parametrize("reason", ["NOT_A_REASON", "", "paid_off"])
def test_invalid_reason_is_400_listing_the_valid_values(api, seeded_loan, reason):
    response = api.post(cancel_url(seeded_loan, "id"), {"reason": reason}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_reason"
    assert set(body) == {"code", "detail", "errors"}
    assert body["errors"][0]["validValues"] == StopServicingReason.values
    for value in StopServicingReason.values:
        assert value in body["detail"]
    assert body["errors"][0]["field"] == "reason"
    seeded_loan.refresh_from_db()
    assert seeded_loan.servicing_status == ServicingStatus.ACTIVE
    assert ScheduledPayment.objects.filter(loan=seeded_loan, status="PENDING").count() == 3


def test_malformed_body_is_400(api, loan):
    response = api.post(cancel_url(loan, "id"), "[1, 2", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"
    response = api.post(cancel_url(loan, "id"), [1, 2], format="json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path",
    ["/api/v1/loans/999999/cancel-servicing", "/api/v1/loans/external-id/NOPE/cancel-servicing"],
)
def test_unknown_loan_is_404(api, as_of, path):
    response = api.post(path, {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "loan_not_found"


def test_anonymous_is_401(anon_api, loan):
    response = anon_api.post(cancel_url(loan, "id"), {}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_without_the_permission_is_403(viewer_api, loan):
    response = viewer_api.post(cancel_url(loan, "external-id"), {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    loan.refresh_from_db()
    assert loan.servicing_status == ServicingStatus.ACTIVE


# ------------------------------------------------------------------ resume


def test_resume_servicing_returns_the_loan(api, loan, operator):
    services.cancel_servicing(loan=loan, reason="COMPLAINT_TRIGGER", actor=operator)
    response = api.post(
        f"/api/v1/loans/external-id/{loan.external_id}/resume-servicing",
        {"note": "complaint resolved"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["externalId"] == loan.external_id
    assert body["servicingStatus"] == "ACTIVE"
    assert body["stopServicingReason"] is None


def test_resume_servicing_codes(api, viewer_api, anon_api, loan):
    url = f"/api/v1/loans/{loan.pk}/resume-servicing"
    response = api.post(url, {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "loan_already_servicing"
    assert viewer_api.post(url, {}).status_code == 403
    assert anon_api.post(url, {}).status_code == 401
    assert api.post("/api/v1/loans/999999/resume-servicing", {}).status_code == 404


# ------------------------------------------------------------------ scheduled payments


def test_create_and_list_scheduled_payments(api, loan):
    url = f"/api/v1/loans/{loan.pk}/scheduled-payments"
    response = api.post(
        url, {"amount": "125.5", "scheduledDate": "2026-03-01", "method": "CARD"}, format="json"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["amount"] == "125.50"
    assert created["scheduledDate"] == "2026-03-01"
    assert created["method"] == "CARD"
    assert created["status"] == "PENDING"
    assert created["createdBy"] == "operator"
    api.post(url, {"amount": "10.00", "scheduledDate": "2026-04-01"}, format="json")

    listing = api.get(f"/api/v1/loans/external-id/{loan.external_id}/scheduled-payments")
    assert listing.status_code == 200
    assert listing.json()["count"] == 2
    assert [r["amount"] for r in listing.json()["results"]] == ["125.50", "10.00"]
    assert listing.json()["results"][1]["method"] == "ACH"
    filtered = api.get(url, {"scheduledDateFrom": "2026-03-15", "status": "PENDING"})
    assert [r["amount"] for r in filtered.json()["results"]] == ["10.00"]
    assert api.get(url, {"status": "CANCELLED"}).json()["count"] == 0
    bad = api.get(url, {"status": "WHATEVER"})
    assert bad.status_code == 400


def test_scheduled_payment_errors(api, viewer_api, anon_api, loan, operator):
    url = f"/api/v1/loans/{loan.pk}/scheduled-payments"
    ok = {"amount": "10.00", "scheduledDate": "2026-03-01"}
    assert api.post(url, {"amount": "0", "scheduledDate": "2026-03-01"}).status_code == 400
    assert api.post(url, {"amount": "abc", "scheduledDate": "2026-03-01"}).status_code == 400
    past = api.post(url, {"amount": "1.00", "scheduledDate": "2026-02-17"})
    assert past.status_code == 400
    assert past.json()["code"] == "date_in_past"
    assert viewer_api.post(url, ok).status_code == 403
    assert viewer_api.get(url).status_code == 200
    assert anon_api.get(url).status_code == 401
    assert api.post("/api/v1/loans/999999/scheduled-payments", ok).status_code == 404
    services.cancel_servicing(loan=loan, actor=operator)
    refused = api.post(url, ok)
    assert refused.status_code == 409
    assert refused.json()["code"] == "loan_not_servicing"
    assert ScheduledPayment.objects.count() == 0


def test_cancel_one_scheduled_payment(api, viewer_api, loan, operator):
    payment = services.schedule_payment(
        loan=loan, amount=Decimal("9.99"), scheduled_date=AS_OF, actor=operator
    )
    url = f"/api/v1/scheduled-payments/{payment.pk}/cancel"
    assert viewer_api.post(url).status_code == 403
    response = api.post(url, {"reason": "asked by phone"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["cancelReason"] == "asked by phone"
    assert response.json()["cancelledBy"] == "operator"
    again = api.post(url)
    assert again.status_code == 409
    assert again.json()["code"] == "not_pending"
    assert api.post("/api/v1/scheduled-payments/999999/cancel").status_code == 404


# ------------------------------------------------------------------ communications


def test_create_list_and_cancel_communications(api, loan):
    url = f"/api/v1/loans/{loan.pk}/scheduled-communications"
    response = api.post(
        url,
        {"channel": "SMS", "scheduledAt": "2026-03-02T15:00:00Z", "body": "Your payment is due"},
        format="json",
    )
    assert response.status_code == 201, response.content
    sms = response.json()
    assert sms["channel"] == "SMS"
    assert sms["scheduledAt"] == "2026-03-02T15:00:00Z"
    assert sms["scheduleId"] is None
    api.post(url, {"channel": "CALL", "scheduledAt": "2026-03-05T15:00:00Z"}, format="json")
    assert [r["channel"] for r in api.get(url).json()["results"]] == ["SMS", "CALL"]
    assert [r["channel"] for r in api.get(url, {"channel": "CALL"}).json()["results"]] == ["CALL"]
    assert api.get(url, {"scheduledFrom": "2026-03-03T00:00:00Z"}).json()["count"] == 1
    cancelled = api.post(f"/api/v1/scheduled-communications/{sms['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    assert api.get(url, {"status": "PENDING"}).json()["count"] == 1


def test_communication_errors(api, loan):
    url = f"/api/v1/loans/{loan.pk}/scheduled-communications"
    assert api.post(url, {"channel": "FAX", "scheduledAt": "2026-03-02T15:00:00Z"}).status_code == (
        400
    )
    assert api.post(url, {"channel": "SMS", "scheduledAt": "tomorrow"}).status_code == 400
    loan.borrower.do_not_sms = True
    loan.borrower.save()
    refused = api.post(url, {"channel": "SMS", "scheduledAt": "2026-03-02T15:00:00Z"})
    assert refused.status_code == 409
    assert refused.json()["code"] == "do_not_contact"
    assert ScheduledCommunication.objects.count() == 0


def test_create_list_and_cancel_a_communication_schedule(api, loan):
    url = f"/api/v1/loans/{loan.pk}/communication-schedules"
    response = api.post(
        url,
        {"channel": "EMAIL", "everyDays": 14, "startDate": "2026-03-01", "occurrences": 3},
        format="json",
    )
    assert response.status_code == 201, response.content
    schedule = response.json()
    assert schedule["status"] == "ACTIVE"
    assert schedule["endDate"] is None
    assert [c["scheduledAt"] for c in schedule["communications"]] == [
        "2026-03-01T15:00:00Z",
        "2026-03-15T14:00:00Z",
        "2026-03-29T14:00:00Z",
    ]
    listing = api.get(url, {"channel": "EMAIL", "status": "ACTIVE"}).json()
    assert [r["id"] for r in listing["results"]] == [schedule["id"]]
    generated = api.get(
        f"/api/v1/loans/{loan.pk}/scheduled-communications", {"scheduleId": schedule["id"]}
    )
    assert generated.json()["count"] == 3
    cancelled = api.post(f"/api/v1/communication-schedules/{schedule['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    assert cancelled.json()["cancelledCommunications"] == 3
    again = api.post(f"/api/v1/communication-schedules/{schedule['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "not_active"


@pytest.mark.parametrize(
    ("field", "value"), [("everyDays", "7"), ("everyDays", 7.0), ("occurrences", "3"), ("occurrences", True)]
)  # fmt: skip
def test_communication_schedule_counts_are_json_integers(api, loan, field, value):
    url = f"/api/v1/loans/{loan.pk}/communication-schedules"
    body = {"channel": "SMS", "everyDays": 7, "startDate": "2026-03-01", "occurrences": 3}
    response = api.post(url, {**body, field: value}, format="json")
    assert response.status_code == 400, response.content
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, "invalid")]
    assert api.get(url).json()["count"] == 0
    assert api.post(url, body, format="json").status_code == 201


def test_communication_schedule_needs_end_or_occurrences(api, loan):
    url = f"/api/v1/loans/{loan.pk}/communication-schedules"
    both = api.post(
        url,
        {
            "channel": "SMS",
            "everyDays": 1,
            "startDate": "2026-03-01",
            "endDate": "2026-03-05",
            "occurrences": 2,
        },
        format="json",
    )
    assert both.status_code == 400
    assert both.json()["code"] == "end_or_occurrences"
    neither = api.post(url, {"channel": "SMS", "everyDays": 1, "startDate": "2026-03-01"})
    assert neither.status_code == 400
    ok = api.post(
        url,
        {"channel": "SMS", "everyDays": 2, "startDate": "2026-03-01", "endDate": "2026-03-05"},
        format="json",
    )
    assert ok.status_code == 201
    assert len(ok.json()["communications"]) == 3


def test_items_are_listed_only_for_their_loan(api, loan, other_loan, operator):
    services.schedule_communication(
        loan=other_loan, channel="CALL", scheduled_at=at(4), actor=operator
    )
    assert api.get(f"/api/v1/loans/{loan.pk}/scheduled-communications").json()["count"] == 0


def test_openapi_schema_documents_cancel_servicing(api):
    response = api.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    operation = schema["paths"]["/api/v1/loans/{loan_id}/cancel-servicing"]["post"]
    assert {"200", "400", "401", "403", "404"} <= set(operation["responses"])
    result = schema["components"]["schemas"]["CancelServicingResult"]
    assert list(result["properties"]) == RESPONSE_KEYS
    assert "/api/v1/loans/external-id/{external_id}/cancel-servicing" in schema["paths"]
    assert "/api/v1/communication-schedules/{item_id}/cancel" in schema["paths"]


@pytest.mark.parametrize(
    "suffix", ["scheduled-payments", "scheduled-communications", "communication-schedules"]
)
def test_lists_of_an_unknown_loan_are_404(api, as_of, suffix):
    for path in (f"/api/v1/loans/999999/{suffix}", f"/api/v1/loans/external-id/NOPE/{suffix}"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "loan_not_found"


def test_cancel_unknown_items_are_404(api, as_of):
    for kind in ("scheduled-payments", "scheduled-communications", "communication-schedules"):
        response = api.post(f"/api/v1/{kind}/424242/cancel")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("value", ["-1.3132721793801743e+154", "9" * 30, "1.5", "0", "abc"])
def test_schedule_id_filter_outside_a_key_is_400(api, loan, value):
    """Found by the fuzzer: a float or a number past a database key reached SQLite (500)."""
    response = api.get(f"/api/v1/loans/{loan.pk}/scheduled-communications?scheduleId={value}")
    assert response.status_code == 400
    assert set(response.json()) == {"code", "detail", "errors"}


def test_schedule_id_filter_selects_the_schedule(api, loan, operator):
    first, second = (
        services.create_communication_schedule(
            loan=loan,
            channel="SMS",
            every_days=7,
            start_date=AS_OF,
            occurrences=2,
            actor=operator,
        )
        for _ in range(2)
    )
    url = f"/api/v1/loans/{loan.pk}/scheduled-communications?scheduleId={second.pk}"
    rows = api.get(url).json()["results"]
    assert len(rows) == 2 and {r["scheduleId"] for r in rows} == {second.pk}


@pytest.mark.parametrize(
    "query, expected",
    [
        # Found by the fuzzer on PostgreSQL: an offset Python accepts and PostgreSQL refuses.
        ("scheduledFrom=0148-12-28T22:46:33%2B21:24", 200),
        ("scheduledTo=0001-01-01T00:00:00%2B14:00", 400),  # before year 1 in UTC
        ("scheduledFrom=9999-12-31T23:59:59-12:00", 400),  # after year 9999 in UTC
        ("scheduledFrom=tomorrow", 400),
    ],
)
def test_scheduled_at_filters_take_any_offset_or_refuse(api, loan, query, expected):
    response = api.get(f"/api/v1/loans/{loan.pk}/scheduled-communications?{query}")
    assert response.status_code == expected, response.content[:300]
    if expected == 400:
        assert set(response.json()) == {"code", "detail", "errors"}


def test_scheduled_at_filters_compare_instants(api, loan, operator):
    services.schedule_communication(
        loan=loan, channel="SMS", scheduled_at=at(2, 15), actor=operator
    )
    url = f"/api/v1/loans/{loan.pk}/scheduled-communications?scheduledFrom="
    # 15:00 UTC is 10:00 at -05:00: from 09:59 there it is included, from 10:01 it is not.
    assert api.get(url + "2026-03-02T09:59:00-05:00").json()["count"] == 1
    assert api.get(url + "2026-03-02T10:01:00-05:00").json()["count"] == 0
