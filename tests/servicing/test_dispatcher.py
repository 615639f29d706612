"""The dispatcher (DESIGN §11): payments, communications, contact window, Reg F, retries,
providers, reconciliation of IN_FLIGHT items."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from loans.models import Borrower, Transaction, TransactionType
from servicing import dispatcher, services
from servicing.models import (
    AttemptStatus,
    CommunicationSchedule,
    DispatchAttempt,
    OutboxMessage,
    ScheduledCommunication,
    ScheduledPayment,
)
from servicing.providers import OUTBOX_TEST_INVALID_NUMBER
from tests.factories import make_active_loan, set_business_date

AS_OF = date(2026, 2, 18)
NOON_NY = datetime(2026, 2, 18, 17, 0, tzinfo=UTC)  # 12:00 in New York


@pytest.fixture
def loan(db, operator):
    set_business_date(AS_OF)
    return make_active_loan(actor=operator)  # 1,000 at 12 %, borrower in New York


def pay(loan, amount: str, on: date = AS_OF) -> ScheduledPayment:
    return ScheduledPayment.objects.create(loan=loan, amount=Decimal(amount), scheduled_date=on)


def message(loan, channel: str, at: datetime) -> ScheduledCommunication:
    return ScheduledCommunication.objects.create(
        loan=loan, channel=channel, scheduled_at=at, subject="Hello", body="Your loan"
    )


# -------------------------------------------------------------------------------- payments


def test_due_payment_posts_a_repayment_through_the_command(loan):
    item = pay(loan, "50.00")
    later = pay(loan, "50.00", on=AS_OF + timedelta(days=1))  # not due yet
    result = dispatcher.dispatch_due(now=NOON_NY)
    assert (result.claimed, result.executed, result.failed) == (1, 1, 0)
    item.refresh_from_db()
    assert item.status == "PROCESSED"
    tx = item.transaction
    assert (tx.type, tx.amount, tx.date, tx.created_by.username) == (
        TransactionType.REPAYMENT,
        Decimal("50.00"),
        AS_OF,
        "system",
    )
    attempt = DispatchAttempt.objects.get(scheduled_payment=item)
    assert (attempt.number, attempt.status, attempt.amount) == (1, "SUCCEEDED", Decimal("50.00"))
    assert tx.external_id == f"dispatch-attempt-{attempt.pk}"
    outbox = OutboxMessage.objects.get(idempotency_key=f"attempt-{attempt.pk}")
    assert (outbox.channel, outbox.amount, outbox.succeeded) == ("ACH", Decimal("50.00"), True)
    assert attempt.provider_reference == outbox.reference
    later.refresh_from_db()
    assert later.status == "PENDING"
    assert dispatcher.dispatch_due(now=NOON_NY).claimed == 0  # nothing twice


@pytest.mark.parametrize(
    ("amount", "code"), [("50.91", "R01"), ("50.92", "R02"), ("50.99", "TIMEOUT")]
)
def test_failed_payment_is_failed_with_the_return_code(loan, amount, code):
    item = pay(loan, amount)
    result = dispatcher.dispatch_due(now=NOON_NY)
    assert (result.executed, result.failed) == (0, 1)
    item.refresh_from_db()
    assert (item.status, item.return_code, item.transaction_id) == ("FAILED", code, None)
    attempt = DispatchAttempt.objects.get(scheduled_payment=item)
    assert (attempt.status, attempt.return_code) == ("FAILED", code)
    assert not Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT).exists()
    assert dispatcher.dispatch_due(now=NOON_NY + timedelta(hours=1)).claimed == 0  # no retry


def test_payment_is_capped_at_the_payoff(loan):
    item = pay(loan, "5000.00")
    dispatcher.dispatch_due(now=NOON_NY)
    item.refresh_from_db()
    # payoff on 18 Feb: 1,000.00 principal + installment 1's 10.00 + 17/28 of 9.21 (5.59)
    assert item.status == "PROCESSED"
    assert item.transaction.amount == Decimal("1015.59")


def test_a_loans_second_payment_in_the_batch_is_capped_after_the_first(loan):
    """Both claimed in one batch: the second is checked after the first is recorded, so its
    cap is what the first left of the payoff (1,015.59 - 600.00)."""
    first, second = pay(loan, "600.00"), pay(loan, "600.00")
    result = dispatcher.dispatch_due(now=NOON_NY)
    assert (result.claimed, result.executed) == (2, 2)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.transaction.amount) == ("PROCESSED", Decimal("600.00"))
    assert (second.status, second.transaction.amount) == ("PROCESSED", Decimal("415.59"))
    assert DispatchAttempt.objects.get(scheduled_payment=second).amount == Decimal("415.59")


def test_collected_payment_the_command_refuses_is_failed_not_posted(loan, monkeypatch):
    """The loan changed between the check and the record (a modification started): the ACH
    went through, the command refuses, the item is FAILED (POSTING) for an operator."""
    from loans.models import Loan
    from servicing.providers import get_provider

    provider = get_provider("PAYMENT")
    real = type(provider).send

    def send_then_modify(self, message, *, idempotency_key):
        outcome = real(self, message, idempotency_key=idempotency_key)
        Loan.objects.filter(pk=loan.pk).update(modification_in_progress=True)
        return outcome

    monkeypatch.setattr(type(provider), "send", send_then_modify)
    item = pay(loan, "50.00")
    result = dispatcher.dispatch_due(now=NOON_NY)
    assert (result.executed, result.failed) == (0, 1)
    item.refresh_from_db()
    assert (item.status, item.return_code, item.transaction_id) == ("FAILED", "POSTING", None)
    attempt = DispatchAttempt.objects.get(scheduled_payment=item)
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert attempt.error == (
        "Collected but not posted: A modification is in progress: activate or cancel it first."
    )
    assert item.failure_reason == attempt.error
    assert not Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT).exists()


def test_attempt_settled_meanwhile_is_not_posted(loan, monkeypatch):
    """The reconciliation settled the attempt while the provider answered: nothing posted,
    the item left as the reconciliation left it."""
    from servicing.models import ScheduledPayment as Item
    from servicing.providers import get_provider

    provider = get_provider("PAYMENT")
    real = type(provider).send

    def send_then_settled(self, message, *, idempotency_key):
        outcome = real(self, message, idempotency_key=idempotency_key)
        DispatchAttempt.objects.update(status=AttemptStatus.FAILED, return_code="LOST")
        Item.objects.update(status="PENDING", in_flight_since=None)
        return outcome

    monkeypatch.setattr(type(provider), "send", send_then_settled)
    item = pay(loan, "50.00")
    result = dispatcher.dispatch_due(now=NOON_NY, limit=1)
    assert (result.claimed, result.executed, result.skipped) == (1, 0, 1)
    item.refresh_from_db()
    assert (item.status, item.transaction_id) == ("PENDING", None)
    attempt = DispatchAttempt.objects.get(scheduled_payment=item)
    assert (attempt.status, attempt.return_code) == ("FAILED", "LOST")
    assert not Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT).exists()


def test_payment_of_a_stopped_loan_is_never_executed(loan, operator):
    item = pay(loan, "50.00")
    services.cancel_servicing(loan=loan, actor=operator)
    assert dispatcher.dispatch_due(now=NOON_NY).claimed == 0
    item.refresh_from_db()
    assert item.status == "CANCELLED"
    assert not DispatchAttempt.objects.exists()


# --------------------------------------------------------------------------- communications


def test_email_goes_out_through_the_email_backend(loan):
    item = message(loan, "EMAIL", NOON_NY - timedelta(minutes=1))
    result = dispatcher.dispatch_due(now=NOON_NY)
    assert (result.claimed, result.executed) == (1, 1)
    item.refresh_from_db()
    assert item.status == "SENT"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [loan.borrower.email]
    assert item.provider_reference.startswith("email-")


def test_do_not_contact_cancels_the_message(loan):
    Borrower.objects.filter(pk=loan.borrower_id).update(do_not_sms=True)
    item = message(loan, "SMS", NOON_NY)
    result = dispatcher.dispatch_due(now=NOON_NY)
    assert result.cancelled == 1
    item.refresh_from_db()
    assert item.status == "CANCELLED"
    assert "SMS" in item.cancel_reason
    assert not OutboxMessage.objects.exists()


@pytest.mark.parametrize(
    ("zone", "now", "deferred_to"),
    [
        # 07:30 in New York: deferred to 08:00 the same day (13:00 UTC)
        (
            "America/New_York",
            datetime(2026, 2, 18, 12, 30, tzinfo=UTC),
            datetime(2026, 2, 18, 13, 0, tzinfo=UTC),
        ),
        # 21:00 in New York: deferred to 08:00 the next day
        (
            "America/New_York",
            datetime(2026, 2, 19, 2, 0, tzinfo=UTC),
            datetime(2026, 2, 19, 13, 0, tzinfo=UTC),
        ),
        # 01:30 in Los Angeles (09:30 UTC): 08:00 there is 16:00 UTC
        (
            "America/Los_Angeles",
            datetime(2026, 2, 18, 9, 30, tzinfo=UTC),
            datetime(2026, 2, 18, 16, 0, tzinfo=UTC),
        ),
        # 22:30 on the 18th in Auckland (09:30 UTC): 08:00 on the 19th there, 19:00 UTC on the 18th
        (
            "Pacific/Auckland",
            datetime(2026, 2, 18, 9, 30, tzinfo=UTC),
            datetime(2026, 2, 18, 19, 0, tzinfo=UTC),
        ),
    ],
)
def test_contact_window_defers_to_the_next_0800_in_the_borrowers_zone(loan, zone, now, deferred_to):
    Borrower.objects.filter(pk=loan.borrower_id).update(timezone=zone)
    item = message(loan, "SMS", now - timedelta(hours=1))
    with time_machine.travel(now, tick=False):
        result = dispatcher.dispatch_due()
    assert (result.claimed, result.deferred, result.executed) == (1, 1, 0)
    item.refresh_from_db()
    assert (item.status, item.not_before) == ("PENDING", deferred_to)
    with time_machine.travel(deferred_to - timedelta(minutes=1), tick=False):
        assert dispatcher.dispatch_due().claimed == 0
    with time_machine.travel(deferred_to, tick=False):
        assert dispatcher.dispatch_due().executed == 1
    item.refresh_from_db()
    assert item.status == "SENT"


@pytest.mark.parametrize(
    ("zone", "now"),
    [
        ("America/Los_Angeles", datetime(2026, 2, 18, 23, 30, tzinfo=UTC)),  # 15:30 on the 18th
        ("Pacific/Auckland", datetime(2026, 2, 18, 23, 30, tzinfo=UTC)),  # 12:30 on the 19th
    ],
)
def test_inside_the_window_on_either_side_of_midnight_utc(loan, zone, now):
    Borrower.objects.filter(pk=loan.borrower_id).update(timezone=zone)
    message(loan, "CALL", now)
    with time_machine.travel(now, tick=False):
        assert dispatcher.dispatch_due().executed == 1
    assert OutboxMessage.objects.get().channel == "CALL"


def test_reg_f_seven_calls_in_seven_days(loan):
    start = datetime(2026, 2, 10, 17, 0, tzinfo=UTC)
    for day in range(7):
        at = start + timedelta(days=day)
        message(loan, "CALL", at)
        assert dispatcher.dispatch_due(now=at).executed == 1
    eighth = message(loan, "CALL", start + timedelta(days=7))
    result = dispatcher.dispatch_due(now=start + timedelta(days=6, hours=1))
    assert result.claimed == 0  # not yet due
    result = dispatcher.dispatch_due(now=start + timedelta(days=6, hours=2))
    now = start + timedelta(days=6, hours=3)
    eighth.scheduled_at = now
    eighth.save()
    result = dispatcher.dispatch_due(now=now)
    assert result.deferred == 1
    eighth.refresh_from_db()
    # the first call (10 Feb 17:00 UTC) leaves the 7-day window on 17 Feb 17:00 UTC
    assert eighth.not_before == start + timedelta(days=7)
    assert dispatcher.dispatch_due(now=start + timedelta(days=7)).executed == 1


def test_failed_communication_is_retried_after_5_and_30_minutes_then_failed(loan):
    Borrower.objects.filter(pk=loan.borrower_id).update(phone=OUTBOX_TEST_INVALID_NUMBER)
    item = message(loan, "SMS", NOON_NY)
    assert dispatcher.dispatch_due(now=NOON_NY).deferred == 1
    item.refresh_from_db()
    assert (item.status, item.not_before) == ("PENDING", NOON_NY + timedelta(minutes=5))
    assert dispatcher.dispatch_due(now=NOON_NY + timedelta(minutes=4)).claimed == 0
    second = NOON_NY + timedelta(minutes=5)
    assert dispatcher.dispatch_due(now=second).deferred == 1
    item.refresh_from_db()
    assert item.not_before == second + timedelta(minutes=30)
    assert dispatcher.dispatch_due(now=second + timedelta(minutes=30)).failed == 1
    item.refresh_from_db()
    assert item.status == "FAILED"
    attempts = list(
        DispatchAttempt.objects.filter(scheduled_communication=item)
        .order_by("number")
        .values_list("number", "status", "return_code")
    )
    assert attempts == [(n, "FAILED", "invalid_number") for n in (1, 2, 3)]


def test_schedule_is_completed_when_nothing_is_left(loan, operator):
    schedule = services.create_communication_schedule(
        loan=loan,
        channel="SMS",
        every_days=1,
        start_date=AS_OF,
        occurrences=2,
        actor=operator,
    )  # 10:00 New York = 15:00 UTC on 18 and 19 Feb
    dispatcher.dispatch_due(now=datetime(2026, 2, 18, 16, 0, tzinfo=UTC))
    schedule.refresh_from_db()
    assert schedule.status == "ACTIVE"
    dispatcher.dispatch_due(now=datetime(2026, 2, 19, 16, 0, tzinfo=UTC))
    schedule.refresh_from_db()
    assert schedule.status == "COMPLETED"
    assert (
        CommunicationSchedule.objects.get(pk=schedule.pk)
        .communications.filter(status="SENT")
        .count()
        == 2
    )


# --------------------------------------------------------------------------- reconciliation


class Killed(BaseException):
    """A worker killed between the claim's commit and the provider's answer."""


def test_in_flight_item_of_a_dead_worker_goes_back_to_pending_and_runs_once(loan, monkeypatch):
    item = pay(loan, "50.00")
    provider = dispatcher.get_provider("PAYMENT")

    def die(message, *, idempotency_key):
        raise Killed

    monkeypatch.setattr(provider, "send", die)
    with pytest.raises(Killed):
        dispatcher.dispatch_due(now=NOON_NY)
    item.refresh_from_db()
    assert item.status == "IN_FLIGHT"
    monkeypatch.undo()
    # before the timeout nothing happens to it
    assert dispatcher.dispatch_due(now=NOON_NY + timedelta(minutes=5)).reconciled == 0
    result = dispatcher.dispatch_due(now=NOON_NY + timedelta(minutes=11))
    assert (result.reconciled, result.executed) == (1, 1)
    item.refresh_from_db()
    assert item.status == "PROCESSED"
    attempts = list(
        DispatchAttempt.objects.filter(scheduled_payment=item)
        .order_by("number")
        .values_list("number", "status", "return_code")
    )
    assert attempts == [(1, "FAILED", "LOST"), (2, "SUCCEEDED", "")]
    assert Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT).count() == 1


def test_in_flight_item_the_provider_executed_is_recorded_not_repeated(loan, monkeypatch):
    item = pay(loan, "50.00")
    provider = dispatcher.get_provider("PAYMENT")
    real_send = provider.send

    def send_then_die(message, *, idempotency_key):
        real_send(message, idempotency_key=idempotency_key)
        raise Killed

    monkeypatch.setattr(provider, "send", send_then_die)
    with pytest.raises(Killed):
        dispatcher.dispatch_due(now=NOON_NY)
    monkeypatch.undo()
    result = dispatcher.dispatch_due(now=NOON_NY + timedelta(minutes=11))
    assert (result.reconciled, result.claimed) == (1, 0)
    item.refresh_from_db()
    assert item.status == "PROCESSED"
    assert DispatchAttempt.objects.get(scheduled_payment=item).status == AttemptStatus.SUCCEEDED
    assert OutboxMessage.objects.filter(channel="ACH").count() == 1
    assert Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT).count() == 1


def test_attempt_numbers_are_unique_per_item(loan):
    from django.db import IntegrityError, transaction

    item = pay(loan, "50.00")
    DispatchAttempt.objects.create(loan=loan, kind="PAYMENT", scheduled_payment=item, number=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        DispatchAttempt.objects.create(loan=loan, kind="PAYMENT", scheduled_payment=item, number=1)


def test_dispatch_statements_do_not_grow_with_items(loan, django_assert_max_num_queries):
    for _ in range(3):
        message(loan, "SMS", NOON_NY)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as three:
        dispatcher.dispatch_due(now=NOON_NY)
    for _ in range(9):
        message(loan, "SMS", NOON_NY)
    with CaptureQueriesContext(connection) as nine:
        dispatcher.dispatch_due(now=NOON_NY)
    per_item_3 = (len(three.captured_queries)) / 3
    per_item_9 = (len(nine.captured_queries)) / 9
    assert per_item_9 <= per_item_3


def _statements(func) -> int:
    """SQL statements sent (several joined in one round trip on PostgreSQL count one each)."""
    return _statements_and_round_trips(func)[0]


def _statements_and_round_trips(func) -> tuple[int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        func()
    sent = [q["sql"] for q in captured.captured_queries]
    return sum(sql.count(";\n") + 1 for sql in sent), len(sent)


def test_statements_per_dispatched_payment_are_constant(loan, operator):
    """A due payment costs the same statements whatever the loan's history and however many
    are due. A claimed batch is checked and marked in one transaction of 7, whatever its size
    (SAVEPOINT/RELEASE here, BEGIN/COMMIT in production; the loans' row locks, their stored
    schedules for the payoff cap, the items with their attempt counts, the attempts in one
    INSERT, the items IN_FLIGHT in one UPDATE); then each payment 14: 3 for the simulated ACH
    and 11 for its record, the repayment command's transaction with the attempt's outcome
    and the item PROCESSED in its statements (its lock, read, external id check and the
    attempt's conditional UPDATE; the transaction, the period, the autopay hook; the audit
    row with the item PROCESSED) and no savepoint of its own. The run itself: 16 (reconcile,
    business date, system user, the claims). (Was 24 per payment plus nothing per batch: a
    check-and-mark transaction per item, the command in a savepoint, the loan locked twice;
    before that 32, then 49.) On PostgreSQL the statements of a step go in one round trip:
    the batch's 7 and 9 a payment (was 18; the command's transaction INSERT goes with its
    period's UPDATE)."""
    from django.db import connection

    from loans.services import post_transaction
    from servicing.statements import _combines

    other = make_active_loan(actor=operator)
    for _ in range(30):
        post_transaction(
            loan=other, type="REPAYMENT", on=AS_OF, amount=Decimal("1.00"), actor=operator
        )
    pay(loan, "10.00")
    first = _statements(lambda: dispatcher.dispatch_due(now=NOON_NY))
    pay(loan, "10.00")
    short = _statements(lambda: dispatcher.dispatch_due(now=NOON_NY))
    pay(other, "10.00")
    long = _statements(lambda: dispatcher.dispatch_due(now=NOON_NY))
    pay(loan, "10.00")
    pay(other, "10.00")
    two, trips = _statements_and_round_trips(lambda: dispatcher.dispatch_due(now=NOON_NY))
    assert first > short  # the first run created the system user
    assert (short, long, two) == (16 + 7 + 14, 16 + 7 + 14, 16 + 7 + 2 * 14)  # was 24 each
    assert trips == (16 + 7 + 2 * 9 if _combines(connection) else two)  # was 18 each
    assert Transaction.objects.filter(note__startswith="Scheduled payment").count() == 5


def test_the_beat_task_hands_the_queue_to_more_dispatchers(loan, settings, monkeypatch):
    """``DISPATCH_PARALLEL = 3``: the beat's task starts two more dispatchers on the same queue
    (without reconciliation) and dispatches too; every payment is executed once."""
    from servicing import tasks

    settings.DISPATCH_PARALLEL = 3
    runs = []
    real = dispatcher.dispatch_due

    def counted(**kwargs):
        runs.append(kwargs)
        return real(now=NOON_NY, **kwargs)

    monkeypatch.setattr(dispatcher, "dispatch_due", counted)
    items = [pay(loan, "10.00") for _ in range(3)]
    tasks.dispatch_due()
    assert runs == [{"reconcile": False}, {"reconcile": False}, {}]
    statuses = ScheduledPayment.objects.filter(pk__in=[i.pk for i in items])
    assert sorted(statuses.values_list("status", flat=True)) == ["PROCESSED"] * 3
    assert Transaction.objects.filter(note__startswith="Scheduled payment").count() == 3
