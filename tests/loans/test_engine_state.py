"""Stored engine states of the daily-accrual engine (issue 14, DESIGN §11): a command on a
recalculating loan replays from the latest stored state before what it changed, and the result
is exactly the whole replay's: every period and every transaction's portions, to the cent.

The pure engine is checked with hypothesis (random histories cut at any stored state), then
the commands through the services: repayments after and before the history, the reversal of
an old one, termination and its undo, charge-off, a modification, each compared with a replay
from the loan's start; statements stay the same whatever the history's length.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loans import progressive, selectors, services, versions
from loans.models import EngineState, Schedule, Transaction, TransactionType
from loans.schedules import Terms
from modifications import services as modifications
from tests.factories import make_loan, set_business_date

D = Decimal
START = date(2024, 1, 1)


# ------------------------------------------------------------------ the pure engine

TERMS = st.builds(
    Terms,
    loan_amount=st.sampled_from([D("100.00"), D("5000.00"), D("123456.78")]),
    annual_rate_percent=st.sampled_from([D("7"), D("12.5"), D("0")]),
    term=st.sampled_from([D(6), D(24)]),
    frequency=st.sampled_from(["MONTHLY", "BIWEEKLY"]),
    contract_date=st.just(START),
    first_payment_date=st.sampled_from([START + timedelta(days=31), START + timedelta(days=14)]),
    days_in_year=st.sampled_from(["FREQUENCY", "ACTUAL_365", "ACTUAL_ACTUAL"]),
    rounding_mode=st.sampled_from(["HALF_UP", "HALF_EVEN"]),
)
KINDS = [progressive.REPAYMENT] * 6 + [
    progressive.CREDIT,
    progressive.CHARGE,
    progressive.ADVANCEMENT,
    progressive.CONTRACT_TERMINATION,
    progressive.CHARGE_OFF,
    progressive.CREDIT_BALANCE_REFUND,
]
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(min_value=0, max_value=400),
        st.sampled_from([D("1.00"), D("17.01"), D("250.00"), D("999.99")]),
    ),
    max_size=25,
)


def _events(raw) -> list[progressive.Event]:
    return [
        progressive.Event(key=n + 1, type=kind, date=START + timedelta(days=day), amount=amount)
        for n, (kind, day, amount) in enumerate(raw)
    ]


def _whole(terms, events, horizon):
    return progressive.recalculate(terms, events, horizon=horizon)


def _follows(events, checkpoint):
    """The events after a checkpoint in (date, entry) order (keys are entry order)."""
    ordered = sorted(events, key=lambda e: (e.date, e.key))
    return [
        e
        for e in ordered
        if e.date > checkpoint.on
        or (e.date == checkpoint.on and (checkpoint.key is None or e.key > checkpoint.key))
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(terms=TERMS, raw=EVENTS, more=EVENTS, pick=st.integers(min_value=0, max_value=50))
def test_resuming_from_any_stored_state_equals_the_whole_replay(terms, raw, more, pick):
    """Cut a history at a stored state, add events (later or backdated), resume: the same
    installments and the same portions of every event replayed as the whole replay."""
    first = _events(raw)
    horizon = START + timedelta(days=500)
    with mock.patch.object(progressive, "EVENTS_PER_STATE", 3):  # lasting states too
        resumed = progressive.resume(terms, first, start=None, horizon=horizon)
    whole = _whole(terms, first, horizon)
    assert resumed.result.rows == whole.rows
    assert dict(resumed.result.allocations) == dict(whole.allocations)
    assert resumed.result.void_terminations == whole.void_terminations
    if not resumed.checkpoints:
        return
    every = first + [
        progressive.Event(key=len(first) + 1 + n, type=e.type, date=e.date, amount=e.amount)
        for n, e in enumerate(_events(more))
    ]
    # Any state before the earliest added event stands (and the head if nothing was added).
    earliest = min((e.date for e in every[len(first) :]), default=date.max)
    usable = [c for c in resumed.checkpoints if c.on <= earliest]
    if not usable:
        return
    start = usable[pick % len(usable)]
    with mock.patch.object(progressive, "EVENTS_PER_STATE", 3):
        again = progressive.resume(terms, _follows(every, start), start=start, horizon=horizon)
    whole = _whole(terms, every, horizon)
    if again is None:  # a charge paid from a credit overpaid before the state: replay it all
        return
    assert again.result.rows == whole.rows
    for event in _follows(every, start):
        assert again.result.allocations.get(event.key) == whole.allocations.get(event.key)
    assert again.result.unallocated == whole.unallocated
    assert again.result.terminated_on == whole.terminated_on
    assert again.result.void_terminations == whole.void_terminations


def test_a_charge_paid_from_a_credit_overpaid_before_the_state_replays_everything():
    """The charge re-allocates the overpayment (4.74 of its 5.00 become fees), which a replay
    resumed after it cannot write: ``resume`` answers None, the whole replay has the figures."""
    terms = Terms(
        loan_amount=D("100.00"),
        annual_rate_percent=D("7"),
        term=D(6),
        frequency="MONTHLY",
        contract_date=START,
        first_payment_date=date(2024, 2, 1),
        rounding_mode="HALF_EVEN",
    )
    first = [progressive.Event(1, progressive.REPAYMENT, date(2024, 1, 10), D("105.17"))]
    resumed = progressive.resume(terms, first, start=None, horizon=date(2024, 1, 12))
    head = resumed.checkpoints[-1]
    assert (head.on, head.key) == (date(2024, 1, 10), 1)
    charge = progressive.Event(2, progressive.CHARGE, date(2024, 1, 12), D("4.74"))
    assert progressive.resume(terms, [charge], start=head, horizon=date(2024, 1, 12)) is None
    whole = progressive.recalculate(terms, [*first, charge], horizon=date(2024, 1, 12))
    assert whole.allocations[1] == progressive.Portions(
        principal=D("100.00"), interest=D("0.17"), fees=D("4.74"), overpayment=D("0.26")
    )
    assert whole.unallocated == D("0.26")


def test_a_state_is_refused_after_the_horizon_moved_before_it():
    terms = Terms(
        loan_amount=D("100.00"),
        annual_rate_percent=D("7"),
        term=D(6),
        frequency="MONTHLY",
        contract_date=START,
        first_payment_date=date(2024, 2, 1),
    )
    events = [progressive.Event(1, progressive.REPAYMENT, date(2024, 4, 15), D("17.01"))]
    resumed = progressive.resume(terms, events, start=None, horizon=date(2024, 5, 1))
    boundary = next(c for c in resumed.checkpoints if c.key is None)
    assert progressive.resume(terms, [], start=boundary, horizon=date(2024, 1, 15)) is None


# ------------------------------------------------------------------ through the commands

FINERACT = {
    "loan_amount": D("100.00"),
    "loan_rate": D("7"),
    "loan_term": D("24"),
    "contract_date": START,
    "first_payment_date": date(2024, 2, 1),
    "rounding_mode": "HALF_EVEN",
    "interest_recalculation": True,
}


def recalculating_loan(operator, **kw):
    set_business_date(START)
    loan = make_loan(actor=operator, **{**FINERACT, **kw})
    services.activate_loan(loan=loan, actor=operator, as_of=START)
    loan.refresh_from_db()
    return loan


def repay(loan, operator, on, amount="1.00"):
    set_business_date(max(on, selectors.get_business_date()))
    return services.post_transaction(
        loan=loan, type=TransactionType.REPAYMENT, on=on, amount=D(amount), actor=operator
    )


def stored(loan):
    """The current version's periods and every non-reversed transaction's portions."""
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    periods = list(
        schedule.periods.order_by("period").values_list("frozen", *versions.PERIOD_FIELDS)
    )
    portions = list(
        Transaction.objects.filter(loan=loan, reversed=False)
        .order_by("id")
        .values_list("id", *versions.PORTION_FIELDS)
    )
    return periods, portions


def from_scratch(loan):
    """The same, derived by the whole replay (no stored state) and not written."""
    loan.refresh_from_db()
    schedule = Schedule.objects.select_related("setup").get(loan=loan, is_current=True)
    frozen = [versions.period_state(p) for p in versions.frozen_rows(schedule)]
    rows = versions.replay_transactions(loan, schedule)
    result = versions.derive_periods(loan, schedule, rows, frozen=frozen)
    periods = [
        (p.frozen, *(getattr(p, name) for name in versions.PERIOD_FIELDS)) for p in result.periods
    ]
    versions._changed_portions(rows, result)  # sets the rows' portions (written: nothing)
    by_pk = {r.pk: r for r in rows}
    portions = []
    for pk, *values in stored(loan)[1]:
        row = by_pk.get(pk)
        portions.append(
            (pk, *values)
            if row is None
            else (pk, *(getattr(row, n) for n in versions.PORTION_FIELDS))
        )
    return periods, portions


def assert_as_whole_replay(loan):
    assert stored(loan) == from_scratch(loan)


@pytest.fixture
def long_loan(operator, monkeypatch):
    """Two years of history: a repayment every 10 days, the first ones late; a lasting state
    after every 7 (of 60) events, the recent ones at the last 4 boundaries."""
    monkeypatch.setattr(progressive, "EVENTS_PER_STATE", 7)
    loan = recalculating_loan(operator, loan_amount=D("5000.00"))
    for n in range(60):
        repay(loan, operator, date(2024, 1, 20) + timedelta(days=10 * n), "30.00")
    return loan


@pytest.fixture
def starts(monkeypatch):
    """The date of the state each replay started from (None: the loan's start)."""
    seen = []
    resume = progressive.resume

    def spy(terms, events, *, start, **kw):
        seen.append(None if start is None else start.on)
        return resume(terms, events, start=start, **kw)

    monkeypatch.setattr(progressive, "resume", spy)
    return seen


@pytest.mark.django_db
def test_a_repayment_after_the_history_resumes_from_the_latest_state(operator, long_loan, starts):
    states = EngineState.objects.filter(setup=long_loan.setup)
    assert states.filter(lasting=True).count() >= 6
    recent = {date(2025, 6, 1), date(2025, 7, 1), date(2025, 8, 1), date(2025, 9, 1)}
    assert set(states.filter(lasting=False).values_list("on", flat=True)) <= recent
    assert set(states.values_list("on", flat=True)) >= recent
    tx = repay(long_loan, operator, date(2025, 9, 1), "250.00")
    assert starts == [date(2025, 9, 1)]  # the head: the last repayment is on the same day
    tx.refresh_from_db()
    assert tx.principal_portion + tx.interest_portion + tx.fees_portion == D("250.00")
    assert_as_whole_replay(long_loan)


@pytest.mark.django_db
def test_a_backdated_repayment_replays_from_the_state_before_it(operator, long_loan, starts):
    repay(long_loan, operator, date(2025, 6, 3), "400.00")  # before the last 9 repayments
    assert starts == [date(2025, 6, 1)]  # the period boundary before it
    assert_as_whole_replay(long_loan)
    repay(long_loan, operator, date(2024, 2, 2), "75.00")  # near the start
    assert starts[1] is None or starts[1] <= date(2024, 2, 2)
    assert_as_whole_replay(long_loan)


@pytest.mark.django_db
def test_the_reversal_of_an_old_repayment(operator, long_loan):
    old = Transaction.objects.filter(loan=long_loan, type=TransactionType.REPAYMENT).order_by(
        "date"
    )[10]
    services.reverse_transaction(loan=long_loan, transaction_id=old.pk, actor=operator)
    assert_as_whole_replay(long_loan)
    repay(long_loan, operator, old.date, "30.00")  # and the same again, backdated
    assert_as_whole_replay(long_loan)


@pytest.mark.django_db
def test_termination_its_undo_and_a_repayment_after_both(operator, long_loan, monkeypatch):
    on = selectors.get_business_date()
    starts = []
    real = progressive.recalculate_with

    def spy(*args, start=None, **kw):
        starts.append(start and start.on)
        return real(*args, start=start, **kw)

    monkeypatch.setattr(progressive, "recalculate_with", spy)
    services.terminate_contract(loan=long_loan, actor=operator, note="t", as_of=on)
    assert starts == [date(2025, 9, 1)]  # the preview and the command: from the head state
    assert_as_whole_replay(long_loan)
    paid = repay(long_loan, operator, on, "10.00")
    assert_as_whole_replay(long_loan)
    services.reverse_transaction(loan=long_loan, transaction_id=paid.pk, actor=operator)
    assert_as_whole_replay(long_loan)
    long_loan.refresh_from_db()
    services.undo_contract_termination(loan=long_loan, actor=operator, as_of=on)
    assert_as_whole_replay(long_loan)
    repay(long_loan, operator, on, "10.00")
    assert_as_whole_replay(long_loan)


@pytest.mark.django_db
def test_charge_off_its_undo_and_a_recovery(operator, long_loan):
    on = selectors.get_business_date()
    services.charge_off(loan=long_loan, actor=operator, as_of=on)
    assert_as_whole_replay(long_loan)
    repay(long_loan, operator, on, "10.00")
    assert_as_whole_replay(long_loan)
    last = Transaction.objects.filter(loan=long_loan, reversed=False).latest("id")
    services.reverse_transaction(loan=long_loan, transaction_id=last.pk, actor=operator)
    long_loan.refresh_from_db()
    services.undo_charge_off(loan=long_loan, actor=operator, as_of=on)
    assert_as_whole_replay(long_loan)
    repay(long_loan, operator, on, "10.00")
    assert_as_whole_replay(long_loan)


@pytest.mark.django_db
def test_a_modification_and_its_cancellation(operator, long_loan):
    """The modification reverses the repayments after its date, its cancellation reinstates
    them: the old setup's states match the history again only where they did before."""
    on = selectors.get_business_date()
    modifications.create_modification(
        loan=long_loan, modification_date=on - timedelta(days=45), actor=operator
    )
    modifications.activate_modification(loan=long_loan, actor=operator, as_of=on)
    long_loan.refresh_from_db()
    assert_as_whole_replay(long_loan)
    repay(long_loan, operator, on, "10.00")
    assert_as_whole_replay(long_loan)
    modifications.cancel_modification(loan=long_loan, actor=operator)
    long_loan.refresh_from_db()
    assert_as_whole_replay(long_loan)
    repay(long_loan, operator, on, "10.00")
    assert_as_whole_replay(long_loan)


@pytest.mark.django_db
def test_a_state_that_no_longer_matches_the_history_is_not_used(operator, long_loan):
    """A transaction reversed behind the rebuild's back: the states do not match any more
    (their fingerprint), so the next command replays the whole history, and is right."""
    old = Transaction.objects.filter(loan=long_loan, type=TransactionType.REPAYMENT).first()
    Transaction.objects.filter(pk=old.pk).update(reversed=True, reversed_on=old.date)
    repay(long_loan, operator, selectors.get_business_date(), "10.00")
    assert_as_whole_replay(long_loan)


def _statements(func) -> int:
    with CaptureQueriesContext(connection) as captured:
        func()
    return len(captured.captured_queries)


@pytest.mark.django_db
def test_statements_do_not_grow_with_the_history(operator):
    short = recalculating_loan(operator, loan_amount=D("5000.00"))
    long = recalculating_loan(operator, loan_amount=D("5000.00"))
    for n in range(5):
        repay(short, operator, date(2024, 1, 20) + timedelta(days=10 * n), "30.00")
    for n in range(60):
        repay(long, operator, date(2024, 1, 20) + timedelta(days=10 * n), "30.00")
    on = date(2025, 9, 1)
    counts = [_statements(lambda loan=loan: repay(loan, operator, on)) for loan in (short, long)]
    assert counts[0] == counts[1]
    backdated = [
        _statements(lambda loan=loan: repay(loan, operator, date(2024, 2, 10)))
        for loan in (short, long)
    ]
    assert backdated[0] == backdated[1]
    assert_as_whole_replay(long)
    assert_as_whole_replay(short)
