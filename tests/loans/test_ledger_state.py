"""Stored ledger states of the non-recalculating engines (issue 14): a command on a STANDARD or
DYNAMIC loan without interest recalculation replays from the latest stored state of the ledger
replay before what it changed (``versions._ledger_replayed``), and the result is exactly the
whole replay's: every period (every field) and every transaction's portions, to the cent.

The pure replay is checked with hypothesis (random histories cut at every state it takes, more
transactions added after or on the state's date, resumed), then the commands: the ledger state
machine of ``test_ledger_stateful`` (random repayments, backdated ones, charges, credits,
advancements, undo of any, termination and its undo, modifications, payoff, refunds) with the
stored figures compared with a replay from the loan's start after every step, and a long
history's backdated repayment, reversal and advancement, with statements that do not grow
with the history.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, run_state_machine_as_test

from loans import ledger, progressive, selectors, services, versions
from loans.models import EngineState, Transaction, TransactionType
from loans.schedules import Terms, generate_schedule
from tests.factories import make_loan, set_business_date
from tests.loans import test_ledger_stateful as stateful
from tests.loans.test_engine_state import assert_as_whole_replay, from_scratch, stored

D = Decimal
START = date(2024, 1, 1)

# ------------------------------------------------------------------ the pure replay

TERMS = st.builds(
    Terms,
    loan_amount=st.sampled_from([D("100.00"), D("5000.00"), D("123456.78")]),
    annual_rate_percent=st.sampled_from([D("7"), D("12.5"), D("0")]),
    term=st.sampled_from([D(6), D(24)]),
    frequency=st.sampled_from(["MONTHLY", "BIWEEKLY"]),
    contract_date=st.just(START),
    first_payment_date=st.sampled_from([START + timedelta(days=31), START + timedelta(days=14)]),
    days_in_year=st.sampled_from(["FREQUENCY", "ACTUAL_365"]),
    rounding_mode=st.sampled_from(["HALF_UP", "HALF_EVEN"]),
    calc_type=st.sampled_from(["EQUAL_INSTALLMENTS", "EQUAL_PRINCIPAL"]),
)
KINDS = [ledger.REPAYMENT] * 6 + [
    ledger.CREDIT,
    ledger.CHARGE,
    ledger.CHARGE,
    ledger.TERMINATION,
    ledger.CHARGE_OFF,
    ledger.PAYOFF,
    ledger.CREDIT_BALANCE_REFUND,
]
ENTRIES = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(min_value=0, max_value=400),
        st.sampled_from([D("1.00"), D("17.01"), D("250.00"), D("999.99"), D("99999.99")]),
    ),
    max_size=25,
)
ADVANCEMENTS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=400), st.sampled_from([D("50.00"), D("700.00")])),
    max_size=2,
)


def _ordered(entries):
    return sorted(entries, key=lambda e: (e.date, e.key))


def _entries(raw, first_key=1):
    return [
        ledger.Entry(key=first_key + n, type=kind, date=START + timedelta(days=day), amount=amount)
        for n, (kind, day, amount) in enumerate(raw)
    ]


def _periods(terms, advancements, dynamic):
    periods = ledger.periods_from_schedule(generate_schedule(terms))
    for day, amount in advancements:
        periods = ledger.apply_advancement(
            periods, on=START + timedelta(days=day), amount=amount, terms=terms, dynamic=dynamic
        )
    return periods


def _replay(terms, periods, entries, policy, **kw):
    return ledger.replay(
        ledger._copy(periods),
        _ordered(entries),
        termination_interest=policy,
        rounding_mode=terms.rounding_mode,
        **kw,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    terms=TERMS,
    raw=ENTRIES,
    more=ENTRIES,
    advancements=ADVANCEMENTS,
    dynamic=st.booleans(),
    policy=st.sampled_from([ledger.ALL_OUTSTANDING, ledger.ACCRUED_TO_DATE]),
)
def test_resuming_from_any_state_equals_the_whole_replay(
    terms, raw, more, advancements, dynamic, policy
):
    """Replay a history taking a state at every date, add transactions (later, backdated, on a
    state's date), resume from every state before the earliest added one, stored and read back:
    the same periods, allocations of what follows, overpayments and void terminations as the
    whole replay; what precedes the state keeps the portions it had."""
    periods = _periods(terms, advancements, dynamic)
    if not dynamic:
        raw = [e for e in raw if e[0] != ledger.TERMINATION]
        more = [e for e in more if e[0] != ledger.TERMINATION]
    first = _entries(raw)
    added = _entries(more, first_key=len(first) + 1)
    days = sorted({e.date for e in first} | {p.due_date for p in periods})
    taken = _replay(terms, periods, first, policy, keep=days)
    if taken.void_terminations:  # the rebuild stores no state then
        return
    every = first + added
    whole = _replay(terms, periods, every, policy)
    earliest = min((e.date for e in added), default=date.max)
    for on, state in taken.states:
        if on > earliest:
            continue
        state, meta = ledger.loads(ledger.dumps(state, ("meta", 1)))
        assert meta == ("meta", 1)
        follows = [e for e in _ordered(every) if e.date > on or e in added]
        resumed = ledger.replay(
            state.periods,
            follows,
            termination_interest=policy,
            rounding_mode=terms.rounding_mode,
            start=state,
        )
        assert resumed.periods == whole.periods
        keys = {e.key for e in follows}
        assert resumed.allocations == {k: a for k, a in whole.allocations.items() if k in keys}
        assert resumed.unallocated == whole.unallocated
        assert resumed.void_terminations == whole.void_terminations
        for e in first:
            if e.date <= on:
                assert whole.allocations.get(e.key) == taken.allocations.get(e.key)


def test_a_stored_state_keeps_every_field():
    periods = ledger.periods_from_schedule(
        generate_schedule(
            Terms(
                loan_amount=D("1000.00"),
                annual_rate_percent=D("12"),
                term=D(6),
                frequency="MONTHLY",
                contract_date=START,
                first_payment_date=date(2024, 2, 1),
            )
        )
    )
    periods[1].advanced_later = D("12.34")
    periods[2].interest_credit = D("0.56")
    periods[3].accrual_stopped = True
    periods[0].complete, periods[0].obligations_met_on_date = True, date(2024, 2, 1)
    state = ledger.ReplayState(periods, 1, True, D("3.00"), D("2.50"))
    back, meta = ledger.loads(ledger.dumps(state, (1, (2, 3), None, "x")))
    assert back.periods == periods
    assert (back.cursor, back.charged_off, back.refunded, back.unallocated) == (
        1,
        True,
        D("3.00"),
        D("2.50"),
    )
    assert meta == (1, (2, 3), None, "x")
    assert ledger.loads(b"x\x9c" + b"\x00" * 8) is None  # not a ledger state: the other engine's


# ------------------------------------------------------------------ through the commands


class StoredStateMachine(stateful.LedgerMachine):
    """The ledger state machine with the stored figures compared, after every step, with a
    replay from the loan's start (and states taken often: one every 3 transactions)."""

    @invariant()
    def as_whole_replay(self):
        if self.loan is not None and self.loan.status != "PENDING":
            self.refresh()
            assert stored(self.loan) == from_scratch(self.loan)


@pytest.mark.django_db
def test_the_ledger_state_machine_against_the_whole_replay(monkeypatch):
    monkeypatch.setattr(progressive, "EVENTS_PER_STATE", 3)
    resumed = []
    real = versions._ledger_start

    def spy(*args, **kw):
        start = real(*args, **kw)
        resumed.append(start is not None)
        return start

    monkeypatch.setattr(versions, "_ledger_start", spy)
    run_state_machine_as_test(StoredStateMachine, settings=stateful.PROFILE)
    assert any(resumed)  # states were used, not only stored


PLAIN = {
    "loan_amount": D("5000.00"),
    "loan_rate": D("7"),
    "loan_term": D("24"),
    "contract_date": START,
    "first_payment_date": date(2024, 2, 1),
    "rounding_mode": "HALF_EVEN",
}


def plain_loan(operator, engine="DYNAMIC", **kw):
    set_business_date(START)
    loan = make_loan(actor=operator, schedule_engine=engine, **{**PLAIN, **kw})
    services.activate_loan(loan=loan, actor=operator, as_of=START)
    loan.refresh_from_db()
    return loan


def post(loan, operator, on, amount="30.00", type=TransactionType.REPAYMENT):
    set_business_date(max(on, selectors.get_business_date()))
    return services.post_transaction(loan=loan, type=type, on=on, amount=D(amount), actor=operator)


def history(loan, operator, count):
    """A repayment every 10 days from 2024-01-20, written at once and rebuilt once (as the
    benchmark's loans): the rebuild stores the states."""
    Transaction.objects.bulk_create(
        Transaction(
            loan=loan,
            type=TransactionType.REPAYMENT,
            date=date(2024, 1, 20) + timedelta(days=10 * n),
            amount=D("30.00"),
        )
        for n in range(count)
    )
    set_business_date(date(2024, 1, 20) + timedelta(days=10 * count))
    versions.rebuild_schedule(loan)
    loan.refresh_from_db()


@pytest.fixture
def starts(monkeypatch):
    """The date of the state each ledger replay started from (None: the loan's start)."""
    seen = []
    real = versions._ledger_checkpoints

    def spy(periods, rows, *, after, **kw):
        seen.append(after)
        return real(periods, rows, after=after, **kw)

    monkeypatch.setattr(versions, "_ledger_checkpoints", spy)
    return seen


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["DYNAMIC", "STANDARD"])
def test_a_backdated_repayment_replays_from_the_state_before_it(operator, engine, starts):
    loan = plain_loan(operator, engine)
    history(loan, operator, 60)  # 2024-01-20 .. 2025-09-06
    starts.clear()
    states = EngineState.objects.filter(setup=loan.setup)
    assert set(states.values_list("on", flat=True)) >= {date(2025, 6, 1), date(2025, 9, 1)}
    post(loan, operator, date(2025, 6, 3), "400.00")
    assert starts == [date(2025, 6, 1)]  # the period boundary before it
    assert_as_whole_replay(loan)
    post(loan, operator, date(2024, 2, 2), "75.00")  # near the start
    assert starts[1] is None  # no state stored that early
    assert_as_whole_replay(loan)
    post(loan, operator, date(2025, 8, 1), "20.00", TransactionType.CHARGE)
    assert_as_whole_replay(loan)


@pytest.mark.django_db
def test_the_reversal_of_an_old_repayment_and_a_backdated_advancement(operator, starts):
    loan = plain_loan(operator)
    history(loan, operator, 60)
    old = Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT).order_by("date")
    services.reverse_transaction(loan=loan, transaction_id=old[10].pk, actor=operator)
    assert_as_whole_replay(loan)
    post(loan, operator, date(2025, 7, 15), "300.00", TransactionType.ADVANCEMENT)
    assert starts[-1] is None  # the advancement reshapes the installments: the whole history
    assert_as_whole_replay(loan)
    post(loan, operator, date(2025, 8, 20), "30.00")  # the states stored with the advancement
    assert starts[-1] == date(2025, 8, 1)
    assert_as_whole_replay(loan)
    advancement = Transaction.objects.get(loan=loan, type=TransactionType.ADVANCEMENT)
    services.reverse_transaction(loan=loan, transaction_id=advancement.pk, actor=operator)
    assert_as_whole_replay(loan)
    post(loan, operator, date(2025, 8, 25), "30.00")
    assert_as_whole_replay(loan)


@pytest.mark.django_db
def test_termination_its_undo_and_a_backdated_repayment(operator):
    loan = plain_loan(operator)
    history(loan, operator, 60)
    on = selectors.get_business_date()
    services.terminate_contract(loan=loan, actor=operator, note="t", as_of=on)
    assert_as_whole_replay(loan)
    post(loan, operator, on - timedelta(days=20), "10.00")
    assert_as_whole_replay(loan)
    loan.refresh_from_db()
    assert loan.sub_status == "CONTRACT_TERMINATION"
    services.undo_contract_termination(loan=loan, actor=operator, as_of=on)
    assert_as_whole_replay(loan)
    post(loan, operator, on - timedelta(days=15), "10.00")
    assert_as_whole_replay(loan)


@pytest.mark.django_db
def test_a_state_that_no_longer_matches_the_history_is_not_used(operator, starts):
    loan = plain_loan(operator)
    history(loan, operator, 60)
    starts.clear()
    old = Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT).first()
    Transaction.objects.filter(pk=old.pk).update(reversed=True, reversed_on=old.date)
    post(loan, operator, date(2025, 8, 3), "10.00")
    assert starts == [None]
    assert_as_whole_replay(loan)


def _statements(func) -> int:
    with CaptureQueriesContext(connection) as captured:
        func()
    return len(captured.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["DYNAMIC", "STANDARD"])
def test_statements_do_not_grow_with_the_history(operator, engine, django_assert_max_num_queries):
    short, long = plain_loan(operator, engine), plain_loan(operator, engine)
    history(short, operator, 5)
    history(long, operator, 60)
    backdated = []
    for loan in (short, long):
        latest = Transaction.objects.filter(loan=loan).latest("date").date
        with django_assert_max_num_queries(26):
            on = latest - timedelta(days=10)
            backdated.append(_statements(lambda loan=loan, on=on: post(loan, operator, on, "1.00")))
    assert backdated[0] == backdated[1]
    assert_as_whole_replay(short)
    assert_as_whole_replay(long)


# ------------------------------------------------------------------ histories posted one by one


def appended_history(loan, operator, periods):
    """A repayment of 30.00 every 10 days from 2024-01-20 for ``periods`` months, each posted
    by the command after every other one (``resume_appended``, no rebuild): the life of a loan
    paid through the API. Returns the latest repayment's date."""
    on = date(2024, 1, 20)
    end = date(2024 + periods // 12, 1 + periods % 12, 20)
    while on < end:
        post(loan, operator, on, "30.00")
        latest, on = on, on + timedelta(days=10)
    loan.refresh_from_db()
    return latest


@pytest.fixture
def replays(monkeypatch):
    """Each ledger replay: (the date of the state it started from, None: the loan's start;
    how many transactions it replayed)."""
    seen = []
    real = versions._ledger_checkpoints

    def spy(periods, rows, *, after, **kw):
        seen.append((after, len(rows)))
        return real(periods, rows, after=after, **kw)

    monkeypatch.setattr(versions, "_ledger_checkpoints", spy)
    return seen


@pytest.fixture
def every_period(monkeypatch):
    """Appended transactions store a state at every period they open (the default: every
    ``versions.APPENDED_STATE_PERIODS``-th), to test the states themselves."""
    monkeypatch.setattr(versions, "APPENDED_STATE_PERIODS", 1)


def _sent(captured) -> int:
    """Statements sent (several in one round trip on PostgreSQL count one each)."""
    return sum(q["sql"].count(";\n") + 1 for q in captured.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["DYNAMIC", "STANDARD"])
def test_a_backdated_repayment_after_appended_ones_replays_from_the_last_periods(
    operator, engine, replays, django_assert_max_num_queries, every_period
):
    """Loans whose history was posted one repayment at a time over 6 and 30 months (no
    rebuild, so no state but those ``store_appended_state`` wrote), then a repayment dated 5
    days before the latest one: it replays from the state dated on the last repayment before
    the latest due date (the same 2 repayments on both loans), in the same statements, and
    leaves exactly the figures of the whole replay and of a rebuild from no state, to the
    cent."""
    figures = []
    for months in (6, 30):
        loan = plain_loan(operator, engine, loan_term=D("60"))
        assert replays == [(None, 0)]  # the activation's
        replays.clear()
        latest = appended_history(loan, operator, months)
        assert replays == []  # every repayment was appended: no replay
        states = EngineState.objects.filter(setup=loan.setup)
        assert states.filter(lasting=False).count() == progressive.RECENT
        backdated = latest - timedelta(days=5)
        # The due date (the 1st) before it; the last repayment before that one.
        boundary = date(latest.year, latest.month, 1)
        expected = max(t for t in states.values_list("on", flat=True) if t < boundary)
        assert boundary - expected < timedelta(days=10)
        with django_assert_max_num_queries(30) as captured:
            post(loan, operator, backdated, "12.34")
        figures.append(_sent(captured))
        assert replays == [(expected, 3)]  # the two after the state and the backdated one
        replays.clear()
        assert_as_whole_replay(loan)
        after = stored(loan)
        EngineState.objects.filter(setup=loan.setup).delete()
        versions.rebuild_schedule(loan)  # from the loan's start
        assert replays[-1] == (None, Transaction.objects.filter(loan=loan).count() - 1)
        replays.clear()
        assert stored(loan) == after
    assert figures[0] == figures[1], figures


@pytest.mark.django_db
def test_appended_states_open_a_period_at_a_constant_cost(operator, every_period):
    """An appended repayment inside the period of the latest transaction stores nothing and
    costs what it did (9 statements); one opening a new period after the latest stored state
    3 more (the figures' aggregate, the state's INSERT, the DELETE of the recent states but
    the latest ``RECENT``), on a 6-month as on a 30-month history; the state is the whole
    replay's as stored (its periods, fingerprint, meta)."""
    counts = {}
    for months in (6, 30):
        loan = plain_loan(operator, loan_term=D("60"))
        latest = appended_history(loan, operator, months)
        states = EngineState.objects.filter(setup=loan.setup)
        assert states.latest("on").on < latest
        on = date(latest.year + latest.month // 12, latest.month % 12 + 1, 2)
        set_business_date(on)

        def repay(on, loan=loan):
            services.post_transaction(
                loan=loan, type=TransactionType.REPAYMENT, on=on, amount=D("1.00"), actor=operator
            )

        with CaptureQueriesContext(connection) as inside:
            repay(latest + timedelta(days=1))  # the same period
        assert not states.filter(on__gte=latest).exists()
        with CaptureQueriesContext(connection) as opening:
            repay(on)  # the next period
        counts[months] = (_sent(inside), _sent(opening))
        state = states.latest("on")
        assert (state.on, state.lasting) == (latest + timedelta(days=1), False)
        rows = Transaction.objects.filter(loan=loan, date__lte=state.on).exclude(
            type=TransactionType.DISBURSEMENT
        )
        pks = list(rows.values_list("pk", flat=True))
        assert (state.events, state.key_sum, state.key) == (len(pks), sum(pks), max(pks))
        assert state.squares == versions._squares(pks)
        assert states.filter(lasting=False).count() == progressive.RECENT
        # The state against the whole replay of what it reflects.
        replay_state, meta = ledger.loads(bytes(state.state))
        schedule = selectors.current_schedule(loan)
        assert meta[:5] == (0, True, False, len(pks), 0)
        taken = versions._replay(
            schedule.setup,
            ledger.periods_from_schedule(generate_schedule(versions.terms_for(schedule.setup))),
            versions.replay_transactions(loan, schedule)[: len(pks)],
            dynamic=True,
            resume=False,
            keep=[state.on],
        )
        ((_, expected),) = taken.states
        assert replay_state.periods == expected.periods
        assert (replay_state.refunded, replay_state.unallocated) == (
            expected.refunded,
            expected.unallocated,
        )
    assert counts == {6: (9, 12), 30: (9, 12)}, counts


@pytest.mark.django_db
def test_lasting_appended_states_serve_an_old_backdated_repayment(
    operator, monkeypatch, replays, every_period
):
    """A lasting state after every ``EVENTS_PER_STATE`` (here 7) events, kept as the recent
    ones are dropped: a repayment backdated to the first year replays from the lasting state
    before it, not from the loan's start, and gives the whole replay's figures."""
    monkeypatch.setattr(progressive, "EVENTS_PER_STATE", 7)
    loan = plain_loan(operator, loan_term=D("60"))
    appended_history(loan, operator, 30)
    states = EngineState.objects.filter(setup=loan.setup)
    lasting = sorted(states.filter(lasting=True).values_list("on", "events"))
    assert len(lasting) >= 9
    assert all(b[1] - a[1] >= 7 for a, b in zip(lasting, lasting[1:], strict=False))
    backdated = date(2024, 9, 9)
    expected = max(on for on, _ in lasting if on <= backdated)
    replays.clear()
    post(loan, operator, backdated, "50.00")
    after = Transaction.objects.filter(loan=loan, date__gt=expected).count()
    assert replays == [(expected, after)]  # what follows the state, not the whole history
    assert_as_whole_replay(loan)


@pytest.mark.django_db
def test_cancelling_a_modification_replays_from_a_state_before_its_date():
    """Found by the state machine: charges and repayments (some paid from the credit
    balance), a modification dated before the latest of them, activated, the loan paid up,
    then the modification cancelled. The previous setup's state dated after the modification
    date still matched the transactions (their ids) but not their portions, which the
    modification's replay had rewritten (repayment 1.29 as principal, fees in the whole
    replay): the cancellation now rebuilds from a state before the modification date."""
    machine = StoredStateMachine()
    machine.create(
        amount="100.00",
        days_in_year="FREQUENCY",
        frequency="MONTHLY",
        engine="DYNAMIC",
        rounding="HALF_UP",
        rate="0",
        termination="ALL_OUTSTANDING",
        odd_days=0,
        calc="EQUAL_INSTALLMENTS",
        term=5,
    )
    steps = [
        ("repay", {"amount": D("12.82"), "back": 25}),
        ("pay_off", {"ahead": 0}),
        ("refund", {"part": "all"}),
        ("charge", {"amount": D("1.15"), "back": 15}),
        ("repay_everything_outstanding", {}),
        ("advance_business_date", {"days": 31}),
        ("charge", {"amount": D("1.29"), "back": 35}),
        ("repay_everything_outstanding", {}),
        ("charge", {"amount": D("25.86"), "back": 27}),
        ("modify", {"back": 21, "keep": True}),
        ("activate_modification", {}),
        ("repay_everything_outstanding", {}),
        ("cancel_modification", {}),
    ]
    for name, kwargs in steps:
        getattr(machine, name)(**kwargs)
        machine.refresh()
        assert stored(machine.loan) == from_scratch(machine.loan), name


@pytest.mark.django_db
def test_appended_repayments_store_a_state_every_few_periods(operator, replays):
    """By default an appended repayment stores a state when it opens the loan's first period
    and then every ``APPENDED_STATE_PERIODS`` (6) periods: 30 months of repayments every 10
    days leave states dated in the 1st, 7th, 13th, 19th and 25th period (a monthly payer's
    dispatched repayments pay the state's statements once in 6); a repayment backdated into
    the last months replays from the latest of them only what followed it."""
    assert versions.APPENDED_STATE_PERIODS == 6
    loan = plain_loan(operator, loan_term=D("60"))
    latest = appended_history(loan, operator, 30)
    states = EngineState.objects.filter(setup=loan.setup)
    # Each on the last repayment before the due date (1 Feb, 1 Aug) the next one crossed; the
    # first (30 Jan 2024) dropped as only the latest ``RECENT`` are kept.
    assert (
        sorted(states.values_list("on", flat=True))
        == [
            date(2024, 1, 30),
            date(2024, 7, 28),
            date(2025, 1, 24),
            date(2025, 7, 23),
            date(2026, 1, 29),
        ][-progressive.RECENT :]
    )
    newest = states.latest("on").on
    replays.clear()
    backdated = latest - timedelta(days=5)
    post(loan, operator, backdated, "12.34")
    followed = Transaction.objects.filter(loan=loan, date__gt=newest).count()
    assert replays == [(newest, followed)]
    assert followed <= 3 * 6 + 2  # about 6 periods' repayments, whatever the history
    assert_as_whole_replay(loan)
