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
from django.db import connection, connections

from loans import services
from loans.exceptions import DomainError
from loans.models import (
    IdempotencyRecord,
    Loan,
    LoanEvent,
    LoanSetup,
    LoanStatus,
    Schedule,
    SchedulePeriod,
    Transaction,
    TransactionType,
)
from tests.conftest import token_client
from tests.factories import make_active_loan, make_loan, set_business_date

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
        from modifications.services import activate_loan

        return activate_loan(loan=Loan.objects.get(pk=loan.pk), actor=operator, as_of=AS_OF)

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


@dataclass(frozen=True)
class Race:
    name: str
    run: Callable  # (operator) -> None, asserting the end state


RACES = [
    Race("repayment vs repayment", race_two_repayments),
    Race("activate vs activate", race_two_activations),
    Race("same Idempotency-Key twice", race_same_idempotency_key),
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
    from modifications.services import activate_loan

    activate_loan(loan=loan, actor=operator, as_of=AS_OF)


def _update_setup(loan, operator):
    services.update_setup(
        setup=loan.setup, changes={"loan_amount": Decimal("1500.00")}, actor=operator
    )


FAILURES = [
    Failure("post_transaction / rebuild", _active, _repay, "loans.services.rebuild_schedule"),
    Failure("post_transaction / audit", _active, _repay, "loans.services.record_event"),
    Failure(
        "reverse_transaction / rebuild",
        _active_with_repayment,
        _reverse,
        "loans.services.rebuild_schedule",
    ),
    Failure(
        "reverse_transaction / audit",
        _active_with_repayment,
        _reverse,
        "loans.services.record_event",
    ),
    Failure("activate_loan / rebuild", _pending, _activate, "loans.services.rebuild_schedule"),
    Failure("activate_loan / audit", _pending, _activate, "loans.services.record_event"),
    Failure("update_setup / audit", _pending, _update_setup, "loans.services.record_event"),
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
