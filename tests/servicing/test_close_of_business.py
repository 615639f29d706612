"""Close of business (DESIGN §10): steps, catch-up, idempotency, failures, jobs, autopay."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from loans.models import (
    BusinessDate,
    DelinquencyBucket,
    LoanEvent,
    LoanSetup,
    Transaction,
    TransactionType,
)
from loans.services import post_transaction
from loans.versions import lock_loan
from servicing import autopay as autopay_services
from servicing import close_of_business as cob
from servicing import services
from servicing.models import (
    AutopayStatus,
    DelinquencyChange,
    Job,
    JobFailure,
    JobStatus,
    LoanDailySnapshot,
    ScheduledPayment,
    ScheduledPaymentStatus,
)
from tests.factories import make_active_loan, set_business_date

ACTIVATED = date(2026, 1, 15)  # 1,000 at 12 %, 12 monthly from 2026-02-01: payment 88.85


@pytest.fixture
def loan(db, operator):
    set_business_date(ACTIVATED)
    return make_active_loan(actor=operator)


def post(loan, type: str, on: date, amount: str, actor):
    """Post a transaction dated ``on`` with the business date moved to ``on``."""
    set_business_date(max(on, BusinessDate.objects.get(pk=1).date))
    return post_transaction(loan=loan, type=type, on=on, amount=Decimal(amount), actor=actor)


def close(on: date, actor, **kwargs) -> Job:
    set_business_date(max(on, BusinessDate.objects.get(pk=1).date))
    return cob.close_business_day(business_date=on, actor=actor, **kwargs)


def test_catch_up_closes_every_day_from_activation_in_order(loan, operator):
    job = close(date(2026, 2, 1), operator)
    assert (job.status, job.total, job.done, job.failed) == (JobStatus.DONE, 1, 1, 0)
    days = list(LoanDailySnapshot.objects.filter(loan=loan).values_list("business_date", flat=True))
    assert len(days) == 18
    assert days[0] == ACTIVATED and days[-1] == date(2026, 2, 1)
    loan.refresh_from_db()
    assert loan.last_closed_business_date == date(2026, 2, 1)
    assert loan.delinquency_bucket == DelinquencyBucket.CURRENT
    snap = LoanDailySnapshot.objects.get(loan=loan, business_date=date(2026, 2, 1))
    assert (snap.status, snap.servicing_status, snap.days_past_due) == ("ACTIVE", "ACTIVE", 0)
    assert snap.principal_outstanding == Decimal("1000.00")
    assert snap.interest_outstanding == Decimal("66.19")
    assert snap.amount_past_due == Decimal("0.00")
    # payoff on the first due date: all principal + installment 1's interest (10.00)
    assert snap.payoff_total == Decimal("1010.00")
    assert snap.job_id == job.pk


def test_a_run_for_a_date_before_the_activation_closes_none_of_its_days(loan, operator):
    """A never-closed loan's first day is its activation date: a run for an earlier date leaves
    it never closed (it used to close that date, and the next run caught up from there)."""
    set_business_date(date(2026, 1, 20))
    early = cob.close_business_day(business_date=date(1999, 12, 31), actor=operator)
    assert (early.status, early.total, early.done, early.failed) == (JobStatus.DONE, 1, 1, 0)
    loan.refresh_from_db()
    assert loan.last_closed_business_date is None
    assert not LoanDailySnapshot.objects.filter(loan=loan).exists()
    job = cob.close_business_day(business_date=date(2026, 1, 20), actor=operator)
    assert (job.status, job.done) == (JobStatus.DONE, 1)
    days = list(LoanDailySnapshot.objects.filter(loan=loan).values_list("business_date", flat=True))
    assert days == [ACTIVATED + timedelta(days=n) for n in range(6)]


def test_delinquency_change_is_recorded_with_an_audit_event(loan, operator):
    close(date(2026, 2, 1), operator)
    close(date(2026, 2, 2), operator)
    loan.refresh_from_db()
    assert loan.delinquency_bucket == DelinquencyBucket.DPD_1_30
    change = DelinquencyChange.objects.get(loan=loan)
    assert (change.business_date, change.from_bucket, change.to_bucket, change.days_past_due) == (
        date(2026, 2, 2),
        "CURRENT",
        "DPD_1_30",
        1,
    )
    event = LoanEvent.objects.get(loan=loan, command="delinquency_change")
    assert event.changes == {"delinquency_bucket": ["CURRENT", "DPD_1_30"]}
    close(date(2026, 3, 3), operator)  # 30 days past due: still DPD_1_30; 3 March: 30
    loan.refresh_from_db()
    snap = LoanDailySnapshot.objects.get(loan=loan, business_date=date(2026, 3, 3))
    assert snap.days_past_due == 30
    assert snap.amount_past_due == Decimal("177.70")  # two installments of 88.85
    assert loan.delinquency_bucket == DelinquencyBucket.DPD_1_30
    close(date(2026, 3, 4), operator)
    loan.refresh_from_db()
    assert loan.delinquency_bucket == DelinquencyBucket.DPD_31_60
    assert DelinquencyChange.objects.filter(loan=loan).count() == 2


def test_running_a_day_twice_changes_nothing(loan, operator):
    close(date(2026, 2, 5), operator)
    counts = (LoanDailySnapshot.objects.count(), LoanEvent.objects.count())
    again = close(date(2026, 2, 5), operator)
    assert (again.status, again.total, again.done) == (JobStatus.DONE, 0, 0)
    assert (LoanDailySnapshot.objects.count(), LoanEvent.objects.count()) == (
        counts[0],
        counts[1] + 1,  # only the job's own run_close_of_business event
    )
    # a single loan re-closed directly does nothing either
    assert (
        cob.close_business_day_for_loan(loan=loan, business_date=date(2026, 2, 5), actor=operator)
        == []
    )


def test_late_fee_once_per_installment_after_the_grace_days(loan, operator):
    LoanSetup.objects.filter(pk=loan.setup_id).update(
        late_fee_amount=Decimal("15.00"), late_fee_grace_days=10
    )
    close(date(2026, 2, 10), operator)
    assert not Transaction.objects.filter(loan=loan, type=TransactionType.CHARGE).exists()
    close(date(2026, 2, 11), operator)
    fee = Transaction.objects.get(loan=loan, type=TransactionType.CHARGE)
    assert (fee.date, fee.amount, fee.external_id) == (
        date(2026, 2, 11),
        Decimal("15.00"),
        f"late-fee-{loan.pk}-2026-02-01",
    )
    assert fee.created_by == operator  # the actor of the run (the nightly one: system)
    close(date(2026, 2, 20), operator)
    assert Transaction.objects.filter(loan=loan, type=TransactionType.CHARGE).count() == 1
    snap = LoanDailySnapshot.objects.get(loan=loan, business_date=date(2026, 2, 11))
    assert snap.fees_outstanding == Decimal("15.00")
    # the fee is charged into the installment whose period holds its date (the next one)
    assert snap.amount_past_due == Decimal("88.85")


def test_a_paid_installment_gets_no_late_fee(loan, operator):
    LoanSetup.objects.filter(pk=loan.setup_id).update(
        late_fee_amount=Decimal("15.00"), late_fee_grace_days=0
    )
    set_business_date(date(2026, 2, 1))
    post_transaction(
        loan=loan, type="REPAYMENT", on=date(2026, 2, 1), amount=Decimal("88.85"), actor=operator
    )
    job = close(date(2026, 2, 3), operator)
    assert job.failed == 0, list(job.failures.values_list("error", flat=True))
    assert not Transaction.objects.filter(loan=loan, type=TransactionType.CHARGE).exists()
    assert (
        LoanDailySnapshot.objects.get(loan=loan, business_date=date(2026, 2, 3)).days_past_due == 0
    )


def test_not_servicing_loan_is_only_watched(loan, operator):
    LoanSetup.objects.filter(pk=loan.setup_id).update(
        late_fee_amount=Decimal("15.00"), late_fee_grace_days=0
    )
    autopay_services.setup_autopay(loan=loan, actor=operator)
    services.cancel_servicing(loan=loan, reason="BANKRUPTCY", actor=operator)
    close(date(2026, 2, 5), operator)
    loan.refresh_from_db()
    assert not Transaction.objects.filter(loan=loan, type=TransactionType.CHARGE).exists()
    assert not ScheduledPayment.objects.filter(
        loan=loan, status=ScheduledPaymentStatus.PENDING
    ).exists()
    snap = LoanDailySnapshot.objects.get(loan=loan, business_date=date(2026, 2, 5))
    assert (snap.servicing_status, snap.days_past_due, snap.delinquency_bucket) == (
        "NOT_SERVICING",
        4,
        "DPD_1_30",
    )
    assert loan.last_closed_business_date == date(2026, 2, 5)


def test_a_failing_loan_is_recorded_and_the_others_go_on(loan, operator, monkeypatch):
    other = make_active_loan(actor=operator)
    real = cob.close_loan_day

    def flaky(*, loan, day, **kwargs):
        if loan == other.pk and day == date(2026, 1, 20):
            raise RuntimeError("disk on fire")
        return real(loan=loan, day=day, **kwargs)

    monkeypatch.setattr(cob, "close_loan_day", flaky)
    job = close(date(2026, 1, 25), operator, batch_size=1)
    assert (job.status, job.total, job.done, job.failed) == (JobStatus.FAILED, 2, 1, 1)
    failure = JobFailure.objects.get(job=job)
    assert (failure.loan_id, failure.business_date, failure.error) == (
        other.pk,
        date(2026, 1, 20),
        "RuntimeError: disk on fire",
    )
    other.refresh_from_db()
    assert other.last_closed_business_date == date(2026, 1, 19)  # the days before it stand
    loan.refresh_from_db()
    assert loan.last_closed_business_date == date(2026, 1, 25)
    monkeypatch.setattr(cob, "close_loan_day", real)
    cob.retry_failed_loan(failure_id=failure.pk, actor=operator)
    job.refresh_from_db()
    other.refresh_from_db()
    assert (job.status, job.done, job.failed) == (JobStatus.DONE, 2, 0)
    assert other.last_closed_business_date == date(2026, 1, 25)


def test_worker_killed_mid_batch_leaves_whole_days_and_rerun_finishes(loan, operator, monkeypatch):
    """A kill is a BaseException escaping mid-loan: the day being closed rolls back whole."""
    real = cob.bound_insert  # the snapshot's INSERT, the day's last step
    calls = {"n": 0}

    def dying(model, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("worker killed")
        return real(model, **kwargs)

    monkeypatch.setattr(cob, "bound_insert", dying)
    set_business_date(date(2026, 1, 20))
    job = cob.create_job(business_date=date(2026, 1, 20), actor=operator)
    ids = cob.start_job(job.pk)
    with pytest.raises(KeyboardInterrupt):
        cob.close_batch(job_id=job.pk, loan_ids=ids, actor=operator)
    loan.refresh_from_db()
    assert loan.last_closed_business_date == date(2026, 1, 16)
    assert LoanDailySnapshot.objects.filter(loan=loan).count() == 2
    monkeypatch.setattr(cob, "bound_insert", real)
    # the message is delivered again (acks_late): the same batch finishes the job
    cob.close_batch(job_id=job.pk, loan_ids=ids, actor=operator)
    job.refresh_from_db()
    loan.refresh_from_db()
    assert (job.status, job.done, job.failed) == (JobStatus.DONE, 1, 0)
    assert loan.last_closed_business_date == date(2026, 1, 20)
    assert LoanDailySnapshot.objects.filter(loan=loan).count() == 6
    # delivered a third time: counted once
    cob.close_batch(job_id=job.pk, loan_ids=ids, actor=operator)
    job.refresh_from_db()
    assert job.done == 1


def test_nightly_run_moves_the_business_date_on(loan, operator):
    set_business_date(date(2026, 1, 31))
    job = cob.close_business_day(actor=operator, advance_business_date=True)
    assert job.business_date == date(2026, 1, 31)
    assert BusinessDate.objects.get(pk=1).date == date(2026, 2, 1)


def test_cannot_close_a_day_after_the_business_date(loan, operator):
    from loans.exceptions import InvalidRequestError

    with pytest.raises(InvalidRequestError) as err:
        cob.create_job(business_date=date(2026, 1, 16), actor=operator)
    assert err.value.code == "future_date"


def _statements_and_round_trips(func) -> tuple[int, int]:
    """SQL statements (SAVEPOINT/RELEASE of the test's transaction left out) and the round
    trips that carried them (``run_together`` joins several into one on PostgreSQL)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        func()
    sent = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    return sum(sql.count(";\n") + 1 for sql in sent), len(sent)


def test_statements_per_loan_day_are_constant(loan, operator):
    """Four statements per loan-day, whatever the history: the loan row lock, the stored
    schedule as plain values (with whether the loan has an active autopay and a transaction
    after the day), the snapshot, the loan's last closed date; a job's day adds its count.
    (Was ten: the schedule as model instances, the payoff's replay of every transaction, the
    credit balance, the autopay read.) On PostgreSQL they go in two round trips (the lock with
    the schedule, then the writes); elsewhere one each."""
    from django.db import connection

    from servicing.statements import _combines

    other = make_active_loan(actor=operator)
    close(date(2026, 1, 15), operator)
    for _ in range(5):
        post(loan, "CHARGE", date(2026, 1, 15), "1.00", operator)
    for _ in range(30):
        post(other, "REPAYMENT", date(2026, 1, 15), "1.00", operator)
    set_business_date(date(2026, 1, 16))
    joined = _combines(connection)
    for each in (loan, other):
        counted = _statements_and_round_trips(
            lambda each=each: cob.close_loan_day(
                loan=each.pk, day=date(2026, 1, 16), actor=operator
            )
        )
        assert counted == ((4, 2) if joined else (4, 4))
    set_business_date(date(2026, 1, 17))
    job = cob.create_job(business_date=date(2026, 1, 17), actor=operator)
    cob.start_job(job.pk)
    counted = _statements_and_round_trips(  # + the job's count
        lambda: cob.close_loan_day(
            loan=other.pk,
            day=date(2026, 1, 17),
            actor=operator,
            job_id=job.pk,
            job_business_date=date(2026, 1, 17),
        )
    )
    assert counted == ((5, 2) if joined else (5, 5))
    job.refresh_from_db()
    assert job.done == 1


# ------------------------------------------------------------------------------------- autopay


def test_autopay_generates_one_payment_per_due_date_inside_the_horizon(loan, operator):
    autopay = autopay_services.setup_autopay(loan=loan, process_days_before=3, actor=operator)
    payments = list(ScheduledPayment.objects.filter(autopay=autopay))
    assert [(p.due_date, p.scheduled_date, p.amount) for p in payments] == [
        (date(2026, 2, 1), date(2026, 1, 29), Decimal("88.85"))
    ]
    close(date(2026, 1, 27), operator)  # 27 Jan + 35 days = 3 March: the 1 March due date too
    payments = list(ScheduledPayment.objects.filter(autopay=autopay).order_by("due_date"))
    assert [(p.due_date, p.scheduled_date) for p in payments] == [
        (date(2026, 2, 1), date(2026, 1, 29)),
        (date(2026, 3, 1), date(2026, 2, 26)),
    ]
    close(date(2026, 1, 28), operator)
    assert ScheduledPayment.objects.filter(autopay=autopay).count() == 2


def test_autopay_lead_days_before_the_first_date_of_the_calendar(db, operator):
    """A lead of 30 days before a due date of 0001-01-08 is before 0001-01-01: the payment is
    scheduled on the business date (POST .../autopay was a 500, OverflowError)."""
    set_business_date(date(1, 1, 1))
    early = make_active_loan(
        actor=operator,
        loan_amount=Decimal("1000.00"),
        loan_rate=Decimal("12"),
        loan_term=Decimal("3"),
        payment_frequency="WEEKLY",
        contract_date=date(1, 1, 1),
        first_payment_date=date(1, 1, 8),
    )
    autopay = autopay_services.setup_autopay(loan=early, process_days_before=30, actor=operator)
    payments = ScheduledPayment.objects.filter(autopay=autopay).order_by("due_date")
    assert [(p.due_date, p.scheduled_date) for p in payments] == [
        (date(1, 1, 8), date(1, 1, 1)),
        (date(1, 1, 15), date(1, 1, 1)),
        (date(1, 1, 22), date(1, 1, 1)),
    ]


def test_autopay_never_pays_an_installment_already_past_due(db, operator):
    set_business_date(date(2026, 2, 10))
    late = make_active_loan(actor=operator)
    autopay = autopay_services.setup_autopay(
        loan=late, amount_type="FIXED", amount=Decimal("50.00"), actor=operator
    )
    assert [(p.due_date, p.amount) for p in ScheduledPayment.objects.filter(autopay=autopay)] == [
        (date(2026, 3, 1), Decimal("50.00"))
    ]


def test_schedule_change_moves_pending_autopay_payments(loan, operator):
    autopay = autopay_services.setup_autopay(loan=loan, actor=operator)
    set_business_date(date(2026, 1, 28))
    autopay_services.sync_autopay_payments(loan, as_of=date(2026, 1, 28))
    # the borrower pays installment 1 early: its pending autopay payment follows it
    # (no explicit sync: the repayment command's schedule rebuild calls the loans.hooks receiver)
    post_transaction(
        loan=loan, type="REPAYMENT", on=date(2026, 1, 28), amount=Decimal("50.00"), actor=operator
    )
    amounts = dict(
        ScheduledPayment.objects.filter(autopay=autopay).values_list("due_date", "amount")
    )
    assert amounts == {date(2026, 2, 1): Decimal("38.85"), date(2026, 3, 1): Decimal("88.85")}


def test_cancel_servicing_cancels_autopay_and_counts_its_payments(loan, operator):
    autopay = autopay_services.setup_autopay(loan=loan, actor=operator)
    result = services.cancel_servicing(loan=loan, actor=operator)
    autopay.refresh_from_db()
    assert autopay.status == AutopayStatus.CANCELLED
    assert result.cancelled_scheduled_payments == 1


def test_one_active_autopay_per_loan(loan, operator):
    from loans.exceptions import ConflictError

    autopay_services.setup_autopay(loan=loan, actor=operator)
    with pytest.raises(ConflictError) as err:
        autopay_services.setup_autopay(loan=loan, actor=operator)
    assert err.value.code == "autopay_exists"


def test_cancel_autopay_cancels_its_pending_payments(loan, operator):
    autopay = autopay_services.setup_autopay(loan=loan, actor=operator)
    result = autopay_services.cancel_autopay(autopay_id=autopay.pk, actor=operator, reason="x")
    assert result.cancelled_scheduled_payments == 1
    assert ScheduledPayment.objects.get(autopay=autopay).status == "CANCELLED"


def test_horizon_setting(loan, operator, settings):
    settings.AUTOPAY_HORIZON_DAYS = 60
    autopay = autopay_services.setup_autopay(loan=loan, actor=operator)
    assert ScheduledPayment.objects.filter(autopay=autopay).count() == 2
    assert ACTIVATED + timedelta(days=60) >= date(2026, 3, 1)


# ------------------------------------------------------------------- the snapshot's payoff


def _both_payoffs(loan, on):
    from loans import selectors
    from loans.models import Loan

    locked = lock_loan(loan.pk)
    stored = cob.stored_payoff_total(locked, cob.stored_book(locked, on), on=on)
    return stored, selectors.payoff(Loan.objects.get(pk=loan.pk), on=on).total


@pytest.mark.parametrize(
    "setup",
    [
        {},
        {"interest_recalculation": True},
        {"loan_term": Decimal("36"), "rounding_mode": "HALF_EVEN"},
        {"termination_interest": "ACCRUED_TO_DATE"},
    ],
    ids=["plain", "recalculating", "36-half-even", "accrued-to-date"],
)
def test_snapshot_payoff_from_the_stored_schedule_is_the_selectors(db, operator, setup):
    """The snapshot's payoff is read from the stored schedule (no replay of the history) and is
    exactly what the core's payoff selector quotes, on each day of a loan's life: current,
    paid early and late, with a charge, part-paid, after a termination."""
    from loans import services as core

    set_business_date(ACTIVATED)
    loan = make_active_loan(actor=operator, **setup)
    on = ACTIVATED
    quotes = []

    def check(day):
        set_business_date(day)
        stored, quoted = _both_payoffs(loan, day)
        assert stored == quoted, (day, stored, quoted)
        quotes.append(stored)

    check(on)
    check(date(2026, 1, 20))
    post(loan, "REPAYMENT", date(2026, 1, 20), "50.00", operator)
    check(date(2026, 1, 20))
    check(date(2026, 2, 10))
    post(loan, "CHARGE", date(2026, 2, 10), "15.00", operator)
    check(date(2026, 2, 10))
    post(loan, "REPAYMENT", date(2026, 3, 5), "120.00", operator)
    check(date(2026, 3, 17))
    if not setup.get("interest_recalculation"):
        core.terminate_contract(loan=loan, actor=operator, as_of=date(2026, 3, 17))
        check(date(2026, 3, 17))
        check(date(2026, 4, 2))
    assert len(set(quotes)) > 3  # the figures moved: the comparison compared something


def test_snapshot_payoff_inside_an_advancements_period_is_the_selectors(db, operator):
    """The stored periods keep what the payoff prorates an advancement's period by (its
    ``advanced_within`` and ``unearned_principal``): 500.00 advanced on 16 January earns from
    then, 1,506.77 on 20 January (tests/loans/test_advancement_interest.py), both ways."""
    set_business_date(ACTIVATED)
    loan = make_active_loan(actor=operator)
    set_business_date(date(2026, 1, 16))
    post(loan, "ADVANCEMENT", date(2026, 1, 16), "500.00", operator)
    for day, total in ((date(2026, 1, 16), "1504.84"), (date(2026, 1, 20), "1506.77")):
        set_business_date(day)
        assert _both_payoffs(loan, day) == (Decimal(total), Decimal(total))


def test_snapshot_payoff_of_a_charged_off_loan_is_the_selectors(db, operator):
    from loans import services as core

    set_business_date(date(2026, 3, 10))
    loan = make_active_loan(actor=operator, as_of=ACTIVATED)
    core.charge_off(loan, actor=operator, reason="Bankruptcy", as_of=date(2026, 3, 10))
    for day in (date(2026, 3, 10), date(2026, 4, 20)):
        set_business_date(day)
        stored, quoted = _both_payoffs(loan, day)
        assert stored == quoted


def test_snapshot_payoff_on_a_catch_up_day_before_the_latest_transaction(loan, operator):
    set_business_date(date(2026, 1, 25))
    post(loan, "REPAYMENT", date(2026, 1, 25), "30.00", operator)
    locked = lock_loan(loan.pk)
    book = cob.stored_book(locked, date(2026, 1, 20))
    assert (book.later_transactions, book.has_autopay) == (True, False)
    # no quote before the latest transaction: what the schedule has outstanding
    assert cob.stored_payoff_total(locked, book, on=date(2026, 1, 20)) == Decimal("1036.19")


def test_the_compiled_loan_lock_is_lock_loans(loan, operator, django_assert_num_queries):
    """``lock_loan_row`` (compiled once) gives what ``loans.versions.lock_loan`` gives: the
    loan fresh, with its setup, in one statement; an unknown loan is 404."""
    from django.forms.models import model_to_dict

    from loans.exceptions import NotFoundError

    expected = lock_loan(loan.pk)
    with django_assert_num_queries(1):
        got = cob.lock_loan_row(loan.pk)
        assert got.setup.late_fee_grace_days == expected.setup.late_fee_grace_days
    assert model_to_dict(got) == model_to_dict(expected)
    assert model_to_dict(got.setup) == model_to_dict(expected.setup)
    assert got._state.db == "default" and not got._state.adding
    with pytest.raises(NotFoundError):
        cob.lock_loan_row(loan.pk + 1000)


def _synchronous_commit() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("enabled", [True, False])
def test_a_batch_commits_its_loan_days_asynchronously_then_resets(
    operator, monkeypatch, settings, enabled
):
    """On PostgreSQL a batch's loan-days commit without waiting for the WAL flush (each still
    atomic), and the worker's connection is reset afterwards, also when the batch dies."""
    settings.COB_ASYNCHRONOUS_COMMIT = enabled
    set_business_date(ACTIVATED)
    loans = [make_active_loan(actor=operator) for _ in range(2)]
    set_business_date(date(2026, 1, 18))
    seen = []
    real = cob.close_loan_day

    def watching(**kwargs):
        seen.append(_synchronous_commit())
        return real(**kwargs)

    monkeypatch.setattr(cob, "close_loan_day", watching)
    job = cob.create_job(business_date=date(2026, 1, 18), actor=operator)
    ids = cob.start_job(job.pk)
    assert cob.close_batch(job_id=job.pk, loan_ids=ids, actor=operator) == (2, 0)
    assert seen == ["off" if enabled else "on"] * 8  # 2 loans x 15, 16, 17, 18 Jan
    assert _synchronous_commit() == "on"
    job.refresh_from_db()
    assert (job.status, job.done) == (JobStatus.DONE, 2)
    for loan in loans:
        loan.refresh_from_db()
        assert loan.last_closed_business_date == date(2026, 1, 18)

    def dying(**kwargs):
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(cob, "close_loan_day", dying)
    set_business_date(date(2026, 1, 19))
    job = cob.create_job(business_date=date(2026, 1, 19), actor=operator)
    with pytest.raises(KeyboardInterrupt):
        cob.close_batch(job_id=job.pk, loan_ids=cob.start_job(job.pk), actor=operator)
    assert _synchronous_commit() == "on"
