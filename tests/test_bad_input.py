"""Bad input to every write endpoint (issue 6): malformed JSON, wrong types, missing fields,
oversized strings, unknown enum values, bad amounts and dates, unknown ids. Always the
documented 4xx with the error shape ``{code, detail, errors}``, never a 500, nothing written.

The table is ``ENDPOINTS``: one row per write endpoint, with a valid body and the kind of each
field; ``cases()`` derives the bad requests from the kinds. A command added later is covered
by adding its row (``test_every_write_operation_has_a_row`` fails until it is).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from django.db import transaction

from loans.models import (
    Borrower,
    BusinessDate,
    IdempotencyRecord,
    Loan,
    LoanEvent,
    LoanSetup,
    Schedule,
    SchedulePeriod,
    Transaction,
)
from tests.api_catalog import UNSAFE, api_operations, operation
from tests.factories import make_loan

pytestmark = pytest.mark.django_db

UNKNOWN = 999999
HUGE_ID = "9" * 30  # more than a database key holds
HUGE = "x" * 10_000

# Bad values per field kind. Each must be refused with a 400 on its own.
BAD = {
    "money": ["-1.00", "0", "abc", "10.001", "", "NaN", "Infinity", "1e20", True, [], {}],
    "rate": ["-1", "abc", "1.00001", "", "1001", []],
    "term": ["0", "-12", "abc", "", "12.00001", "1201", {}],
    "date": ["2026-02-30", "2026-13-01", "18/02/2026", "", 20260218, "tomorrow", []],
    "text100": [HUGE, "x" * 101, ["x"], {"a": 1}, True],
    "text500": [HUGE, "x" * 501, ["x"], {"a": 1}],
    "name": [HUGE, "x" * 101, "", ["x"], None],
    "email": ["not-an-email", HUGE, ["x"]],
    "timezone": ["Mars/Olympus", HUGE, ["x"]],
    "bool": ["maybe", 2, []],
    "id": [-1, 0, "abc", 1.5, "9" * 30],
    "object": ["string", [], 1],
    "frequency": ["FORTNIGHTLY", "", 1, None],
    "calc": ["SIMPLE", "", 1],
    "days": ["ACTUAL_366", ""],
    "rounding": ["HALF_DOWN", ""],
    "termination": ["NONE", ""],
    "engine": ["TURBO", "", 1],
}
# Bodies that are not a JSON object at all.
MALFORMED = ['{"not json', "[]", '"a string"', "123", "null", "{}{}"]

VALID_BORROWER = {
    "firstName": "Grace",
    "lastName": "Hopper",
    "email": "grace@example.com",
    "phone": "+15550199",
    "timezone": "Europe/Paris",
}
VALID_SETUP = {
    "loanAmount": "1000.00",
    "loanRate": "12.0000",
    "loanTerm": "12",
    "paymentFrequency": "MONTHLY",
    "contractDate": "2026-01-01",
    "firstPaymentDate": "2026-02-01",
}
SETUP_KINDS = {
    "loanAmount": "money",
    "loanRate": "rate",
    "loanTerm": "term",
    "paymentFrequency": "frequency",
    "contractDate": "date",
    "firstPaymentDate": "date",
    "payment": "money",
    "calcType": "calc",
    "daysInYear": "days",
    "roundingMode": "rounding",
    "terminationInterest": "termination",
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str  # the schema's path template
    url: str  # with {loan_id}, {external_id}, {tx_id}, {setup_id} filled from the fixture
    valid: dict
    kinds: dict = field(default_factory=dict)  # field path ("a.b") -> kind in BAD
    required: tuple = ()  # fields whose absence is a 400
    client: str = "api"  # "api" (operator) or "anon_api"
    has_body: bool = True
    unknown_ids: tuple = ()  # (url, ...) naming nothing -> 404
    extra: tuple = ()  # (label, url, body, status)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/v1/auth/token",
        "/api/v1/auth/token",
        {"username": "operator", "password": "wrong-password"},
        {"username": "text100", "password": "text100"},
        required=("username", "password"),
        client="anon_api",
    ),
    Endpoint(
        "PUT",
        "/api/v1/business-date",
        "/api/v1/business-date",
        {"date": "2026-02-19"},
        {"date": "date"},
        required=("date",),
    ),
    Endpoint(
        "POST",
        "/api/v1/loans",
        "/api/v1/loans",
        {"externalId": "NEW-1", "borrower": VALID_BORROWER, "setup": VALID_SETUP},
        {
            "externalId": "text100",
            "borrower": "object",
            "borrower.firstName": "name",
            "borrower.lastName": "name",
            "borrower.email": "email",
            "borrower.timezone": "timezone",
            "borrower.doNotCall": "bool",
            "borrowerId": "id",
            "scheduleEngine": "engine",
            "setup": "object",
            **{f"setup.{k}": v for k, v in SETUP_KINDS.items()},
        },
        required=("borrower", "setup", "setup.loanAmount", "setup.contractDate"),
        extra=(
            (
                "unknown borrowerId",
                "/api/v1/loans",
                {"borrowerId": UNKNOWN, "setup": VALID_SETUP},
                404,
            ),
            (
                "first payment before contract",
                "/api/v1/loans",
                {
                    "borrower": VALID_BORROWER,
                    "setup": {**VALID_SETUP, "firstPaymentDate": "2025-12-01"},
                },
                400,
            ),
            (
                "duplicate externalId",
                "/api/v1/loans",
                {"externalId": "BASELINE-B", "borrower": VALID_BORROWER, "setup": VALID_SETUP},
                400,
            ),
        ),
    ),
    *[
        Endpoint(
            method,
            "/api/v1/loan-setups/{setup_id}",
            "/api/v1/loan-setups/{setup_id}",
            {"loanAmount": "1500.00"},
            SETUP_KINDS,
            unknown_ids=(f"/api/v1/loan-setups/{UNKNOWN}", f"/api/v1/loan-setups/{HUGE_ID}"),
        )
        for method in ("PATCH", "PUT")
    ],
    # No request body: only the loan in the path can be wrong.
    Endpoint(
        "POST",
        "/api/v1/loans/{loan_id}/activate",
        "/api/v1/loans/{loan_id}/activate",
        {},
        has_body=False,
        unknown_ids=(f"/api/v1/loans/{UNKNOWN}/activate",),
    ),
    Endpoint(
        "POST",
        "/api/v1/loans/external-id/{external_id}/activate",
        "/api/v1/loans/external-id/{external_id}/activate",
        {},
        has_body=False,
        unknown_ids=("/api/v1/loans/external-id/NO-SUCH-LOAN/activate",),
    ),
    *[
        Endpoint(
            "POST",
            template,
            template + "?command=repayment",
            {"transactionDate": "2026-02-18", "transactionAmount": "10.00"},
            {
                "transactionDate": "date",
                "transactionAmount": "money",
                "externalId": "text100",
                "note": "text500",
            },
            required=("transactionDate", "transactionAmount"),
            unknown_ids=(
                f"/api/v1/loans/{UNKNOWN}/transactions?command=repayment",
                f"/api/v1/loans/{HUGE_ID}/transactions?command=repayment",
                "/api/v1/loans/external-id/NO-SUCH-LOAN/transactions?command=repayment",
            ),
            extra=(
                ("unknown command", template + "?command=explode", {}, 400),
                ("no command", template, {}, 400),
                (
                    "before the contract date",
                    template + "?command=repayment",
                    {"transactionDate": "2025-01-01", "transactionAmount": "10.00"},
                    400,
                ),
                (
                    "after the business date",
                    template + "?command=charge",
                    {"transactionDate": "2026-02-19", "amount": "10.00"},
                    400,
                ),
                (
                    "more than outstanding",
                    template + "?command=repayment",
                    {"transactionDate": "2026-02-18", "transactionAmount": "999999.00"},
                    400,
                ),
            ),
        )
        for template in (
            "/api/v1/loans/{loan_id}/transactions",
            "/api/v1/loans/external-id/{external_id}/transactions",
        )
    ],
    *[
        Endpoint(
            "POST",
            template,
            template + "?command=undo",
            {"note": "wrong amount", "reversalExternalId": "REV-1"},
            {"note": "text500", "reversalExternalId": "text100"},
            unknown_ids=(
                f"/api/v1/loans/{{loan_id}}/transactions/{UNKNOWN}?command=undo",
                f"/api/v1/loans/{{loan_id}}/transactions/{HUGE_ID}?command=undo",
                f"/api/v1/loans/{UNKNOWN}/transactions/{{tx_id}}?command=undo",
            ),
            extra=(("unknown command", template + "?command=redo", {}, 400),),
        )
        for template in (
            "/api/v1/loans/{loan_id}/transactions/{tx_id}",
            "/api/v1/loans/external-id/{external_id}/transactions/{tx_id}",
        )
    ],
]


def _set(body: dict, path: str, value):
    body = json.loads(json.dumps(body))
    *parents, leaf = path.split(".")
    target = body
    for name in parents:
        target = target.setdefault(name, {})
        if not isinstance(target, dict):
            return body
    if value is _MISSING:
        target.pop(leaf, None)
    else:
        target[leaf] = value
    return body


_MISSING = object()


def cases(e: Endpoint):
    """``(label, url, body, expected status)`` for one endpoint."""
    if e.has_body:
        for raw in MALFORMED:
            yield f"malformed {raw[:12]!r}", e.url, raw, 400
        for path in e.required:
            yield f"missing {path}", e.url, json.dumps(_set(e.valid, path, _MISSING)), 400
        for path, kind in e.kinds.items():
            for index, value in enumerate(BAD[kind]):
                body = json.dumps(_set(e.valid, path, value))
                yield f"{path}={kind}[{index}] {str(value)[:20]!r}", e.url, body, 400
    for url in e.unknown_ids:
        yield f"unknown id {url}", url, json.dumps(e.valid), 404
    for label, url, body, status in e.extra:
        yield label, url, json.dumps(body), status


@pytest.fixture
def ids(baseline_b):
    pending = make_loan(external_id="PENDING-1")
    repayment = baseline_b.transactions.filter(type="REPAYMENT").order_by("id").first()
    return {
        "loan_id": baseline_b.pk,
        "external_id": baseline_b.external_id,
        "tx_id": repayment.pk,
        "setup_id": pending.setup_id,
    }


def snapshot():
    return {
        model.__name__: model.objects.count()
        for model in (
            Loan,
            Borrower,
            LoanSetup,
            Schedule,
            SchedulePeriod,
            Transaction,
            LoanEvent,
            IdempotencyRecord,
        )
    } | {
        "business_date": list(BusinessDate.objects.values_list("date", flat=True)),
        "transactions": list(
            Transaction.objects.order_by("id").values_list(
                "reversed", "principal_portion", "interest_portion"
            )
        ),
        "setups": list(LoanSetup.objects.order_by("id").values_list("loan_amount", "active")),
    }


def check(client, endpoint: Endpoint, url: str, body: str, status: int) -> list[str]:
    """Send one bad request; return what is wrong with the answer (empty when all is well)."""
    before = snapshot()
    response = getattr(client, endpoint.method.lower())(url, body, content_type="application/json")
    problems = []
    if response.status_code != status:
        problems.append(
            f"status {response.status_code}, expected {status}: {response.content[:300]!r}"
        )
    try:
        payload = response.json()
    except ValueError:
        return [*problems, f"not JSON: {response.content[:200]!r}"]
    if not (
        isinstance(payload, dict)
        and set(payload) == {"code", "detail", "errors"}
        and isinstance(payload["code"], str)
        and payload["code"]
        and isinstance(payload["detail"], str)
        and payload["detail"]
        and isinstance(payload["errors"], list)
    ):
        problems.append(f"not the error shape: {payload!r}"[:300])
    if str(response.status_code) not in operation(endpoint.method, endpoint.template)["responses"]:
        problems.append(f"status {response.status_code} is not documented")
    if snapshot() != before:
        problems.append("something was written")
    return problems


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[f"{e.method} {e.url}" for e in ENDPOINTS])
def test_bad_input_is_refused_with_the_error_shape(request, ids, endpoint):
    """Every case of the endpoint in one test (the fixtures are built once); each case runs in
    a savepoint rolled back afterwards, so the cases do not see each other's effects."""
    client = request.getfixturevalue(endpoint.client)
    client.raise_request_exception = False
    failures = []
    count = 0
    for label, url, body, status in cases(endpoint):
        count += 1
        with transaction.atomic():
            problems = check(client, endpoint, url.format(**ids), body, status)
            transaction.set_rollback(True)
        failures += [f"{label}: {p}" for p in problems]
    assert count > 0
    assert failures == []


def test_every_write_operation_has_a_row():
    covered = {(e.method, e.template) for e in ENDPOINTS}
    writes = {(m, p) for m, p in api_operations() if m in UNSAFE}
    assert writes - covered == set()
