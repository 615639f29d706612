"""Finosu's customer-level stops (DESIGN §12, issue 13): cancel servicing of every loan of a
borrower, and cancel every communication of a borrower; the set-based bulk cancel (issue 14).

Each loan gets seed 000's mix (``add_seed_000_mix``): 3 payments, 5 calls, 2 emails, 3 SMS and
one schedule per channel; ``add_noise`` adds items in every other status, never counted."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loans.exceptions import InvalidRequestError, NotFoundError
from loans.models import Borrower, LoanEvent, ServicingStatus, StopServicingReason
from servicing import services
from servicing.models import (
    Autopay,
    AutopayStatus,
    CommunicationSchedule,
    ScheduledCommunication,
    ScheduledPayment,
    ServicingEvent,
)
from tests.factories import make_active_loan, set_business_date
from tests.servicing.helpers import AS_OF, add_noise, add_seed_000_mix

pytestmark = pytest.mark.django_db

SEED_000_SUMS_FOR_3 = {
    "cancelled_scheduled_payments": 9,
    "cancelled_call_schedules": 3,
    "cancelled_email_schedules": 3,
    "cancelled_sms_schedules": 3,
    "cancelled_calls": 15,
    "cancelled_emails": 6,
    "cancelled_sms": 9,
}


def borrower_with_loans(operator, n: int, *, mix: bool = True, external_id="CUST-1"):
    set_business_date(AS_OF)
    borrower = Borrower.objects.create(
        first_name="Grace",
        last_name="Hopper",
        email="grace@example.com",
        phone="+15550100",
        timezone="America/New_York",
        external_id=external_id,
    )
    loans = []
    for _ in range(n):
        loan = make_active_loan(actor=operator, borrower=borrower, as_of=AS_OF)
        if mix:
            add_seed_000_mix(loan, operator)
            add_noise(loan)
        loans.append(loan)
    return borrower, loans


def statuses():
    return [
        sorted(model.objects.values_list("pk", "status"))
        for model in (ScheduledPayment, ScheduledCommunication, CommunicationSchedule, Autopay)
    ]


# ------------------------------------------------------------------ cancel servicing


def test_three_loans_sum_to_seed_000s_counts_times_three(operator):
    borrower, loans = borrower_with_loans(operator, 3)
    Autopay.objects.create(
        loan=loans[0], method="ACH", amount_type="SCHEDULED_PAYMENT", start_date=AS_OF
    )

    result = services.cancel_borrower_servicing(
        borrower.pk, actor=operator, reason=StopServicingReason.BANKRUPTCY
    )

    assert result.loans_updated == 3
    assert result.reason == "BANKRUPTCY"
    assert result.totals.counts() == SEED_000_SUMS_FOR_3
    for loan in loans:
        loan.refresh_from_db()
        assert (loan.servicing_status, loan.stop_servicing_reason) == (
            ServicingStatus.NOT_SERVICING,
            "BANKRUPTCY",
        )
        assert loan.servicing_changed_by == operator
        assert result.bulk.per_loan[loan.pk].counts() == {
            k: v // 3 for k, v in SEED_000_SUMS_FOR_3.items()
        }
    assert ScheduledPayment.objects.filter(status="PENDING").count() == 0
    assert ScheduledCommunication.objects.filter(status="PENDING").count() == 0
    assert CommunicationSchedule.objects.filter(status="ACTIVE").count() == 0
    assert list(Autopay.objects.values_list("status", flat=True)) == [AutopayStatus.CANCELLED]
    # The noise is untouched: 1 cancelled earlier per loan, and the 9 just cancelled.
    assert ScheduledPayment.objects.filter(status="CANCELLED").count() == 3 + 9
    # One servicing event and one audit row per loan, as cancel_servicing writes.
    events = ServicingEvent.objects.filter(kind="CANCEL").order_by("loan_id")
    assert [(e.loan_id, e.reason, e.cancelled_calls) for e in events] == [
        (loan.pk, "BANKRUPTCY", 5) for loan in loans
    ]
    audit = LoanEvent.objects.filter(command="cancel_servicing").order_by("loan_id")
    assert [(a.loan_id, a.actor_id, a.reason) for a in audit] == [
        (loan.pk, operator.pk, "BANKRUPTCY") for loan in loans
    ]
    assert audit[0].changes["servicing_status"] == ["ACTIVE", "NOT_SERVICING"]
    assert audit[0].result["cancelled_calls"] == 5


def test_a_loan_already_stopped_is_not_updated_and_keeps_its_reason(operator):
    borrower, (first, second) = borrower_with_loans(operator, 2)
    services.cancel_servicing(loan=first, reason="DECEASED", actor=operator)
    events = LoanEvent.objects.count()

    result = services.cancel_borrower_servicing(borrower, actor=operator, reason="BANKRUPTCY")

    assert result.loans_updated == 1
    assert result.bulk.updated == [second.pk]
    assert result.totals.cancelled_calls == 5  # the second loan's only
    first.refresh_from_db()
    assert first.stop_servicing_reason == "DECEASED"
    assert LoanEvent.objects.count() == events + 1


def test_an_invalid_reason_is_400_and_nothing_changes(operator):
    borrower, _ = borrower_with_loans(operator, 2)
    before = statuses()
    with pytest.raises(InvalidRequestError) as caught:
        services.cancel_borrower_servicing(borrower.pk, actor=operator, reason="BORED")
    assert caught.value.code == "invalid_reason"
    assert statuses() == before
    assert ServicingEvent.objects.count() == 0


def test_an_unknown_borrower_is_404(operator):
    with pytest.raises(NotFoundError) as caught:
        services.cancel_borrower_servicing(999999, actor=operator)
    assert caught.value.code == "borrower_not_found"


def test_a_borrower_without_loans_answers_zeros(operator):
    borrower, _ = borrower_with_loans(operator, 0)
    result = services.cancel_borrower_servicing(borrower, actor=operator)
    assert result.loans_updated == 0
    assert result.totals.total == 0


def test_the_query_count_does_not_depend_on_the_number_of_loans(
    operator, django_assert_max_num_queries
):
    few, _ = borrower_with_loans(operator, 2, external_id="FEW")
    many, _ = borrower_with_loans(operator, 12, external_id="MANY")
    with CaptureQueriesContext(connection) as for_two:
        services.cancel_borrower_servicing(few, actor=operator)
    with django_assert_max_num_queries(len(for_two)):
        result = services.cancel_borrower_servicing(many, actor=operator)
    assert result.loans_updated == 12
    assert len(for_two) <= 16


def test_bulk_cancel_of_many_loans_is_set_based(operator, django_assert_max_num_queries):
    _, loans = borrower_with_loans(operator, 30, mix=False)
    for loan in loans:
        ScheduledPayment.objects.create(loan=loan, amount=Decimal("5.00"), scheduled_date=AS_OF)
    with django_assert_max_num_queries(16):
        result = services.cancel_servicing_bulk(
            loan_ids=[loan.pk for loan in loans], reason="SOLD_OFF", actor=operator
        )
    assert result.loans_updated == 30
    assert result.totals.cancelled_scheduled_payments == 30
    assert ServicingEvent.objects.filter(reason="SOLD_OFF").count() == 30


def _audit(loan):
    """A loan's audit rows without what differs from loan to loan (ids, timestamps)."""
    event = LoanEvent.objects.get(loan=loan, command="cancel_servicing")
    servicing = ServicingEvent.objects.get(loan=loan)
    return (
        (event.command, event.actor_id, event.business_date, event.reason),
        (event.input, event.changes, event.result),
        {
            f.attname: getattr(servicing, f.attname)
            for f in ServicingEvent._meta.concrete_fields
            if f.attname not in ("id", "loan_id", "at")
        },
    )


def test_the_set_based_audit_rows_are_the_ones_cancel_servicing_writes(operator):
    """The bulk cancel writes its audit rows with ``INSERT ... SELECT`` (issue 14): the same
    content as the one-loan command, a previous stop reason included."""
    _, (one, bulk, resumed) = borrower_with_loans(operator, 3)
    services.cancel_servicing(loan=resumed, reason="DECEASED", actor=operator)
    services.resume_servicing(loan=resumed, actor=operator)
    one_result = services.cancel_servicing(loan=one, reason="BANKRUPTCY", actor=operator)

    result = services.cancel_servicing_bulk(
        loan_ids=[bulk.pk, resumed.pk], reason="BANKRUPTCY", actor=operator
    )

    assert _audit(bulk) == _audit(one)
    assert result.per_loan[bulk.pk].counts() == one_result.counts()
    assert result.per_loan[bulk.pk].counts() == {k: v // 3 for k, v in SEED_000_SUMS_FOR_3.items()}
    audit = LoanEvent.objects.get(loan=resumed, command="cancel_servicing", reason="BANKRUPTCY")
    assert audit.changes == {
        "servicing_status": ["ACTIVE", "NOT_SERVICING"],
        "stop_servicing_reason": [None, "BANKRUPTCY"],
    }
    assert [(loan.pk, loan.servicing_status, str(loan)) for loan in result.loans] == [
        (bulk.pk, "NOT_SERVICING", str(bulk)),
        (resumed.pk, "NOT_SERVICING", str(resumed)),
    ]


# ------------------------------------------------------------------ cancel communications


def test_cancel_communications_leaves_servicing_and_payments_alone(operator):
    borrower, loans = borrower_with_loans(operator, 3)

    result = services.cancel_borrower_communications(borrower.pk, actor=operator)

    totals = result.totals
    assert (
        totals.cancelled_calls,
        totals.cancelled_emails,
        totals.cancelled_sms,
        totals.cancelled_call_schedules,
        totals.cancelled_email_schedules,
        totals.cancelled_sms_schedules,
        totals.cancelled_scheduled_payments,
        totals.total,
    ) == (15, 6, 9, 3, 3, 3, 0, 39)
    for loan in loans:
        loan.refresh_from_db()
        assert (loan.servicing_status, loan.stop_servicing_reason) == ("ACTIVE", None)
    assert ScheduledPayment.objects.filter(status="PENDING").count() == 9
    assert ScheduledCommunication.objects.filter(status="PENDING").count() == 0
    assert CommunicationSchedule.objects.filter(status="ACTIVE").count() == 0
    audit = LoanEvent.objects.filter(command="cancel_communications").order_by("loan_id")
    assert [(a.loan_id, a.result["cancelled_calls"]) for a in audit] == [
        (loan.pk, 5) for loan in loans
    ]
    # Again: nothing is left, zeros, and the request is recorded once more per loan.
    again = services.cancel_borrower_communications(borrower, actor=operator)
    assert again.totals.total == 0
    assert LoanEvent.objects.filter(command="cancel_communications").count() == 6


def test_cancel_communications_of_an_unknown_borrower_is_404(operator):
    with pytest.raises(NotFoundError):
        services.cancel_borrower_communications(424242, actor=operator)
