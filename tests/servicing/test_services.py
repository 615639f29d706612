"""The servicing commands: every guard (and that nothing was written after a refusal), every
effect, the audit rows. Seed 000's counts exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from loans.exceptions import ConflictError, InvalidRequestError, NotFoundError
from loans.models import LoanEvent, LoanStatus, ServicingStatus, StopServicingReason
from servicing import services
from servicing.models import (
    Channel,
    CommunicationSchedule,
    CommunicationScheduleStatus,
    CommunicationStatus,
    ScheduledCommunication,
    ScheduledPayment,
    ScheduledPaymentStatus,
    ServicingEvent,
    ServicingEventKind,
)
from servicing.selectors import pending_counts
from tests.factories import make_loan
from tests.servicing.helpers import AS_OF, SEED_000_COUNTS, add_noise, add_seed_000_mix, at

pytestmark = pytest.mark.django_db


def snapshot() -> tuple:
    """Everything a servicing command may write, to prove a refusal wrote nothing."""
    from loans.models import Loan

    return (
        list(
            Loan.objects.order_by("pk").values_list(
                "pk", "servicing_status", "stop_servicing_reason"
            )
        ),
        list(ScheduledPayment.objects.order_by("pk").values_list("pk", "status")),
        list(ScheduledCommunication.objects.order_by("pk").values_list("pk", "status")),
        list(CommunicationSchedule.objects.order_by("pk").values_list("pk", "status")),
        ServicingEvent.objects.count(),
        LoanEvent.objects.count(),
    )


# ------------------------------------------------------------------ cancel_servicing


def test_cancel_servicing_counts_seed_000_exactly(seeded_loan, other_loan, operator):
    result = services.cancel_servicing(loan=seeded_loan, reason="PAID_OFF", actor=operator)

    assert result.counts() == SEED_000_COUNTS
    assert result.total == 16
    assert result.changed is True
    seeded_loan.refresh_from_db()
    assert seeded_loan.servicing_status == ServicingStatus.NOT_SERVICING
    assert seeded_loan.stop_servicing_reason == StopServicingReason.PAID_OFF
    assert seeded_loan.servicing_changed_by == operator
    assert seeded_loan.servicing_changed_at is not None
    # Nothing pending is left on the loan; the noise kept its status.
    assert not ScheduledPayment.objects.filter(loan=seeded_loan, status="PENDING").exists()
    assert not ScheduledCommunication.objects.filter(loan=seeded_loan, status="PENDING").exists()
    assert not CommunicationSchedule.objects.filter(loan=seeded_loan, status="ACTIVE").exists()
    assert ScheduledPayment.objects.filter(loan=seeded_loan, status="PROCESSED").count() == 1
    assert ScheduledPayment.objects.filter(loan=seeded_loan, status="FAILED").count() == 1
    assert ScheduledPayment.objects.filter(loan=seeded_loan, status="CANCELLED").count() == 4
    assert ScheduledCommunication.objects.filter(loan=seeded_loan, status="SENT").count() == 3
    assert ScheduledCommunication.objects.filter(loan=seeded_loan, status="FAILED").count() == 3
    assert CommunicationSchedule.objects.filter(loan=seeded_loan, status="COMPLETED").count() == 3
    # Who, when and why on each cancelled row.
    cancelled = ScheduledPayment.objects.filter(
        loan=seeded_loan, status="CANCELLED", cancelled_by=operator
    )
    assert cancelled.count() == 3
    assert {p.cancel_reason for p in cancelled} == {"Servicing cancelled: PAID_OFF"}
    # The other loan is untouched.
    assert pending_counts([other_loan.pk])[other_loan.pk].total == 16
    other_loan.refresh_from_db()
    assert other_loan.servicing_status == ServicingStatus.ACTIVE


def test_cancel_servicing_records_servicing_event_and_loan_event(seeded_loan, operator):
    services.cancel_servicing(loan=seeded_loan, reason="BANKRUPTCY", actor=operator)

    event = ServicingEvent.objects.get(loan=seeded_loan)
    assert event.kind == ServicingEventKind.CANCEL
    assert event.actor == operator
    assert event.reason == "BANKRUPTCY"
    assert event.business_date == AS_OF
    assert {name: getattr(event, name) for name in SEED_000_COUNTS} == SEED_000_COUNTS
    audit = LoanEvent.objects.get(loan=seeded_loan, command="cancel_servicing")
    assert audit.actor == operator
    assert audit.reason == "BANKRUPTCY"
    assert audit.business_date == AS_OF
    assert audit.changes == {
        "servicing_status": ["ACTIVE", "NOT_SERVICING"],
        "stop_servicing_reason": [None, "BANKRUPTCY"],
    }
    assert audit.result == SEED_000_COUNTS


def test_cancel_servicing_defaults_to_api_request(loan, operator):
    result = services.cancel_servicing(loan=loan, actor=operator)
    assert result.loan.stop_servicing_reason == "API_REQUEST"
    assert result.total == 0


@pytest.mark.parametrize("reason", StopServicingReason.values)
def test_every_one_of_the_21_reasons_is_accepted(loan, operator, reason):
    assert len(StopServicingReason.values) == 21
    result = services.cancel_servicing(loan=loan, reason=reason, actor=operator)
    assert result.loan.stop_servicing_reason == reason


@pytest.mark.parametrize("reason", ["paid_off", "", "NOPE", None, 3])
def test_invalid_reason_is_refused_before_anything_changes(seeded_loan, operator, reason):
    before = snapshot()
    with pytest.raises(InvalidRequestError) as info:
        services.cancel_servicing(loan=seeded_loan, reason=reason, actor=operator)
    assert info.value.code == "invalid_reason"
    assert info.value.errors[0]["validValues"] == StopServicingReason.values
    assert "PAID_OFF" in info.value.message and "LMS_CLOSED" in info.value.message
    assert info.value.errors[0]["field"] == "reason"
    assert snapshot() == before


def test_cancel_servicing_is_idempotent_and_keeps_the_first_reason(seeded_loan, operator):
    services.cancel_servicing(loan=seeded_loan, reason="FRAUD_CLAIM", actor=operator)
    before = snapshot()

    again = services.cancel_servicing(loan=seeded_loan, reason="DECEASED", actor=operator)

    assert again.changed is False
    assert again.counts() == dict.fromkeys(SEED_000_COUNTS, 0)
    assert again.loan.servicing_status == ServicingStatus.NOT_SERVICING
    assert again.loan.stop_servicing_reason == "FRAUD_CLAIM"
    assert snapshot() == before


def test_cancel_servicing_unknown_loan_is_not_found(as_of, operator):
    with pytest.raises(NotFoundError) as info:
        services.cancel_servicing(loan=999999, actor=operator)
    assert info.value.code == "loan_not_found"


def test_cancel_servicing_on_a_pending_loan(as_of, operator):
    loan = make_loan(actor=operator)
    result = services.cancel_servicing(loan=loan, reason="MISTAKE", actor=operator)
    assert result.loan.servicing_status == ServicingStatus.NOT_SERVICING
    assert result.loan.status == LoanStatus.PENDING


# ------------------------------------------------------------------ resume_servicing


def test_resume_servicing_reactivates_without_resurrecting(seeded_loan, operator):
    services.cancel_servicing(loan=seeded_loan, reason="DEBT_DISPUTE", actor=operator)

    loan = services.resume_servicing(loan=seeded_loan, note="dispute settled", actor=operator)

    assert loan.servicing_status == ServicingStatus.ACTIVE
    assert loan.stop_servicing_reason is None
    assert pending_counts([loan.pk])[loan.pk].total == 0
    event = ServicingEvent.objects.filter(loan=loan).first()
    assert event.kind == ServicingEventKind.RESUME
    assert event.note == "dispute settled"
    assert event.previous_reason == "DEBT_DISPUTE"
    audit = LoanEvent.objects.filter(loan=loan, command="resume_servicing").get()
    assert audit.reason == "dispute settled"
    assert audit.changes == {
        "servicing_status": ["NOT_SERVICING", "ACTIVE"],
        "stop_servicing_reason": ["DEBT_DISPUTE", None],
    }
    # Scheduling works again, and a new cancel counts only the new item.
    services.schedule_payment(
        loan=loan, amount=Decimal("5.00"), scheduled_date=AS_OF, actor=operator
    )
    again = services.cancel_servicing(loan=loan, actor=operator)
    assert again.cancelled_scheduled_payments == 1
    assert again.total == 1


def test_resume_servicing_of_a_serviced_loan_is_a_conflict(loan, operator):
    before = snapshot()
    with pytest.raises(ConflictError) as info:
        services.resume_servicing(loan=loan, note="x", actor=operator)
    assert info.value.code == "loan_already_servicing"
    assert snapshot() == before


# ------------------------------------------------------------------ scheduling guards


def test_nothing_can_be_scheduled_while_not_servicing(loan, operator):
    services.cancel_servicing(loan=loan, reason="SOLD_OFF", actor=operator)
    before = snapshot()
    attempts = [
        lambda: services.schedule_payment(
            loan=loan, amount=Decimal("1.00"), scheduled_date=AS_OF, actor=operator
        ),
        lambda: services.schedule_communication(
            loan=loan, channel=Channel.SMS, scheduled_at=at(1), actor=operator
        ),
        lambda: services.create_communication_schedule(
            loan=loan,
            channel=Channel.EMAIL,
            every_days=3,
            start_date=AS_OF,
            occurrences=2,
            actor=operator,
        ),
    ]
    for attempt in attempts:
        with pytest.raises(ConflictError) as info:
            attempt()
        assert info.value.code == "loan_not_servicing"
    assert snapshot() == before


@pytest.mark.parametrize(
    ("flag", "channel"),
    [("do_not_call", "CALL"), ("do_not_email", "EMAIL"), ("do_not_sms", "SMS")],
)
def test_do_not_contact_blocks_that_channel_only(loan, operator, flag, channel):
    setattr(loan.borrower, flag, True)
    loan.borrower.save()
    before = snapshot()
    with pytest.raises(ConflictError) as info:
        services.schedule_communication(
            loan=loan, channel=channel, scheduled_at=at(2), actor=operator
        )
    assert info.value.code == "do_not_contact"
    with pytest.raises(ConflictError) as info:
        services.create_communication_schedule(
            loan=loan,
            channel=channel,
            every_days=1,
            start_date=AS_OF,
            occurrences=3,
            actor=operator,
        )
    assert info.value.code == "do_not_contact"
    assert snapshot() == before
    other = next(c for c in Channel.values if c != channel)
    services.schedule_communication(loan=loan, channel=other, scheduled_at=at(2), actor=operator)


def test_no_email_address_blocks_email(loan, operator):
    loan.borrower.email = ""
    loan.borrower.save()
    with pytest.raises(ConflictError) as info:
        services.schedule_communication(
            loan=loan, channel="EMAIL", scheduled_at=at(2), actor=operator
        )
    assert info.value.code == "no_contact_address"


def test_payment_needs_an_active_loan(as_of, operator):
    pending = make_loan(actor=operator)
    with pytest.raises(ConflictError) as info:
        services.schedule_payment(
            loan=pending, amount=Decimal("1.00"), scheduled_date=AS_OF, actor=operator
        )
    assert info.value.code == "loan_not_active"
    # Communications may be set up for a pending loan (onboarding).
    services.schedule_communication(
        loan=pending, channel="EMAIL", scheduled_at=at(1), actor=operator
    )


def test_nothing_is_scheduled_on_a_closed_loan(loan, operator):
    from loans.models import Loan

    Loan.objects.filter(pk=loan.pk).update(status=LoanStatus.CLOSED)
    with pytest.raises(ConflictError) as info:
        services.schedule_payment(
            loan=loan, amount=Decimal("1.00"), scheduled_date=AS_OF, actor=operator
        )
    assert info.value.code == "loan_closed"


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"amount": Decimal("0")}, "invalid_request", "amount"),
        ({"amount": Decimal("-1.00")}, "invalid_request", "amount"),
        ({"amount": Decimal("1.001")}, "invalid_request", "amount"),
        ({"amount": 10.5}, "invalid_request", "amount"),
        ({"scheduled_date": date(2026, 2, 17)}, "date_in_past", "scheduledDate"),
        ({"method": "CASH"}, "invalid_request", "method"),
    ],
)
def test_schedule_payment_input_guards(loan, operator, kwargs, code, field):
    args = {"amount": Decimal("10.00"), "scheduled_date": AS_OF, "method": "ACH", **kwargs}
    before = snapshot()
    with pytest.raises(InvalidRequestError) as info:
        services.schedule_payment(loan=loan, actor=operator, **args)
    assert info.value.code == code
    assert info.value.errors[0]["field"] == field
    assert snapshot() == before


def test_schedule_payment_on_the_business_date(loan, operator):
    payment = services.schedule_payment(
        loan=loan, amount=Decimal("12.34"), scheduled_date=AS_OF, method="CARD", actor=operator
    )
    assert payment.status == ScheduledPaymentStatus.PENDING
    assert payment.amount == Decimal("12.34")
    assert payment.created_by == operator
    assert LoanEvent.objects.filter(loan=loan, command="schedule_payment").count() == 1


def test_communication_in_the_past_for_the_borrower_is_refused(loan, operator):
    # 2026-02-18 03:00 UTC is still 2026-02-17 in New York: before the business date.
    with pytest.raises(InvalidRequestError) as info:
        services.schedule_communication(
            loan=loan,
            channel="SMS",
            scheduled_at=datetime(2026, 2, 18, 3, 0, tzinfo=UTC),
            actor=operator,
        )
    assert info.value.code == "date_in_past"


def test_naive_scheduled_at_is_refused(loan, operator):
    with pytest.raises(InvalidRequestError) as info:
        services.schedule_communication(
            loan=loan, channel="SMS", scheduled_at=datetime(2026, 3, 1, 10), actor=operator
        )
    assert info.value.errors[0]["code"] == "naive_datetime"


# ------------------------------------------------------------------ communication schedules


def test_schedule_generates_communications_at_ten_local_time_for_occurrences(loan, operator):
    schedule = services.create_communication_schedule(
        loan=loan,
        channel="CALL",
        every_days=10,
        start_date=date(2026, 3, 1),
        occurrences=3,
        subject="Reminder",
        body="Script",
        actor=operator,
    )
    rows = list(schedule.communications.order_by("scheduled_at"))
    ny = ZoneInfo("America/New_York")
    assert [r.scheduled_at.astimezone(ny) for r in rows] == [
        datetime(2026, 3, 1, 10, tzinfo=ny),
        datetime(2026, 3, 11, 10, tzinfo=ny),  # after the DST change: still 10:00 local
        datetime(2026, 3, 21, 10, tzinfo=ny),
    ]
    assert rows[0].scheduled_at == datetime(2026, 3, 1, 15, tzinfo=UTC)
    assert rows[1].scheduled_at == datetime(2026, 3, 11, 14, tzinfo=UTC)
    assert {(r.channel, r.status, r.subject, r.body) for r in rows} == {
        ("CALL", "PENDING", "Reminder", "Script")
    }
    assert schedule.status == CommunicationScheduleStatus.ACTIVE


def test_schedule_until_an_end_date_is_inclusive(loan, operator):
    schedule = services.create_communication_schedule(
        loan=loan,
        channel="SMS",
        every_days=7,
        start_date=date(2026, 3, 1),
        end_date=date(2026, 3, 15),
        actor=operator,
    )
    dates = [c.scheduled_at.date() for c in schedule.communications.order_by("scheduled_at")]
    assert dates == [date(2026, 3, 1), date(2026, 3, 8), date(2026, 3, 15)]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"occurrences": None}, "end_or_occurrences"),
        ({"end_date": date(2026, 4, 1)}, "end_or_occurrences"),
        ({"every_days": 0}, "invalid_schedule"),
        ({"occurrences": 0}, "min_value"),
        ({"occurrences": 501}, "too_many_occurrences"),
        ({"occurrences": None, "end_date": date(2026, 2, 1)}, "end_before_start"),
        ({"start_date": date(2026, 2, 1)}, "date_in_past"),
        ({"channel": "FAX"}, "invalid_request"),
        # the third would fall on 10000-01-07: a 400, not an OverflowError (500)
        ({"start_date": date(9999, 12, 25), "every_days": 7, "occurrences": 3}, "out_of_range"),
    ],
)
def test_schedule_guards(loan, operator, kwargs, code):
    args = {
        "channel": "EMAIL",
        "every_days": 1,
        "start_date": AS_OF,
        "occurrences": 2,
        **kwargs,
    }
    before = snapshot()
    with pytest.raises(InvalidRequestError) as info:
        services.create_communication_schedule(loan=loan, actor=operator, **args)
    assert info.value.code == code
    assert snapshot() == before


# ------------------------------------------------------------------ cancel one item


def test_cancel_one_payment(loan, operator):
    payment = services.schedule_payment(
        loan=loan, amount=Decimal("1.00"), scheduled_date=AS_OF, actor=operator
    )
    cancelled = services.cancel_scheduled_payment(
        payment_id=payment.pk, reason="customer asked", actor=operator
    )
    assert cancelled.status == ScheduledPaymentStatus.CANCELLED
    assert cancelled.cancelled_by == operator
    assert cancelled.cancel_reason == "customer asked"
    before = snapshot()
    with pytest.raises(ConflictError) as info:
        services.cancel_scheduled_payment(payment_id=payment.pk, actor=operator)
    assert info.value.code == "not_pending"
    assert snapshot() == before
    with pytest.raises(NotFoundError):
        services.cancel_scheduled_payment(payment_id=987654, actor=operator)


def test_cancel_one_communication(loan, operator):
    sms = services.schedule_communication(
        loan=loan, channel="SMS", scheduled_at=at(3), actor=operator
    )
    assert (
        services.cancel_scheduled_communication(communication_id=sms.pk, actor=operator).status
        == CommunicationStatus.CANCELLED
    )
    with pytest.raises(ConflictError):
        services.cancel_scheduled_communication(communication_id=sms.pk, actor=operator)


def test_cancel_a_schedule_cancels_its_pending_communications_only(loan, operator):
    schedule = services.create_communication_schedule(
        loan=loan, channel="EMAIL", every_days=1, start_date=AS_OF, occurrences=4, actor=operator
    )
    first = schedule.communications.order_by("scheduled_at").first()
    ScheduledCommunication.objects.filter(pk=first.pk).update(status=CommunicationStatus.SENT)
    one_off = services.schedule_communication(
        loan=loan, channel="EMAIL", scheduled_at=at(5), actor=operator
    )

    result = services.cancel_communication_schedule(schedule_id=schedule.pk, actor=operator)

    assert result.cancelled_communications == 3
    assert result.schedule.status == CommunicationScheduleStatus.CANCELLED
    first.refresh_from_db()
    one_off.refresh_from_db()
    assert first.status == CommunicationStatus.SENT
    assert one_off.status == CommunicationStatus.PENDING
    with pytest.raises(ConflictError) as info:
        services.cancel_communication_schedule(schedule_id=schedule.pk, actor=operator)
    assert info.value.code == "not_active"


def test_pending_counts_match_what_cancel_servicing_cancels(seeded_loan, other_loan, operator):
    counts = pending_counts([seeded_loan.pk, other_loan.pk])
    assert {n: getattr(counts[seeded_loan.pk], n) for n in SEED_000_COUNTS} == SEED_000_COUNTS
    result = services.cancel_servicing(loan=seeded_loan, actor=operator)
    assert result.counts() == SEED_000_COUNTS


def test_helpers_make_a_fresh_mix(loan, operator):
    add_seed_000_mix(loan, operator)
    add_noise(loan)
    assert pending_counts([loan.pk])[loan.pk].total == 16
