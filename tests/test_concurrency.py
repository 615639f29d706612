"""Concurrency and atomicity of the commands (issue 6).

* ``RACES``: two commands started at the same instant on one loan, in two threads with their
  own database connections (PostgreSQL only: SQLite serialises writers by itself). The end
  state must be one some serial order gives, with nothing lost or doubled.
* ``FAILURES``: a failure injected half-way through a command (a helper it calls raises) must
  leave the database exactly as before.

Commands added later are covered by appending a row to these tables.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from unittest import mock

import pytest
from django.apps import apps
from django.db import connection, connections

from loans import selectors, services
from loans.exceptions import ConflictError, DomainError, InvalidRequestError, LoanStateError
from loans.models import (
    BusinessDate,
    IdempotencyRecord,
    Loan,
    LoanEvent,
    LoanSetup,
    LoanStatus,
    LoanSubStatus,
    Schedule,
    SchedulePeriod,
    ScheduleReason,
    ServicingStatus,
    Transaction,
    TransactionType,
)
from modifications import services as mod_services
from modifications.models import Modification, ModificationStatus
from servicing import services as servicing_services
from servicing.models import (
    CommunicationSchedule,
    CommunicationScheduleStatus,
    CommunicationStatus,
    ScheduledCommunication,
    ScheduledPayment,
    ScheduledPaymentStatus,
    ServicingEvent,
)
from tests.conftest import token_client
from tests.factories import make_active_loan, make_loan, set_business_date
from tests.servicing.helpers import add_seed_000_mix

MOD_DATE = date(2026, 2, 7)
LATE_REPAYMENT = date(2026, 2, 10)
APPS = ("loans", "servicing", "modifications")

AS_OF = date(2026, 2, 18)


def run_together(*calls: Callable[[], object], timeout: float = 30) -> list:
    """Run the calls in threads released at the same instant; return each result or the
    exception it raised. Every thread closes its own database connection."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait(timeout)
            results[index] = call()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread is stuck (deadlock?)"
    return results


def loan_state(loan_id: int) -> dict:
    """Everything a command may change about a loan, comparable with ``==``."""
    loan = Loan.objects.values().get(pk=loan_id)
    loan.pop("updated_at")
    return {
        "loan": loan,
        "setups": list(LoanSetup.objects.filter(loan_id=loan_id).order_by("id").values()),
        "schedules": list(Schedule.objects.filter(loan_id=loan_id).order_by("id").values()),
        "periods": list(
            SchedulePeriod.objects.filter(schedule__loan_id=loan_id)
            .order_by("schedule_id", "period")
            .values()
        ),
        "transactions": list(Transaction.objects.filter(loan_id=loan_id).order_by("id").values()),
        "events": LoanEvent.objects.filter(loan_id=loan_id).count(),
        "all_events": LoanEvent.objects.count(),
        "modifications": list(Modification.objects.filter(loan_id=loan_id).order_by("id").values()),
        "scheduled_payments": list(
            ScheduledPayment.objects.filter(loan_id=loan_id).order_by("id").values()
        ),
        "communications": list(
            ScheduledCommunication.objects.filter(loan_id=loan_id).order_by("id").values()
        ),
        "communication_schedules": list(
            CommunicationSchedule.objects.filter(loan_id=loan_id).order_by("id").values()
        ),
        "business_date": list(BusinessDate.objects.values("pk", "date", "updated_by")),
        "row_counts": row_counts(),
    }


def row_counts() -> dict[str, int]:
    """The number of rows of every model of the three apps (API tokens aside: each client
    logs in with one of its own)."""
    return {
        model._meta.label: model._default_manager.count()
        for label in APPS
        for model in apps.get_app_config(label).get_models()
        if model._meta.label != "servicing.ApiToken"
    }


def period_figures(loan_id: int) -> list[tuple]:
    return list(
        SchedulePeriod.objects.filter(schedule__loan_id=loan_id, schedule__is_current=True)
        .order_by("period")
        .values_list(
            "due_date",
            "principal_due",
            "interest_due",
            "principal_paid",
            "interest_paid",
            "fees_paid",
            "complete",
        )
    )


def make_twin_loans(actor, n=2):
    return [
        make_active_loan(
            actor=actor,
            as_of=AS_OF,
            external_id=f"RACE-{uuid.uuid4().hex[:8]}",
            loan_amount=Decimal("600.00"),
            loan_rate=Decimal("24"),
            loan_term=Decimal("6"),
            payment_frequency="BIWEEKLY",
            contract_date=date(2025, 12, 27),
            first_payment_date=date(2026, 1, 10),
            calc_type="EQUAL_PRINCIPAL",
        )
        for _ in range(n)
    ]


# ------------------------------------------------------------------ races


def repay(loan_id, amount, actor):
    return lambda: services.post_transaction(
        loan=Loan.objects.get(pk=loan_id),
        type=TransactionType.REPAYMENT,
        on=AS_OF,
        amount=Decimal(amount),
        actor=actor,
        as_of=AS_OF,
    )


def race_two_repayments(operator):
    loan, twin = make_twin_loans(operator)
    results = run_together(repay(loan.pk, "30.00", operator), repay(loan.pk, "170.00", operator))
    assert [type(r) for r in results] == [Transaction, Transaction], results

    # Both applied exactly once ...
    rows = Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT)
    assert sorted(rows.values_list("amount", flat=True)) == [Decimal("30.00"), Decimal("170.00")]
    # ... each allocated in full ...
    for tx in rows:
        assert tx.principal_portion + tx.interest_portion + tx.fees_portion == tx.amount
    # ... and the schedule is what the two repayments give posted one after the other.
    first, second = sorted(results, key=lambda tx: tx.pk)
    repay(twin.pk, str(first.amount), operator)()
    repay(twin.pk, str(second.amount), operator)()
    assert period_figures(loan.pk) == period_figures(twin.pk)
    twin_rows = Transaction.objects.filter(loan=twin, type=TransactionType.REPAYMENT)
    assert list(
        rows.order_by("id").values_list("principal_portion", "interest_portion", "fees_portion")
    ) == list(
        twin_rows.order_by("id").values_list(
            "principal_portion", "interest_portion", "fees_portion"
        )
    )


def race_two_activations(operator):
    loan = make_loan(actor=operator, external_id=f"PEND-{uuid.uuid4().hex[:8]}")

    def activate():
        return services.activate_loan(
            loan=Loan.objects.get(pk=loan.pk), actor=operator, as_of=AS_OF
        )

    results = run_together(activate, activate)
    assert sorted(r.activated for r in results) == [False, True], results
    assert Transaction.objects.filter(loan=loan, type=TransactionType.DISBURSEMENT).count() == 1
    assert Schedule.objects.filter(loan=loan).count() == 1
    assert LoanEvent.objects.filter(loan=loan, command="activate_loan").count() == 1
    assert Loan.objects.get(pk=loan.pk).status == LoanStatus.ACTIVE


def race_same_idempotency_key(operator):
    """Two retries of one request with the same key: the command runs once; the other gets the
    stored answer or 409 request_in_progress."""
    (loan,) = make_twin_loans(operator, n=1)
    url = f"/api/v1/loans/{loan.pk}/transactions?command=repayment"
    body = {"transactionDate": "2026-02-18", "transactionAmount": "25.00"}
    key = uuid.uuid4().hex

    def post():
        response = token_client(operator).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        return response.status_code, response.json().get("code"), response.headers

    results = run_together(post, post)
    statuses = sorted(r[0] for r in results)
    assert statuses in ([200, 200], [200, 409]), results
    if statuses == [200, 409]:
        assert "request_in_progress" in [r[1] for r in results]
    assert Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT).count() == 1
    assert IdempotencyRecord.objects.get(key=key).status_code == 200


# Builders shared by the races, the injected failures and the audit-trail tests.


def repay_on(loan, on, amount, operator):
    return services.post_transaction(
        loan=Loan.objects.get(pk=loan.pk),
        type=TransactionType.REPAYMENT,
        on=on,
        amount=Decimal(amount),
        actor=operator,
        as_of=AS_OF,
    )


def with_servicing_items(operator):
    """An active loan with seed 000's mix: 3 payments, 10 communications, 3 schedules."""
    (loan,) = make_twin_loans(operator, n=1)
    add_seed_000_mix(loan, operator)
    return Loan.objects.get(pk=loan.pk)


def not_servicing(operator):
    loan = with_servicing_items(operator)
    servicing_services.cancel_servicing(loan=loan.pk, actor=operator, as_of=AS_OF)
    return Loan.objects.get(pk=loan.pk)


def terminated(operator):
    (loan,) = make_twin_loans(operator, n=1)
    services.terminate_contract(loan=loan, actor=operator, as_of=AS_OF)
    return Loan.objects.get(pk=loan.pk)


def with_draft_modification(operator):
    """A draft modification dated 2026-02-07; a repayment dated after it (2026-02-10) that the
    activation reverses (it is not kept) and the cancellation reinstates."""
    (loan,) = make_twin_loans(operator, n=1)
    repay_on(loan, LATE_REPAYMENT, "50.00", operator)
    mod_services.create_modification(
        loan=Loan.objects.get(pk=loan.pk), modification_date=MOD_DATE, actor=operator, as_of=AS_OF
    )
    return Loan.objects.get(pk=loan.pk)


def with_active_modification(operator):
    loan = with_draft_modification(operator)
    assert mod_services.activate_modification(loan=loan, actor=operator, as_of=AS_OF).activated
    return Loan.objects.get(pk=loan.pk)


def pending_counts(loan_id) -> dict[str, int]:
    return {
        "payments": ScheduledPayment.objects.filter(
            loan_id=loan_id, status=ScheduledPaymentStatus.PENDING
        ).count(),
        "communications": ScheduledCommunication.objects.filter(
            loan_id=loan_id, status=CommunicationStatus.PENDING
        ).count(),
        "schedules": CommunicationSchedule.objects.filter(
            loan_id=loan_id, status=CommunicationScheduleStatus.ACTIVE
        ).count(),
    }


def race_two_cancel_servicing(operator):
    loan = with_servicing_items(operator)
    before = pending_counts(loan.pk)
    assert before == {"payments": 3, "communications": 10, "schedules": 3}

    def cancel():
        return servicing_services.cancel_servicing(loan=loan.pk, actor=operator, as_of=AS_OF)

    results = run_together(cancel, cancel)
    assert sorted(r.changed for r in results) == [False, True], results
    done = next(r for r in results if r.changed)
    assert done.cancelled_scheduled_payments == 3
    assert done.cancelled_calls + done.cancelled_emails + done.cancelled_sms == 10
    assert (
        done.cancelled_call_schedules
        + done.cancelled_email_schedules
        + done.cancelled_sms_schedules
        == 3
    )
    assert next(r for r in results if not r.changed).total == 0
    assert pending_counts(loan.pk) == {"payments": 0, "communications": 0, "schedules": 0}
    assert ServicingEvent.objects.filter(loan=loan).count() == 1
    assert LoanEvent.objects.filter(loan=loan, command="cancel_servicing").count() == 1
    assert Loan.objects.get(pk=loan.pk).servicing_status == ServicingStatus.NOT_SERVICING


def race_two_create_modifications(operator):
    (loan,) = make_twin_loans(operator, n=1)

    def create():
        return mod_services.create_modification(
            loan=Loan.objects.get(pk=loan.pk),
            modification_date=MOD_DATE,
            actor=operator,
            as_of=AS_OF,
        )

    results = run_together(create, create)
    kinds = sorted(type(r).__name__ for r in results)
    assert kinds == ["Modification", "ModificationInProgressError"], results
    assert Modification.objects.filter(loan=loan).count() == 1
    assert Modification.objects.get(loan=loan).status == ModificationStatus.DRAFT
    assert LoanSetup.objects.filter(loan=loan).count() == 2
    assert LoanEvent.objects.filter(loan=loan, command="create_modification").count() == 1
    assert Loan.objects.get(pk=loan.pk).modification_in_progress is True


def race_activate_vs_cancel_modification(operator):
    """Either the activation ran first (the cancellation then cancels the activated
    modification: two more schedule versions, the reversed repayment reinstated) or the draft
    was cancelled first (the activation finds nothing: ``activated=False``)."""
    loan = with_draft_modification(operator)
    original_setup = loan.setup_id
    figures_before = period_figures(loan.pk)
    late = Transaction.objects.get(loan=loan, date=LATE_REPAYMENT)

    def activate():
        return mod_services.activate_modification(
            loan=Loan.objects.get(pk=loan.pk), actor=operator, as_of=AS_OF
        )

    def cancel():
        return mod_services.cancel_modification(
            loan=Loan.objects.get(pk=loan.pk), actor=operator, note="race"
        )

    activation, cancellation = run_together(activate, cancel)
    assert isinstance(activation, services.ActivationResult), activation
    assert isinstance(cancellation, Modification), cancellation

    loan = Loan.objects.get(pk=loan.pk)
    modification = Modification.objects.get(loan=loan)
    assert modification.status == ModificationStatus.CANCELLED
    assert (loan.mod_total, loan.modification_in_progress) == (0, False)
    assert loan.setup_id == original_setup
    late.refresh_from_db()
    assert (late.reversed, late.reversed_by_modification_id) == (False, None)
    assert Transaction.objects.filter(loan=loan).count() == 2  # disbursement + repayment
    assert LoanEvent.objects.filter(loan=loan, command="cancel_modification").count() == 1
    schedules = list(Schedule.objects.filter(loan=loan).order_by("version"))
    if activation.activated:  # serial order: activate, then cancel the active modification
        assert [s.reason for s in schedules] == [
            ScheduleReason.ACTIVATION,
            ScheduleReason.MODIFICATION,
            ScheduleReason.MODIFICATION_CANCELLED,
        ]
        assert LoanEvent.objects.filter(loan=loan, command="activate_modification").count() == 1
        assert modification.activated_at is not None
        assert modification.reversed_transaction_ids == [late.pk]
        assert LoanSetup.objects.filter(loan=loan).count() == 2
    else:  # serial order: cancel the draft, then the activation has nothing to activate
        assert [s.reason for s in schedules] == [ScheduleReason.ACTIVATION]
        assert LoanEvent.objects.filter(loan=loan, command="activate_modification").count() == 0
        assert modification.activated_at is None
        assert LoanSetup.objects.filter(loan=loan).count() == 1  # the draft is deleted
    assert [s.is_current for s in schedules] == [False] * (len(schedules) - 1) + [True]
    assert period_figures(loan.pk) == figures_before
    return activation.activated


def race_undo_termination_vs_repayment(operator):
    """Undo first: both succeed. Repayment first: it is the latest transaction, so the undo is
    refused (termination_not_latest). Either way the figures equal the serial twin's."""
    loan = terminated(operator)
    termination = Transaction.objects.get(loan=loan, type=TransactionType.CONTRACT_TERMINATION)

    def undo():
        return services.undo_contract_termination(
            loan=Loan.objects.get(pk=loan.pk), actor=operator, as_of=AS_OF
        )

    undone, repayment = run_together(undo, repay(loan.pk, "50.00", operator))
    assert isinstance(repayment, Transaction), repayment
    assert Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT).count() == 1
    termination.refresh_from_db()
    twin = terminated(operator)
    loan = Loan.objects.get(pk=loan.pk)
    if isinstance(undone, services.TerminationResult):  # undo, then the repayment
        assert termination.reversed is True
        assert loan.sub_status is None
        assert Schedule.objects.filter(loan=loan).count() == 3
        assert LoanEvent.objects.filter(loan=loan, command="undo_contract_termination").count() == 1
        services.undo_contract_termination(loan=twin, actor=operator, as_of=AS_OF)
        repay(twin.pk, "50.00", operator)()
    else:  # the repayment, then a refused undo
        assert isinstance(undone, ConflictError), undone
        assert undone.code == "termination_not_latest"
        assert termination.reversed is False
        assert loan.sub_status == LoanSubStatus.CONTRACT_TERMINATION
        assert Schedule.objects.filter(loan=loan).count() == 2
        assert LoanEvent.objects.filter(loan=loan, command="undo_contract_termination").count() == 0
        repay(twin.pk, "50.00", operator)()
    assert period_figures(loan.pk) == period_figures(twin.pk)
    assert list(
        Transaction.objects.filter(loan=loan)
        .order_by("id")
        .values_list("type", "amount", "principal_portion", "interest_portion", "reversed")
    ) == list(
        Transaction.objects.filter(loan=twin)
        .order_by("id")
        .values_list("type", "amount", "principal_portion", "interest_portion", "reversed")
    )


def overpaid(operator):
    """An active loan whose undone charge left a credit balance of 5.00 (OVERPAID)."""
    (loan,) = make_twin_loans(operator, n=1)
    charge = services.post_transaction(
        loan=loan,
        type=TransactionType.CHARGE,
        on=AS_OF,
        amount=Decimal("5.00"),
        actor=operator,
        as_of=AS_OF,
    )
    owed = selectors.loan_summary(loan, as_of=AS_OF).total_outstanding
    repay_on(loan, AS_OF, owed, operator)
    services.reverse_transaction(loan=loan, transaction_id=charge.pk, actor=operator, as_of=AS_OF)
    loan = Loan.objects.get(pk=loan.pk)
    assert loan.status == LoanStatus.OVERPAID
    return loan


def pay_off(loan_id, actor):
    def run():
        loan = Loan.objects.get(pk=loan_id)
        return services.post_payoff(
            loan=loan,
            on=AS_OF,
            amount=selectors.payoff(loan, on=AS_OF).total,
            actor=actor,
            as_of=AS_OF,
        )

    return run


def race_payoff_vs_repayment(operator):
    """The payoff amount is checked under the loan lock against the quote for the date. The
    repayment first: a payoff quoted before it is stale (400 payoff_amount_mismatch, nothing
    written) or, quoted after, closes the loan. The payoff first: the repayment is refused
    (loan_closed). No cent is lost either way."""
    (loan,) = make_twin_loans(operator, n=1)
    paid_off, repayment = run_together(
        pay_off(loan.pk, operator), repay(loan.pk, "50.00", operator)
    )
    loan = Loan.objects.get(pk=loan.pk)
    if isinstance(paid_off, Transaction):
        assert loan.status == LoanStatus.CLOSED
        assert selectors.payoff(loan, on=AS_OF).total == 0
        if not isinstance(repayment, Transaction):
            assert isinstance(repayment, LoanStateError) and repayment.code == "loan_closed"
    else:
        assert isinstance(paid_off, InvalidRequestError), paid_off
        assert paid_off.code == "payoff_amount_mismatch"
        assert isinstance(repayment, Transaction), repayment
        assert loan.status == LoanStatus.ACTIVE
        assert not Transaction.objects.filter(loan=loan, type=TransactionType.PAYOFF).exists()
    for tx in Transaction.objects.filter(loan=loan):
        assert (
            tx.principal_portion + tx.interest_portion + tx.fees_portion + tx.overpayment_portion
            == tx.amount
        )


def race_two_refunds(operator):
    """Two refunds of the whole credit balance: one is paid, the other is above what is left."""
    loan = overpaid(operator)

    def refund():
        return services.post_credit_balance_refund(
            loan=Loan.objects.get(pk=loan.pk),
            on=AS_OF,
            amount=Decimal("5.00"),
            actor=operator,
            as_of=AS_OF,
        )

    results = run_together(refund, refund)
    done = [r for r in results if isinstance(r, Transaction)]
    refused = [r for r in results if not isinstance(r, Transaction)]
    assert len(done) == 1 and len(refused) == 1, results
    assert refused[0].code == "refund_above_credit_balance"
    loan = Loan.objects.get(pk=loan.pk)
    assert loan.status == LoanStatus.CLOSED and selectors.credit_balance(loan) == 0


# The servicing clock's commands (issue 12): autopay, the dispatcher, the close of business.


def race_two_autopay_set_ups(operator):
    """One active autopay a loan: the second set-up waits for the first's lock, then 409."""
    from servicing.autopay import setup_autopay
    from servicing.models import Autopay, AutopayStatus

    (loan,) = make_twin_loans(operator, n=1)

    def set_up():
        return setup_autopay(loan=loan.pk, actor=operator, as_of=AS_OF)

    results = run_together(set_up, set_up)
    done = [r for r in results if isinstance(r, Autopay)]
    refused = [r for r in results if not isinstance(r, Autopay)]
    assert len(done) == 1 and len(refused) == 1, results
    assert isinstance(refused[0], ConflictError) and refused[0].code == "autopay_exists"
    assert Autopay.objects.filter(loan=loan, status=AutopayStatus.ACTIVE).count() == 1
    assert LoanEvent.objects.filter(loan=loan, command="setup_autopay").count() == 1
    # One pending payment per remaining installment (#4 to #6), not two.
    assert ScheduledPayment.objects.filter(loan=loan, autopay=done[0]).count() == 3


def race_two_autopay_cancels(operator):
    """Two cancels of one autopay: one cancels its 3 pending payments, the other is 409."""
    from servicing.autopay import AutopayCancellation, cancel_autopay, setup_autopay

    (loan,) = make_twin_loans(operator, n=1)
    autopay = setup_autopay(loan=loan.pk, actor=operator, as_of=AS_OF)

    def cancel():
        return cancel_autopay(autopay_id=autopay.pk, actor=operator, reason="race")

    results = run_together(cancel, cancel)
    done = [r for r in results if isinstance(r, AutopayCancellation)]
    refused = [r for r in results if not isinstance(r, AutopayCancellation)]
    assert len(done) == 1 and len(refused) == 1, results
    assert done[0].cancelled_scheduled_payments == 3
    assert isinstance(refused[0], ConflictError) and refused[0].code == "not_active"
    assert LoanEvent.objects.filter(loan=loan, command="cancel_autopay").count() == 1


def race_two_dispatchers(operator):
    """Two dispatcher runs over the same due items: each item is claimed and executed once."""
    from datetime import UTC, datetime, timedelta

    from servicing.dispatcher import DispatchResult, dispatch_due
    from servicing.models import DispatchAttempt, OutboxMessage

    now = datetime(2026, 2, 18, 17, 0, tzinfo=UTC)  # noon in New York
    (loan,) = make_twin_loans(operator, n=1)
    ScheduledCommunication.objects.bulk_create(
        ScheduledCommunication(
            loan=loan, channel="SMS", scheduled_at=now - timedelta(minutes=i), body="x"
        )
        for i in range(12)
    )
    ScheduledPayment.objects.bulk_create(
        ScheduledPayment(loan=loan, amount=Decimal("1.00"), scheduled_date=AS_OF) for _ in range(4)
    )
    results = run_together(lambda: dispatch_due(now=now), lambda: dispatch_due(now=now))
    assert all(isinstance(r, DispatchResult) for r in results), results
    assert sum(r.claimed for r in results) == 16
    assert sum(r.executed for r in results) == 16
    assert DispatchAttempt.objects.filter(loan=loan).count() == 16
    assert OutboxMessage.objects.filter(loan=loan).count() == 16
    assert Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT).count() == 4


def race_two_closes_of_business(operator):
    """Two closes of business of the same date: each day of the loan is closed once."""
    from servicing.close_of_business import close_business_day
    from servicing.models import Job, JobStatus, LoanDailySnapshot

    (loan,) = make_twin_loans(operator, n=1)

    def close():
        return close_business_day(business_date=AS_OF, actor=operator)

    results = run_together(close, close)
    assert all(isinstance(r, Job) for r in results), results
    assert [r.status for r in results] == [JobStatus.DONE, JobStatus.DONE]
    # Activated on AS_OF: one day to close, closed once (one snapshot), whichever job did it.
    assert list(
        LoanDailySnapshot.objects.filter(loan=loan).values_list("business_date", flat=True)
    ) == [AS_OF]
    assert Loan.objects.get(pk=loan.pk).last_closed_business_date == AS_OF


@dataclass(frozen=True)
class Race:
    name: str
    run: Callable  # (operator) -> None, asserting the end state


RACES = [
    Race("repayment vs repayment", race_two_repayments),
    Race("activate vs activate", race_two_activations),
    Race("same Idempotency-Key twice", race_same_idempotency_key),
    Race("cancel_servicing vs cancel_servicing", race_two_cancel_servicing),
    Race("create_modification vs create_modification", race_two_create_modifications),
    Race("activate modification vs cancel_modification", race_activate_vs_cancel_modification),
    Race("undo_contract_termination vs repayment", race_undo_termination_vs_repayment),
    Race("payoff vs repayment", race_payoff_vs_repayment),
    Race("creditBalanceRefund vs creditBalanceRefund", race_two_refunds),
    Race("autopay set-up vs autopay set-up", race_two_autopay_set_ups),
    Race("autopay cancel vs autopay cancel", race_two_autopay_cancels),
    Race("dispatch vs dispatch", race_two_dispatchers),
    Race("close of business vs close of business", race_two_closes_of_business),
]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("race", RACES, ids=[r.name for r in RACES])
def test_race(race, operator):
    set_business_date(AS_OF)
    for _ in range(3):  # a race may go either way: try a few times
        race.run(operator)


# ------------------------------------------------------------------ injected failures


@dataclass(frozen=True)
class Failure:
    name: str
    prepare: Callable  # (operator) -> loan
    run: Callable  # (loan, operator) -> None
    patch: str  # dotted helper made to raise half-way through


def _active(operator):
    return make_twin_loans(operator, n=1)[0]


def _pending(operator):
    return make_loan(actor=operator, external_id=f"PEND-{uuid.uuid4().hex[:8]}")


def _repay(loan, operator):
    services.post_transaction(
        loan=loan,
        type=TransactionType.REPAYMENT,
        on=AS_OF,
        amount=Decimal("50.00"),
        actor=operator,
        as_of=AS_OF,
    )


def _reverse(loan, operator):
    tx = loan.transactions.filter(type=TransactionType.REPAYMENT).first()
    services.reverse_transaction(
        loan=loan, transaction_id=tx.pk, actor=operator, note="x", as_of=AS_OF
    )


def _active_with_repayment(operator):
    loan = _active(operator)
    _repay(loan, operator)
    return loan


def _activate(loan, operator):
    services.activate_loan(loan=loan, actor=operator, as_of=AS_OF)


def _update_setup(loan, operator):
    services.update_setup(
        setup=loan.setup, changes={"loan_amount": Decimal("1500.00")}, actor=operator
    )


def _set_business_date(loan, operator):
    services.set_business_date(new_date=date(2026, 2, 19), actor=operator, reason="x")


def _cancel_servicing(loan, operator):
    servicing_services.cancel_servicing(loan=loan.pk, actor=operator, as_of=AS_OF)


def _resume_servicing(loan, operator):
    servicing_services.resume_servicing(loan=loan.pk, actor=operator, note="x", as_of=AS_OF)


def _schedule_payment(loan, operator):
    servicing_services.schedule_payment(
        loan=loan.pk,
        amount=Decimal("40.00"),
        scheduled_date=date(2026, 3, 2),
        actor=operator,
        as_of=AS_OF,
    )


def _terminate(loan, operator):
    services.terminate_contract(loan=loan, actor=operator, note="x", as_of=AS_OF)


def _undo_termination(loan, operator):
    services.undo_contract_termination(loan=loan, actor=operator, note="x", as_of=AS_OF)


def _create_modification(loan, operator):
    mod_services.create_modification(
        loan=loan, modification_date=MOD_DATE, actor=operator, as_of=AS_OF
    )


def _roll_payment(loan, operator):
    mod_services.roll_payment(
        loan=loan, amount="60.00", method=mod_services.ROLL_METHODS[0], actor=operator
    )


def _activate_modification(loan, operator):
    assert mod_services.activate_modification(loan=loan, actor=operator, as_of=AS_OF).activated


def _cancel_modification(loan, operator):
    mod_services.cancel_modification(loan=loan, actor=operator, note="x")


def _pay_off(loan, operator):
    pay_off(loan.pk, operator)()


def _refund(loan, operator):
    services.post_credit_balance_refund(
        loan=loan, on=AS_OF, amount=Decimal("5.00"), actor=operator, as_of=AS_OF
    )


FAILURES = [
    Failure("post_transaction / rebuild", _active, _repay, "loans.versions.rebuild_schedule"),
    Failure("post_transaction / audit", _active, _repay, "loans.versions.record_event"),
    Failure(
        "reverse_transaction / rebuild",
        _active_with_repayment,
        _reverse,
        "loans.versions.rebuild_schedule",
    ),
    Failure(
        "reverse_transaction / audit",
        _active_with_repayment,
        _reverse,
        "loans.versions.record_event",
    ),
    Failure("activate_loan / rebuild", _pending, _activate, "loans.versions.rebuild_schedule"),
    Failure("activate_loan / audit", _pending, _activate, "loans.versions.record_event"),
    Failure("update_setup / audit", _pending, _update_setup, "loans.versions.record_event"),
    Failure(
        "set_business_date / audit",
        _active,
        _set_business_date,
        "loans.versions.record_event",
    ),
    Failure(
        "cancel_servicing / audit",
        with_servicing_items,
        _cancel_servicing,
        "servicing.services.record_event",
    ),
    Failure(
        "resume_servicing / audit",
        not_servicing,
        _resume_servicing,
        "servicing.services.record_event",
    ),
    Failure(
        "schedule_payment / audit",
        _active,
        _schedule_payment,
        "servicing.services.record_event",
    ),
    Failure(
        "terminate_contract / new version",
        _active,
        _terminate,
        "loans.versions.new_schedule_version",
    ),
    Failure("terminate_contract / rebuild", _active, _terminate, "loans.versions.rebuild_schedule"),
    Failure("terminate_contract / audit", _active, _terminate, "loans.versions.record_event"),
    Failure(
        "undo_contract_termination / rebuild",
        terminated,
        _undo_termination,
        "loans.versions.rebuild_schedule",
    ),
    Failure(
        "undo_contract_termination / audit",
        terminated,
        _undo_termination,
        "loans.versions.record_event",
    ),
    Failure(
        "create_modification / audit",
        _active,
        _create_modification,
        "loans.versions.record_event",
    ),
    Failure(
        "roll_payment / audit",
        with_draft_modification,
        _roll_payment,
        "loans.versions.record_event",
    ),
    Failure(
        "activate modification / new version",
        with_draft_modification,
        _activate_modification,
        "loans.versions.new_schedule_version",
    ),
    Failure(
        "activate modification / rebuild",
        with_draft_modification,
        _activate_modification,
        "loans.versions.rebuild_schedule",
    ),
    Failure(
        "activate modification / audit",
        with_draft_modification,
        _activate_modification,
        "loans.versions.record_event",
    ),
    Failure(
        "cancel_modification (draft) / audit",
        with_draft_modification,
        _cancel_modification,
        "loans.versions.record_event",
    ),
    Failure(
        "cancel_modification (active) / rebuild",
        with_active_modification,
        _cancel_modification,
        "loans.versions.rebuild_schedule",
    ),
    Failure(
        "cancel_modification (active) / audit",
        with_active_modification,
        _cancel_modification,
        "loans.versions.record_event",
    ),
    Failure("post_payoff / new version", _active, _pay_off, "loans.versions.new_schedule_version"),
    Failure("post_payoff / rebuild", _active, _pay_off, "loans.versions.rebuild_schedule"),
    Failure("post_payoff / audit", _active, _pay_off, "loans.versions.record_event"),
    Failure("creditBalanceRefund / rebuild", overpaid, _refund, "loans.versions.rebuild_schedule"),
    Failure("creditBalanceRefund / audit", overpaid, _refund, "loans.versions.record_event"),
]


class Injected(Exception):
    pass


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failure", FAILURES, ids=[f.name for f in FAILURES])
def test_failure_half_way_leaves_nothing(failure, operator):
    set_business_date(AS_OF)
    loan = failure.prepare(operator)
    before = loan_state(loan.pk)
    assert connection.in_atomic_block is False  # the command's transaction is the real one

    with mock.patch(failure.patch, side_effect=Injected("injected")), pytest.raises(Injected):
        failure.run(Loan.objects.get(pk=loan.pk), operator)

    assert loan_state(loan.pk) == before


def test_a_domain_error_is_not_an_injected_failure():
    assert not issubclass(Injected, DomainError)
