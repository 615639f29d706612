"""The write path (issue 14): a command writes what it changes, its replay starts from the stored
schedule when its transaction comes after every other one, and its query count does not grow
with the loan's history."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loans import ledger, selectors, services, versions
from loans.exceptions import DuplicateExternalIdError, LoanStateError
from loans.models import SchedulePeriod, Transaction, TransactionType
from loans.statements import combines
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 1, 1)


def loan_with_history(actor, *, prior: int, **setup):
    """A 360-period monthly loan from 2000 with ``prior`` repayments of 10.00, one a day."""
    set_business_date(AS_OF)
    loan = make_active_loan(
        actor=actor,
        loan_amount=Decimal("300000.00"),
        loan_rate=Decimal("6"),
        loan_term=Decimal(360),
        contract_date=date(2000, 1, 1),
        first_payment_date=date(2000, 2, 1),
        as_of=AS_OF,
        **setup,
    )
    Transaction.objects.bulk_create(
        Transaction(
            loan=loan,
            type=TransactionType.REPAYMENT,
            date=date(2000, 2, 1) + timedelta(days=i),
            amount=Decimal("10.00"),
        )
        for i in range(prior)
    )
    versions.rebuild_schedule(loan)
    loan.refresh_from_db()
    return loan


def stored_state(loan):
    schedule = selectors.current_schedule(loan)
    periods = list(
        SchedulePeriod.objects.filter(schedule=schedule)
        .order_by("period")
        .values_list("frozen", *versions.PERIOD_FIELDS)
    )
    portions = list(
        Transaction.objects.filter(loan=loan)
        .order_by("id")
        .values_list("id", *versions.PORTION_FIELDS)
    )
    return periods, portions, loan.status, loan.sub_status


def tx_portions(tx):
    return (tx.principal_portion, tx.interest_portion, tx.fees_portion, tx.overpayment_portion)


def rebuilt_state(loan):
    """The same loan after a rebuild replaying the whole history (the reference)."""
    versions.rebuild_schedule(loan)
    return stored_state(loan)


# ------------------------------------------------------------------ the resumed replay is exact


STEP = st.tuples(
    st.sampled_from([TransactionType.REPAYMENT, TransactionType.CHARGE, TransactionType.CREDIT]),
    st.integers(min_value=0, max_value=40),  # days after the previous transaction
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("400.00"), places=2),
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=1, max_size=8), standard=st.booleans())
def test_resumed_replay_equals_the_whole_replay(operator, steps, standard):
    """Transactions posted after the history (resumed from the stored schedule) leave exactly
    what a rebuild from every transaction writes: periods, portions, status."""
    set_business_date(date(2026, 12, 31))
    loan = make_active_loan(
        actor=operator,
        loan_amount=Decimal("1000.00"),
        loan_rate=Decimal("12"),
        loan_term=Decimal(6),
        contract_date=date(2026, 1, 1),
        first_payment_date=date(2026, 2, 1),
        schedule_engine="STANDARD" if standard else "DYNAMIC",
        as_of=date(2026, 12, 31),
    )
    on = date(2026, 1, 1)
    for type, gap, amount in steps:
        on = min(on + timedelta(days=gap), date(2026, 12, 31))
        loan.refresh_from_db()
        if type != TransactionType.CHARGE:
            if loan.status != "ACTIVE":
                continue
            amount = min(amount, versions.live_outstanding(loan))
        tx = services.post_transaction(loan=loan, type=type, on=on, amount=amount, actor=operator)
        loan.refresh_from_db()
        after = stored_state(loan)
        if type != TransactionType.CHARGE:
            assert sum(tx_portions(tx)) == amount
        assert rebuilt_state(loan) == after


def test_repayment_after_history_writes_only_the_periods_it_pays(operator):
    loan = loan_with_history(operator, prior=20)
    with CaptureQueriesContext(connection) as queries:
        tx = services.post_transaction(
            loan=loan,
            type=TransactionType.REPAYMENT,
            on=AS_OF,
            amount=Decimal("1.00"),
            actor=operator,
        )
    sql = _statements(queries)
    assert not [s for s in sql if s.startswith("DELETE")]
    assert len([s for s in sql if s.startswith("INSERT")]) == 2  # the transaction, the audit
    period_updates = [s for s in sql if s.startswith('UPDATE "loans_scheduleperiod"')]
    assert len(period_updates) == 1
    # The oldest unpaid installment takes the 1.00 (as interest); nothing else changes.
    assert (tx.principal_portion, tx.interest_portion, tx.fees_portion) == (
        Decimal("0.00"),
        Decimal("1.00"),
        Decimal("0.00"),
    )
    assert rebuilt_state(loan) == stored_state(loan)


# ------------------------------------------------------------------ constant query counts

# The same bound at 20 and at 500 prior transactions (the counts are equal, asserted too).


def _count(func):
    with CaptureQueriesContext(connection) as queries:
        func()
    return len(queries.captured_queries)


def _repay(loan, actor):
    services.post_transaction(
        loan=loan, type=TransactionType.REPAYMENT, on=AS_OF, amount=Decimal("5.00"), actor=actor
    )


def _charge(loan, actor):
    services.post_transaction(
        loan=loan, type=TransactionType.CHARGE, on=AS_OF, amount=Decimal("5.00"), actor=actor
    )


def _terminate(loan, actor):
    services.terminate_contract(loan=loan, actor=actor, note="bench")


def _preview(loan, actor):
    preview = selectors.preview_contract_termination(loan)
    assert preview.allowed


COMMANDS = {
    # savepoint, business date, lock, one read (the current schedule, its periods, the latest
    # transaction's date, the contract date: ``versions.PostingState``), the transaction's
    # insert with its portions, one UPDATE of the paid period, autopay check, audit, release.
    # (Was 16: the contract date, the outstanding aggregate, the schedule, its periods and
    # the later-transaction check apart, a savepoint around the insert, its portions after.)
    "repayment": (_repay, 9, {}),
    "charge": (_charge, 9, {}),
    "termination": (_terminate, 19, {}),
    "termination preview": (_preview, 5, {}),
    # A recalculating loan replays from its stored engine state (read, checked against the
    # history, replaced: 4 statements more; its portions are written after the insert),
    # whatever the history's length.
    "recalculating repayment": (_repay, 17, {"interest_recalculation": True}),
}


def _statements(captured) -> list[str]:
    """Each SQL statement sent (several joined in one round trip on PostgreSQL, by
    ``loans.statements.run_together``, count one each)."""
    return [sql for q in captured.captured_queries for sql in q["sql"].split(";\n")]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_command_queries_do_not_grow_with_history(operator, django_assert_max_num_queries, command):
    func, bound, setup = COMMANDS[command]
    counts, trips = [], []
    for prior in (20, 500):
        loan = loan_with_history(operator, prior=prior, **setup)
        with django_assert_max_num_queries(bound) as captured:
            func(loan, operator)
        counts.append(len(_statements(captured)))
        trips.append(len(captured.captured_queries))
    assert counts == [bound, bound], counts
    assert trips[0] == trips[1], trips


def test_termination_derives_once(operator, monkeypatch):
    """The command and its preview start from the stored schedule: no history replay."""
    loan = loan_with_history(operator, prior=20)
    calls = []
    real = versions.derive_periods
    monkeypatch.setattr(
        versions, "derive_periods", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    replays = []
    real_replay = ledger.replay
    monkeypatch.setattr(
        ledger, "replay", lambda *a, **k: replays.append(k.get("resume")) or real_replay(*a, **k)
    )
    result = services.terminate_contract(loan=loan, actor=operator, note="x")
    assert calls == [] and replays == [True]
    assert result.transaction.amount > 0
    loan.refresh_from_db()
    assert rebuilt_state(loan) == stored_state(loan)


def test_recalculating_termination_replays_the_history_once(operator, monkeypatch):
    """A recalculating loan's termination (command and preview) replays its history once: the
    engine is copied before the termination (``progressive.recalculate_with``)."""
    from loans import progressive

    loan = loan_with_history(operator, prior=20, interest_recalculation=True)
    calls = []
    for name in ("recalculate", "recalculate_with"):
        real = getattr(progressive, name)
        monkeypatch.setattr(
            progressive,
            name,
            lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k),
        )
    result = services.terminate_contract(loan=loan, actor=operator, note="x")
    assert calls == ["recalculate_with"]
    loan.refresh_from_db()
    monkeypatch.undo()
    assert rebuilt_state(loan) == stored_state(loan)
    assert result.transaction.amount == sum(
        Transaction.objects.filter(pk=result.transaction.pk).values_list(
            "principal_portion", "interest_portion", "fees_portion"
        )[0]
    )


@settings(max_examples=25, deadline=None)
@given(
    days=st.lists(st.integers(min_value=0, max_value=45), min_size=0, max_size=8),
    amounts=st.lists(
        st.decimals(min_value=Decimal("1.00"), max_value=Decimal("60.00"), places=2),
        min_size=8,
        max_size=8,
    ),
    extra_type=st.sampled_from(["REPAYMENT", "CONTRACT_TERMINATION", "CHARGE"]),
    policy=st.sampled_from(["ALL_OUTSTANDING", "ACCRUED_TO_DATE"]),
)
def test_recalculate_with_equals_two_replays(days, amounts, extra_type, policy):
    from loans import progressive, schedules

    terms = schedules.Terms(
        loan_amount=Decimal("100.00"),
        annual_rate_percent=Decimal("7"),
        term=Decimal(6),
        frequency="MONTHLY",
        contract_date=date(2024, 1, 1),
        first_payment_date=date(2024, 2, 1),
        rounding_mode="HALF_EVEN",
    )
    on, events = date(2024, 1, 1), []
    for k, gap in enumerate(days):
        on += timedelta(days=gap)
        events.append(progressive.Event(key=k, type="REPAYMENT", date=on, amount=amounts[k]))
    extra = progressive.Event(
        key="x", type=extra_type, date=on + timedelta(days=3), amount=amounts[-1]
    )
    horizon = on + timedelta(days=10)
    pair = progressive.recalculate_with(
        terms, events, extra, horizon=horizon, termination_interest=policy
    )
    alone = (
        progressive.recalculate(terms, events, horizon=horizon, termination_interest=policy),
        progressive.recalculate(
            terms, [*events, extra], horizon=horizon, termination_interest=policy
        ),
    )
    for got, want in zip(pair, alone, strict=True):
        assert got.rows == want.rows
        assert dict(got.allocations) == dict(want.allocations)
        assert (got.unallocated, got.terminated_on, got.void_terminations) == (
            want.unallocated,
            want.terminated_on,
            want.void_terminations,
        )


# ------------------------------------------------------------------ the repayment command

CLOCK_START = date(2026, 1, 1)


def _post(loan, actor, amount, *, on=CLOCK_START, type=TransactionType.REPAYMENT, **kw):
    """A transaction dated and posted on ``on`` (the business date)."""
    return services.post_transaction(
        loan=loan, type=type, on=on, amount=Decimal(amount), actor=actor, as_of=on, **kw
    )


def clock_loan(actor):
    """The clock benchmark's loan: 36 monthly periods, activated, 9 repayments (10 transactions
    with the disbursement)."""
    set_business_date(CLOCK_START)
    loan = make_active_loan(
        actor=actor,
        loan_term=Decimal("36"),
        contract_date=CLOCK_START - timedelta(days=400),
        first_payment_date=CLOCK_START - timedelta(days=370),
        as_of=CLOCK_START,
    )
    for k in range(9):
        _post(loan, actor, "20.00", on=CLOCK_START - timedelta(days=360 - 30 * k))
    loan.refresh_from_db()
    return loan


def _dispatched(loan, actor, on, external_id):
    """A repayment as the dispatcher posts it (its date and business date, an external id)."""
    return _post(loan, actor, "20.00", on=on, external_id=external_id, note="Scheduled payment")


def test_a_dispatched_repayment_costs_9_statements_whatever_the_loan(
    operator, django_assert_max_num_queries
):
    """The dispatcher's repayment (dated after the history, with an external id): savepoint,
    lock, the one read after it, the external id check, the insert with its portions, the
    paid period's UPDATE, autopay check, audit, release. The same on a 360-period loan with 20
    or 500 prior transactions (rebuilt from them: its latest stored ledger state is dated on
    the latest transaction). On PostgreSQL in 6 round trips: the lock, the read and the
    external id check go in one, the insert and the paid period's UPDATE in one (was 7). On
    the clock benchmark's 36-period loan, whose history was posted one repayment a month, the
    same 9: its latest stored state is fewer than ``versions.APPENDED_STATE_PERIODS`` periods
    old, so the repayment stores none (once in 6 periods it does: 3 statements more,
    ``tests/loans/test_ledger_state.py``); its 20.00 pays two periods, whose UPDATE goes alone
    (7 round trips)."""
    loans = [
        (clock_loan(operator), CLOCK_START, 9, 7),
        (loan_with_history(operator, prior=20), AS_OF, 9, 6),
        (loan_with_history(operator, prior=500), AS_OF, 9, 6),
    ]
    for n, (loan, on, bound, trips) in enumerate(loans):
        with django_assert_max_num_queries(bound) as captured:
            tx = _dispatched(loan, operator, on, f"dispatch-{n}")
        sql = _statements(captured)
        assert len(sql) == bound, sql
        # on PostgreSQL the lock, the read and the external id check go in one round trip,
        # the insert and the paid period's UPDATE in one
        assert len(captured.captured_queries) == (trips if combines(connection) else bound)
        assert len([s for s in sql if s.startswith("UPDATE")]) == 1  # the paid period only
        assert not [s for s in sql if s.startswith('UPDATE "loans_transaction"')]
        assert sum(tx_portions(tx)) == Decimal("20.00")
        assert rebuilt_state(loan) == stored_state(loan)


def test_the_dispatched_repayment_gives_the_figures_of_the_rebuild_after_the_insert(
    operator, monkeypatch
):
    """The same repayments on twin loans, one through ``resume_appended`` (replayed before the
    insert), the other with it off (inserted, then ``rebuild_schedule`` resumes from the
    stored periods as before): the same portions, periods and status, to the cent; the last
    one pays the loan off (CLOSED), a credit after it is refused (loan_closed) on both."""
    fast, slow = clock_loan(operator), clock_loan(operator)
    real = versions.resume_appended
    outcomes = {}
    for label, loan in (("fast", fast), ("slow", slow)):
        if label == "slow":
            monkeypatch.setattr(versions, "resume_appended", lambda *a, **k: None)
        results = [
            tx_portions(_post(loan, operator, amount, external_id=f"{label}-{n}"))
            for n, amount in enumerate(["20.00", "0.01", "35.37", "150.00"])
        ]
        results.append(tx_portions(_post(loan, operator, "7.50", type=TransactionType.CHARGE)))
        results.append(tx_portions(_post(loan, operator, versions.live_outstanding(loan))))
        loan.refresh_from_db()
        with pytest.raises(LoanStateError):
            _post(loan, operator, "0.01", type=TransactionType.CREDIT)
        periods, portions, *_ = stored_state(loan)
        outcomes[label] = (results, periods, [p[1:] for p in portions], loan.status)
        assert rebuilt_state(loan) == stored_state(loan)
    monkeypatch.setattr(versions, "resume_appended", real)
    assert outcomes["fast"] == outcomes["slow"]
    assert outcomes["fast"][3] == "CLOSED"


@pytest.mark.parametrize("checked", [True, False])
def test_a_duplicate_external_id_refuses_and_writes_nothing(operator, monkeypatch, checked):
    """Refused by the check, or (taken in the meantime: the check sees nothing) by the unique
    constraint at the insert, which has no savepoint of its own: the command's is rolled back
    and the connection goes on."""
    loan = loan_with_history(operator, prior=5)
    _dispatched(loan, operator, AS_OF, "dispatch-dup")
    before = stored_state(loan)
    if not checked:
        monkeypatch.setattr(versions, "check_external_id", lambda *a, **k: None)
    with pytest.raises(DuplicateExternalIdError):
        _dispatched(loan, operator, AS_OF, "dispatch-dup")
    assert stored_state(loan) == before
    assert Transaction.objects.filter(external_id="dispatch-dup").count() == 1
