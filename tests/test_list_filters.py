"""Every list endpoint's filters refuse what they cannot read: an unknown choice (naming the
parameter and listing the values it accepts), a bad date or time, a bad number, a filter given
twice. 400 in the error shape, never ignored, never a 500."""

from __future__ import annotations

from datetime import date

import pytest

from loans.models import Loan
from servicing.models import ScheduledPaymentStatus
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db

LOAN_ENUMS = {
    "status": "PENDING, ACTIVE, CLOSED, OVERPAID",
    "subStatus": "CONTRACT_TERMINATION",
    "servicingStatus": "ACTIVE, NOT_SERVICING",
    "scheduleEngine": "DYNAMIC, STANDARD",
    "delinquencyBucket": "CURRENT, DPD_1_30, DPD_31_60, DPD_61_90, DPD_91_120, DPD_120_PLUS",
}


def refused(response, field: str, detail: str, code: str = "invalid_choice"):
    assert response.status_code == 400, response.content
    assert response.json() == {
        "code": "invalid",
        "detail": f"Invalid input. {field}: {detail}",
        "errors": [{"field": field, "detail": detail, "code": code}],
    }


@pytest.mark.parametrize(("name", "allowed"), LOAN_ENUMS.items())
def test_loans_unknown_choice_names_the_parameter_and_its_values(api, name, allowed):
    refused(api.get(f"/api/v1/loans?{name}=NOPE"), name, f"Must be one of {allowed}.")


def test_loans_by_delinquency_bucket(api, operator):
    set_business_date(date(2026, 3, 1))
    late = make_active_loan(actor=operator, external_id="B-LATE")
    make_active_loan(actor=operator, external_id="B-CURRENT")
    Loan.objects.filter(pk=late.pk).update(delinquency_bucket="DPD_31_60")
    rows = api.get("/api/v1/loans?delinquencyBucket=DPD_31_60").json()["results"]
    assert [row["externalId"] for row in rows] == ["B-LATE"]
    assert api.get("/api/v1/loans?delinquencyBucket=CURRENT").json()["count"] == 1
    assert api.get("/api/v1/loans?delinquencyBucket=DPD_1_30").json()["count"] == 0


def test_a_filter_given_twice_is_refused(api):
    # django-filter used the last value and dropped the first: ?status=NOPE&status=ACTIVE
    # filtered by ACTIVE as if NOPE had not been sent.
    refused(
        api.get("/api/v1/loans?status=NOPE&status=ACTIVE"), "status", "Give one value.", "invalid"
    )


SERVICING_BAD = [
    ("scheduled-payments", "status=NOPE", "status", "Must be one of PENDING, "),
    ("scheduled-payments", "method=NOPE", "method", "Must be one of "),
    (
        "scheduled-payments",
        "scheduledDateFrom=2026-13-01",
        "scheduledDateFrom",
        "Enter a valid date.",
    ),
    ("scheduled-payments", "scheduledDateTo=tomorrow", "scheduledDateTo", "Enter a valid date."),
    ("scheduled-communications", "status=NOPE", "status", "Must be one of "),
    ("scheduled-communications", "channel=FAX", "channel", "Must be one of "),
    ("scheduled-communications", "scheduleId=abc", "scheduleId", "Enter a whole number."),
    ("scheduled-communications", "scheduleId=1.5", "scheduleId", "Enter a whole number."),
    (
        "scheduled-communications",
        "scheduledFrom=yesterday",
        "scheduledFrom",
        "Enter a valid date/time.",
    ),
    ("communication-schedules", "status=NOPE", "status", "Must be one of "),
    ("communication-schedules", "startDateTo=2026-02-30", "startDateTo", "Enter a valid date."),
]


@pytest.mark.parametrize(("items", "query", "field", "start"), SERVICING_BAD)
def test_servicing_lists_refuse_what_they_cannot_read(api, operator, items, query, field, start):
    set_business_date(date(2026, 3, 1))
    loan = make_active_loan(actor=operator)
    response = api.get(f"/api/v1/loans/{loan.pk}/{items}?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    [error] = body["errors"]
    assert error["field"] == field
    assert error["detail"].startswith(start), error


def test_servicing_choice_lists_its_values(api, operator):
    set_business_date(date(2026, 3, 1))
    loan = make_active_loan(actor=operator)
    response = api.get(f"/api/v1/loans/{loan.pk}/scheduled-payments?status=NOPE")
    allowed = ", ".join(ScheduledPaymentStatus.values)
    refused(response, "status", f"Must be one of {allowed}.")
