"""Bad input to every write endpoint (issue 6): malformed JSON, wrong types, missing fields,
oversized strings, unknown enum values, bad amounts and dates, unknown ids. Always the
documented 4xx with the error shape ``{code, detail, errors}``, never a 500, nothing written.

The table is ``ENDPOINTS``: one row per write endpoint, with a valid body and the kind of each
field; ``cases()`` derives the bad requests from the kinds. A command added later is covered
by adding its row (``test_every_write_operation_has_a_row`` fails until it is). Where a row
gives ``valid_status``, ``test_the_valid_body_is_accepted`` checks that its valid body succeeds,
so each derived case fails for its one bad value. "Nothing written" covers the servicing items
and modifications too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import transaction

from loans import selectors
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
from loans.services import post_payoff
from modifications.models import Modification
from servicing import services as servicing_services
from servicing.models import CommunicationSchedule, ScheduledCommunication, ScheduledPayment
from tests.api_catalog import UNSAFE, api_operations, operation
from tests.factories import make_active_loan, make_loan

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
    "id": [-1, 0, "abc", 1.5, "9" * 30, "1", 1.0],  # a JSON integer, as the schema says
    "object": ["string", [], 1],
    "frequency": ["FORTNIGHTLY", "", 1, None],
    "calc": ["SIMPLE", "", 1],
    "days": ["ACTUAL_366", ""],
    "rounding": ["HALF_DOWN", ""],
    "termination": ["NONE", ""],
    "engine": ["TURBO", "", 1],
    "text200": [HUGE, "x" * 201, ["x"], {"a": 1}],
    "text10000": ["x" * 10_001, ["x"], {"a": 1}],
    "datetime": [
        "2026-02-30T10:00:00Z",
        "tomorrow",
        "",
        20260218,
        [],
        None,
        "9999-12-31T23:59:59-12:00",  # past the last datetime in UTC
        "0001-01-01T00:00:00Z",  # before the first datetime in the borrower's zone (New York)
        "0001-01-01T00:00:00+14:00",  # before the first datetime in UTC
    ],
    "method": ["WIRE", "", 1, None, []],
    "channel": ["FAX", "", 1, None, []],
    "every_days": [0, -1, 367, "abc", 1.5, "", None, [], "9" * 30],
    "occurrences": [0, -1, 501, "abc", 1.5, "", [], "9" * 30],
    "reason": ["NOT_A_REASON", "paid_off", "", HUGE, ["x"], {"a": 1}, 1],
    "roll_method": ["loan.rollPayment.nope", "", HUGE, None, [], {}],
    "tx_ids": ["12", [UNKNOWN], ["x" * 41], [None], [[]], {"a": 1}, ["9" * 30], ["abc"]],
}
# Bodies that are not a JSON object at all.
MALFORMED = ['{"not json', "[]", '"a string"', "123", "null", "{}{}"]
# Bodies the parser refuses before any view (issue 16): each used to be a 500 somewhere.
HOSTILE = [
    ("nested 50,000 deep", "[" * 50_000 + "]" * 50_000, 400),
    ("nested 40 deep", '{"a": ' * 40 + "1" + "}" * 40, 400),
    ("NUL in a string", '{"x": "a\\u0000b"}', 400),
    ("NUL in a key", '{"a\\u0000": 1}', 400),
    ("lone surrogate", '{"x": "\\ud800"}', 400),
    ("lone surrogate in a key", '{"\\udfff": 1}', 400),
    ("a body over DATA_UPLOAD_MAX_MEMORY_SIZE", '{"x": "' + "y" * 2_700_000 + '"}', 413),
]

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
    valid_status: int | None = None  # when set, the valid body is accepted with it


VALID_SCHEDULED_PAYMENT = {"amount": "25.00", "scheduledDate": "2026-03-01", "method": "ACH"}
VALID_COMMUNICATION = {
    "channel": "EMAIL",
    "scheduledAt": "2026-03-01T10:00:00Z",
    "subject": "Reminder",
    "body": "Your payment is due.",
}
VALID_COMMUNICATION_SCHEDULE = {
    "channel": "SMS",
    "everyDays": 7,
    "startDate": "2026-03-01",
    "occurrences": 3,
    "subject": "Reminder",
    "body": "Your payment is due.",
}


def loan_command_rows(prefix: str, pending_prefix: str, unknown: tuple) -> list[Endpoint]:
    """The servicing and modification commands under one loan path form. ``{loan_id}``
    (``{external_id}``) is Baseline B, active and serviced, with no modification."""

    def template(suffix):
        return prefix + suffix

    def unknown_ids(suffix):
        return tuple(u + suffix for u in unknown)

    payments = "/scheduled-payments"
    communications = "/scheduled-communications"
    schedules = "/communication-schedules"
    schedule_without = {k: v for k, v in VALID_COMMUNICATION_SCHEDULE.items() if k != "occurrences"}
    return [
        Endpoint(
            "POST",
            template("/cancel-servicing"),
            template("/cancel-servicing"),
            {"reason": "BANKRUPTCY"},
            {"reason": "reason"},
            valid_status=200,
            unknown_ids=unknown_ids("/cancel-servicing"),
        ),
        Endpoint(
            "POST",
            template("/resume-servicing"),
            template("/resume-servicing"),
            {"note": "the borrower is back"},
            {"note": "text500"},
            unknown_ids=unknown_ids("/resume-servicing"),
            extra=(
                (
                    "a loan that is being serviced",
                    template("/resume-servicing"),
                    {"note": "again"},
                    409,
                ),
            ),
        ),
        Endpoint(
            "POST",
            template(payments),
            template(payments),
            VALID_SCHEDULED_PAYMENT,
            {"amount": "money", "scheduledDate": "date", "method": "method"},
            required=("amount", "scheduledDate"),
            valid_status=201,
            unknown_ids=unknown_ids(payments),
            extra=(
                (
                    "before the business date",
                    template(payments),
                    {**VALID_SCHEDULED_PAYMENT, "scheduledDate": "2026-02-17"},
                    400,
                ),
                (
                    "a pending loan",
                    pending_prefix + payments,
                    VALID_SCHEDULED_PAYMENT,
                    409,
                ),
            ),
        ),
        Endpoint(
            "POST",
            template(communications),
            template(communications),
            VALID_COMMUNICATION,
            {
                "channel": "channel",
                "scheduledAt": "datetime",
                "subject": "text200",
                "body": "text10000",
            },
            required=("channel", "scheduledAt"),
            valid_status=201,
            unknown_ids=unknown_ids(communications),
            extra=(
                (
                    "before the business date",
                    template(communications),
                    {**VALID_COMMUNICATION, "scheduledAt": "2026-02-17T10:00:00Z"},
                    400,
                ),
            ),
        ),
        Endpoint(
            "POST",
            template(schedules),
            template(schedules),
            VALID_COMMUNICATION_SCHEDULE,
            {
                "channel": "channel",
                "everyDays": "every_days",
                "startDate": "date",
                "occurrences": "occurrences",
                "subject": "text200",
                "body": "text10000",
            },
            required=("channel", "everyDays", "startDate"),
            valid_status=201,
            unknown_ids=unknown_ids(schedules),
            extra=(
                *(
                    (
                        f"endDate {value!r}",
                        template(schedules),
                        {**schedule_without, "endDate": value},
                        400,
                    )
                    for value in BAD["date"]
                ),
                (
                    "neither endDate nor occurrences",
                    template(schedules),
                    schedule_without,
                    400,
                ),
                (
                    "both endDate and occurrences",
                    template(schedules),
                    {**VALID_COMMUNICATION_SCHEDULE, "endDate": "2026-04-01"},
                    400,
                ),
                (
                    "endDate before startDate",
                    template(schedules),
                    {**schedule_without, "endDate": "2026-02-28"},
                    400,
                ),
                (
                    "too many occurrences",
                    template(schedules),
                    {**schedule_without, "everyDays": 1, "endDate": "2030-01-01"},
                    400,
                ),
                (
                    "endDate in the year 9999",
                    template(schedules),
                    {**schedule_without, "everyDays": 366, "endDate": "9999-12-31"},
                    400,
                ),
                (
                    "start before the business date",
                    template(schedules),
                    {**VALID_COMMUNICATION_SCHEDULE, "startDate": "2026-02-17"},
                    400,
                ),
            ),
        ),
        Endpoint(
            "POST",
            template("/modifications"),
            template("/modifications"),
            {
                "modificationDate": "2026-02-18",
                "persistentTransactions": {"payments": []},
                "note": "rate cut",
            },
            {
                "modificationDate": "date",
                "persistentTransactions": "object",
                "persistentTransactions.payments": "tx_ids",
                "persistentTransactions.charges": "tx_ids",
                "note": "text500",
            },
            required=("modificationDate",),
            valid_status=201,
            unknown_ids=unknown_ids("/modifications"),
            extra=(
                (
                    "an unknown group",
                    template("/modifications"),
                    {"modificationDate": "2026-02-18", "persistentTransactions": {"refunds": []}},
                    400,
                ),
                (
                    "a repayment dated before the modification",
                    template("/modifications"),
                    {
                        "modificationDate": "2026-02-18",
                        "persistentTransactions": {"payments": ["{tx_id}"]},
                    },
                    400,
                ),
                (
                    "after the business date",
                    template("/modifications"),
                    {"modificationDate": "2026-02-19"},
                    400,
                ),
                (
                    "before the contract date",
                    template("/modifications"),
                    {"modificationDate": "2025-01-01"},
                    400,
                ),
                (
                    "a pending loan",
                    pending_prefix + "/modifications",
                    {"modificationDate": "2026-02-18"},
                    409,
                ),
            ),
        ),
        Endpoint(
            "POST",
            template("/modifications/cancel"),
            template("/modifications/cancel"),
            {"note": "entered by mistake"},
            {"note": "text500"},
            unknown_ids=unknown_ids("/modifications/cancel"),
            extra=(("no modification to cancel", template("/modifications/cancel"), {}, 409),),
        ),
        Endpoint(
            "POST",
            template("/roll-payment"),
            template("/roll-payment"),
            {"amount": "150.00", "method": "loan.rollPayment.term"},
            {"amount": "money", "method": "roll_method"},
            required=("amount", "method"),
            unknown_ids=unknown_ids("/roll-payment"),
            extra=(
                (
                    "no modification in progress",
                    template("/roll-payment"),
                    {"amount": "150.00", "method": "loan.rollPayment.term"},
                    409,
                ),
                (
                    "a payment too small on a pending loan",
                    pending_prefix + "/roll-payment",
                    {"amount": "0.01", "method": "loan.rollPayment.term"},
                    400,
                ),
            ),
        ),
    ]


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
                # contractTermination: {note?, externalId?, locale?, dateFormat?}
                *(
                    (
                        f"contractTermination {name}",
                        template + "?command=contractTermination",
                        body,
                        400,
                    )
                    for name, body in (
                        ("externalId of 101 characters", {"externalId": "x" * 101}),
                        ("externalId a list", {"externalId": ["x"]}),
                        ("note of 501 characters", {"note": "x" * 501}),
                        ("note an object", {"note": {"a": 1}}),
                        ("locale of 36 characters", {"locale": "x" * 36}),
                        ("dateFormat of 51 characters", {"dateFormat": "x" * 51}),
                    )
                ),
                (
                    "contractTermination: an externalId already used",
                    template + "?command=contractTermination",
                    {"externalId": "USED-TX-1"},
                    400,
                ),
                (
                    "contractTermination on a pending loan",
                    template.replace("{loan_id}", "{pending_loan_id}").replace(
                        "{external_id}", "{pending_external_id}"
                    )
                    + "?command=contractTermination",
                    {},
                    409,
                ),
                # chargeOff: {note?, externalId?, reason?}; undoChargeOff: {note?,
                # reversalExternalId?} (DESIGN §12)
                *(
                    (f"chargeOff {name}", template + "?command=chargeOff", body, 400)
                    for name, body in (
                        ("externalId of 101 characters", {"externalId": "x" * 101}),
                        ("externalId a list", {"externalId": ["x"]}),
                        ("note of 501 characters", {"note": "x" * 501}),
                        ("reason of 101 characters", {"reason": "x" * 101}),
                        ("reason a number", {"reason": 7}),
                    )
                ),
                (
                    "chargeOff: an externalId already used",
                    template + "?command=chargeOff",
                    {"externalId": "USED-TX-1"},
                    400,
                ),
                (
                    "chargeOff on a pending loan",
                    template.replace("{loan_id}", "{pending_loan_id}").replace(
                        "{external_id}", "{pending_external_id}"
                    )
                    + "?command=chargeOff",
                    {},
                    409,
                ),
                (
                    "undoChargeOff reversalExternalId of 101 characters",
                    template + "?command=undoChargeOff",
                    {"reversalExternalId": "x" * 101},
                    400,
                ),
                ("undoChargeOff, not charged off", template + "?command=undoChargeOff", {}, 409),
                # payoff and creditBalanceRefund (DESIGN §9): a repayment's body
                (
                    "payoff: not the payoff total",
                    template + "?command=payoff",
                    {"transactionDate": "2026-02-18", "transactionAmount": "10.00"},
                    400,
                ),
                (
                    "payoff dated before the latest transaction",
                    template + "?command=payoff",
                    {"transactionDate": "2026-02-06", "transactionAmount": "305.54"},
                    400,
                ),
                (
                    "payoff after the business date",
                    template + "?command=payoff",
                    {"transactionDate": "2026-02-19", "transactionAmount": "305.54"},
                    400,
                ),
                (
                    "payoff without an amount",
                    template + "?command=payoff",
                    {"transactionDate": "2026-02-18"},
                    400,
                ),
                (
                    "payoff on a closed loan",
                    template.replace("{loan_id}", "{closed_loan_id}").replace(
                        "{external_id}", "{closed_external_id}"
                    )
                    + "?command=payoff",
                    {"transactionDate": "2026-02-18", "transactionAmount": "1.00"},
                    409,
                ),
                (
                    "creditBalanceRefund above the credit balance",
                    template + "?command=creditBalanceRefund",
                    {"transactionDate": "2026-02-18", "transactionAmount": "0.01"},
                    400,
                ),
                (
                    "creditBalanceRefund of a negative amount",
                    template + "?command=creditBalanceRefund",
                    {"transactionDate": "2026-02-18", "transactionAmount": "-1.00"},
                    400,
                ),
                # undoContractTermination: {note?, reversalExternalId?}
                (
                    "undoContractTermination on a loan that is not terminated",
                    template + "?command=undoContractTermination",
                    {"note": "undo"},
                    409,
                ),
                (
                    "undoContractTermination: reversalExternalId of 101 characters",
                    template + "?command=undoContractTermination",
                    {"reversalExternalId": "x" * 101},
                    400,
                ),
                (
                    "undoContractTermination: note of 501 characters",
                    template + "?command=undoContractTermination",
                    {"note": "x" * 501},
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
    *[
        row
        for prefix, pending_prefix, unknown in (
            (
                "/api/v1/loans/{loan_id}",
                "/api/v1/loans/{pending_loan_id}",
                (f"/api/v1/loans/{UNKNOWN}", f"/api/v1/loans/{HUGE_ID}"),
            ),
            (
                "/api/v1/loans/external-id/{external_id}",
                "/api/v1/loans/external-id/{pending_external_id}",
                (
                    "/api/v1/loans/external-id/NO-SUCH-LOAN",
                    "/api/v1/loans/external-id/" + "x" * 300,
                ),
            ),
        )
        for row in loan_command_rows(prefix, pending_prefix, unknown)
    ],
    *[
        Endpoint(
            "POST",
            f"/api/v1/{kind}/{{item_id}}/cancel",
            f"/api/v1/{kind}/{{{name}}}/cancel",
            {"reason": "the borrower called"},
            {"reason": "text500"},
            valid_status=200,
            unknown_ids=(
                f"/api/v1/{kind}/{UNKNOWN}/cancel",
                f"/api/v1/{kind}/{HUGE_ID}/cancel",
            ),
            extra=(
                (
                    "already cancelled",
                    f"/api/v1/{kind}/{{cancelled_{name}}}/cancel",
                    {"reason": "again"},
                    409,
                ),
            ),
        )
        for kind, name in (
            ("scheduled-payments", "payment_id"),
            ("scheduled-communications", "communication_id"),
            ("communication-schedules", "comm_schedule_id"),
        )
    ],
]


# The servicing clock (issue 12): jobs, dispatch, autopay.
BAD["job_kind"] = ["NIGHTLY", "", 1, None, []]
BAD["amount_type"] = ["MONTHLY", "", 1, None, []]
BAD["days_before"] = [-1, 31, "abc", 1.5, "", [], "9" * 30, "2", 2.0]
BAD["limit"] = [0, -1, "abc", 1.5, "", [], "9" * 30]
VALID_AUTOPAY = {"method": "ACH", "amountType": "FIXED", "amount": "40.00", "processDaysBefore": 2}
ENDPOINTS = [
    *ENDPOINTS,
    Endpoint(
        "POST",
        "/api/v1/jobs",
        "/api/v1/jobs",
        {"kind": "CLOSE_OF_BUSINESS", "businessDate": "2026-02-18"},
        {"kind": "job_kind", "businessDate": "date"},
        required=("kind",),
        valid_status=202,
        extra=(
            (
                "after the business date",
                "/api/v1/jobs",
                {"kind": "CLOSE_OF_BUSINESS", "businessDate": "2026-02-19"},
                400,
            ),
        ),
    ),
    Endpoint(
        "POST",
        "/api/v1/dispatch",
        "/api/v1/dispatch",
        {"limit": 100},
        {"limit": "limit"},
        valid_status=200,
    ),
    *[
        Endpoint(
            "POST",
            template + "/autopay",
            url + "/autopay",
            VALID_AUTOPAY,
            {
                "method": "method",
                "amountType": "amount_type",
                "amount": "money",
                "processDaysBefore": "days_before",
            },
            valid_status=201,
            unknown_ids=(unknown + "/autopay",),
            extra=(
                ("a pending loan", pending + "/autopay", VALID_AUTOPAY, 409),
                (
                    "an amount with SCHEDULED_PAYMENT",
                    url + "/autopay",
                    {"amountType": "SCHEDULED_PAYMENT", "amount": "10.00"},
                    400,
                ),
                ("FIXED without an amount", url + "/autopay", {"amountType": "FIXED"}, 400),
            ),
        )
        for template, url, pending, unknown in (
            (
                "/api/v1/loans/{loan_id}",
                "/api/v1/loans/{loan_id}",
                "/api/v1/loans/{pending_loan_id}",
                f"/api/v1/loans/{UNKNOWN}",
            ),
            (
                "/api/v1/loans/external-id/{external_id}",
                "/api/v1/loans/external-id/{external_id}",
                "/api/v1/loans/external-id/{pending_external_id}",
                "/api/v1/loans/external-id/NO-SUCH-LOAN",
            ),
        )
    ],
    # A borrower's stops (DESIGN §12): {borrower_id} / {borrower_external_id} is Baseline B's
    # borrower (external id CUST-B).
    *[
        row
        for template, url, unknown in (
            (
                "/api/v1/borrowers/{borrower_id}",
                "/api/v1/borrowers/{borrower_id}",
                (f"/api/v1/borrowers/{UNKNOWN}", f"/api/v1/borrowers/{HUGE_ID}"),
            ),
            (
                "/api/v1/borrowers/external-id/{external_id}",
                "/api/v1/borrowers/external-id/{borrower_external_id}",
                ("/api/v1/borrowers/external-id/NO-SUCH-LOAN",),
            ),
        )
        for row in (
            Endpoint(
                "POST",
                template + "/cancel-servicing",
                url + "/cancel-servicing",
                {"reason": "BANKRUPTCY"},
                {"reason": "reason"},
                valid_status=200,
                unknown_ids=tuple(u + "/cancel-servicing" for u in unknown),
            ),
            Endpoint(
                "POST",
                template + "/cancel-communications",
                url + "/cancel-communications",
                {},
                has_body=False,
                valid_status=200,
                unknown_ids=tuple(u + "/cancel-communications" for u in unknown),
            ),
        )
    ],
    Endpoint(
        "POST",
        "/api/v1/autopays/{autopay_id}/cancel",
        f"/api/v1/autopays/{UNKNOWN}/cancel",  # the body is checked before the id
        {"reason": "the borrower called"},
        {"reason": "text500"},
        unknown_ids=(f"/api/v1/autopays/{UNKNOWN}/cancel", f"/api/v1/autopays/{HUGE_ID}/cancel"),
    ),
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
ENUM_KINDS = {
    "frequency",
    "calc",
    "days",
    "rounding",
    "termination",
    "engine",
    "method",
    "channel",
    "reason",
    "roll_method",
}


def cases(e: Endpoint):
    """``(label, url, body, expected status)`` for one endpoint."""
    if e.has_body:
        for raw in MALFORMED:
            yield f"malformed {raw[:12]!r}", e.url, raw, 400
        for label, raw, status in HOSTILE:
            yield label, e.url, raw, status
        for path, kind in e.kinds.items():
            if kind in ENUM_KINDS:  # a lone surrogate or a NUL where a choice is expected
                for value in ("\ud800", "a\x00b"):
                    body = json.dumps(_set(e.valid, path, value))
                    yield f"{path}={value!r}", e.url, body, 400
        for path in e.required:
            yield f"missing {path}", e.url, json.dumps(_set(e.valid, path, _MISSING)), 400
        for path, kind in e.kinds.items():
            for index, value in enumerate(BAD[kind]):
                body = json.dumps(_set(e.valid, path, value))
                yield f"{path}={kind}[{index}] {str(value)[:20]!r}", e.url, body, 400
    for url in e.unknown_ids:
        yield f"unknown id {url}", url, json.dumps(e.valid), 404
        if str(UNKNOWN) in url:  # a non-numeric id: no route matches, still the JSON 404
            yield f"non-numeric id {url}", url.replace(str(UNKNOWN), "abc"), "{}", 404
    for url in e.unknown_ids[:1]:  # NUL in the path
        nul = url.replace(str(UNKNOWN), "%00").replace("NO-SUCH-LOAN", "a%00b")
        if nul != url:
            yield f"NUL in the path {nul}", nul, "{}", 400
    for label, url, body, status in e.extra:
        yield label, url, json.dumps(body), status


@pytest.fixture
def ids(baseline_b, operator):
    """Baseline B (active, serviced) with one pending and one cancelled item of each kind, a
    repayment with an external id, and a PENDING loan."""
    pending = make_loan(external_id="PENDING-1")
    closed = make_active_loan(external_id="CLOSED-1", loan_amount=Decimal("100.00"))
    post_payoff(
        loan=closed,
        on=date(2026, 2, 18),
        amount=selectors.payoff(closed, on=date(2026, 2, 18)).total,
        actor=operator,
    )
    repayment = baseline_b.transactions.filter(type="REPAYMENT").order_by("id").first()
    repayment.external_id = "USED-TX-1"
    repayment.save(update_fields=["external_id"])
    items = {}
    for prefix in ("", "cancelled_"):
        payment = servicing_services.schedule_payment(
            loan=baseline_b,
            amount=Decimal("20.00"),
            scheduled_date=date(2026, 3, 2),
            actor=operator,
        )
        communication = servicing_services.schedule_communication(
            loan=baseline_b,
            channel="EMAIL",
            scheduled_at=datetime(2026, 3, 2, 15, tzinfo=UTC),
            actor=operator,
        )
        schedule = servicing_services.create_communication_schedule(
            loan=baseline_b,
            channel="SMS",
            every_days=7,
            start_date=date(2026, 3, 2),
            occurrences=2,
            actor=operator,
        )
        items |= {
            f"{prefix}payment_id": payment.pk,
            f"{prefix}communication_id": communication.pk,
            f"{prefix}comm_schedule_id": schedule.pk,
        }
    servicing_services.cancel_scheduled_payment(
        payment_id=items["cancelled_payment_id"], actor=operator
    )
    servicing_services.cancel_scheduled_communication(
        communication_id=items["cancelled_communication_id"], actor=operator
    )
    servicing_services.cancel_communication_schedule(
        schedule_id=items["cancelled_comm_schedule_id"], actor=operator
    )
    Borrower.objects.filter(pk=baseline_b.borrower_id).update(external_id="CUST-B")
    return {
        "loan_id": baseline_b.pk,
        "external_id": baseline_b.external_id,
        "borrower_id": baseline_b.borrower_id,
        "borrower_external_id": "CUST-B",
        "tx_id": repayment.pk,
        "setup_id": pending.setup_id,
        "pending_loan_id": pending.pk,
        "pending_external_id": pending.external_id,
        "closed_loan_id": closed.pk,
        "closed_external_id": closed.external_id,
        **items,
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
            ScheduledPayment,
            ScheduledCommunication,
            CommunicationSchedule,
            Modification,
        )
    } | {
        "loans": list(
            Loan.objects.order_by("id").values_list(
                "status", "sub_status", "servicing_status", "modification_in_progress", "setup_id"
            )
        ),
        "items": [
            list(model.objects.order_by("id").values_list("status", flat=True))
            for model in (ScheduledPayment, ScheduledCommunication, CommunicationSchedule)
        ],
        "business_date": list(BusinessDate.objects.values_list("date", flat=True)),
        "transactions": list(
            Transaction.objects.order_by("id").values_list(
                "reversed", "principal_portion", "interest_portion"
            )
        ),
        "setups": list(
            LoanSetup.objects.order_by("id").values_list(
                "loan_amount", "loan_term", "payment", "active"
            )
        ),
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
            for name, value in ids.items():  # ids named in a body, e.g. "{tx_id}"
                body = body.replace(f'"{{{name}}}"', json.dumps(str(value)))
            problems = check(client, endpoint, url.format(**ids), body, status)
            transaction.set_rollback(True)
        failures += [f"{label}: {p}" for p in problems]
    assert count > 0
    assert failures == []


@pytest.mark.parametrize(
    "endpoint",
    [e for e in ENDPOINTS if e.valid_status],
    ids=[f"{e.method} {e.url}" for e in ENDPOINTS if e.valid_status],
)
def test_the_valid_body_is_accepted(request, ids, endpoint):
    """So each bad case is refused for its one bad value, not for the rest of the body."""
    client = request.getfixturevalue(endpoint.client)
    response = getattr(client, endpoint.method.lower())(
        endpoint.url.format(**ids), json.dumps(endpoint.valid), content_type="application/json"
    )
    assert response.status_code == endpoint.valid_status, response.content[:300]


def test_every_write_operation_has_a_row():
    covered = {(e.method, e.template) for e in ENDPOINTS}
    writes = {(m, p) for m, p in api_operations() if m in UNSAFE}
    assert writes - covered == set()
