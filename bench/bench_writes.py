"""The write path (issue 14), on PostgreSQL, through the API (in-process test client).

1. A repayment on a 30-year loan (360 periods, 20 prior transactions) next to the cheapest
   audited write of the API, ``PUT /business-date``, alternated (goal <= 3x).
2. History: the same repayment (dated on the business date, after every transaction: the
   histories are one repayment a day from 2000-02-01, all before it) on a loan with 5,000 prior
   transactions next to one with 20 (goal <= 1.5x).
3. Termination (the command, which derives once, through ``loans.services`` inside a rolled
   back transaction) at 5,000 prior transactions next to 20 (goal <= 1.5x), on both kinds of
   loan (a recalculating one's preview starts from the stored engine state).
4. The same repayment on a recalculating loan (``interestRecalculation``, DESIGN §11) with 20
   and 5,000 prior transactions (the goal of 2. holds for them too: the engine resumes from its
   stored state, ``loans.models.EngineState``).
5. A backdated repayment, dated 10 days before the latest transaction (in the last period),
   on each kind of loan with 5,000 prior transactions next to one with 20 (goal <= 1.5x: it
   pays only for what follows its date); and one dated near the loan's start on the 5,000
   loan, for contrast (it pays for the 5,000 that follow).
6. The same backdated repayment (10 days before the latest, in the last period) on loans
   whose history was POSTED one repayment at a time (``services.post_transaction``, each
   appended after the others: no rebuild, the stored ledger states are those
   ``versions.store_appended_state`` writes once in 6 periods), 5,000 prior next to 20 (goal
   <= 1.5x), each round rolled back so that every round meets the appended states (not
   those the previous round's rebuild left); with this process's CPU-time ratio too.
Statements of each are counted too.

Knobs: ``BENCH_REPEAT`` (rounds, 7), ``WRITES_BENCH_APPENDED`` (the long appended history,
5000), ``WRITES_BENCH_ONLY_APPENDED=1`` (case 6 only: it alone builds its loans, ~1 min).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

from bench.bench_core import AS_OF, make_loan
from bench.db import throwaway_database
from bench.measure import alternate, count_statements, load_line, print_figure
from loans import services
from loans.models import BusinessDate

REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
APPENDED = int(os.environ.get("WRITES_BENCH_APPENDED", "5000"))
ONLY_APPENDED = os.environ.get("WRITES_BENCH_ONLY_APPENDED") == "1"


FIRST = date(2000, 2, 1)  # make_loan's first repayment; one a day after it


def repayment(client, loan, on=AS_OF):
    def post():
        response = client.post(
            f"/api/v1/loans/{loan.pk}/transactions?command=repayment",
            {"transactionDate": on.isoformat(), "transactionAmount": "1.00"},
            content_type="application/json",
        )
        assert response.status_code in (200, 201), response.content[:300]

    return post


def business_date(client):
    def put():
        response = client.put(
            "/api/v1/business-date", {"date": AS_OF.isoformat()}, content_type="application/json"
        )
        assert response.status_code == 200, response.content[:300]

    return put


def terminate(user, loan):
    """Terminate and roll back: the loan is the same for the next round."""

    def run():
        with transaction.atomic():
            started = time.perf_counter()
            services.terminate_contract(loan=loan, actor=user, note="bench", as_of=AS_OF)
            elapsed = time.perf_counter() - started
            transaction.set_rollback(True)
        return elapsed

    return run


def appended_loan(user, prior: int):
    """A 360-period loan (``make_loan``'s) whose ``prior`` repayments of 10.00, one a day from
    2000-02-01, were each posted by the command after the others (the fast path)."""
    loan = make_loan(user, periods=360, repayments=0, external_id=f"BENCH-APPENDED-{prior}")
    for i in range(prior):
        services.post_transaction(
            loan=loan,
            type="REPAYMENT",
            on=FIRST + timedelta(days=i),
            amount=Decimal("10.00"),
            actor=user,
            as_of=AS_OF,
        )
    loan.refresh_from_db()
    return loan


def rolled_back(func):
    """``func`` timed inside a transaction rolled back after it: every round the same loan."""

    def run():
        with transaction.atomic():
            started = time.perf_counter()
            func()
            elapsed = time.perf_counter() - started
            transaction.set_rollback(True)
        return elapsed

    return run


def cpu_ratio_line(figure, anchor) -> str:
    """This process's CPU time, paired per round as ``ratio_line`` (the database's is not in it:
    on a loaded machine the figure that waiting for a core does not move)."""
    ratios = sorted(f / a for f, a in zip(figure.cpu, anchor.cpu, strict=True))
    return (
        f"      cpu ratio {statistics.median(ratios):.2f}x "
        f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}); "
        f"cpu {statistics.median(figure.cpu) * 1000:.1f} ms against "
        f"{statistics.median(anchor.cpu) * 1000:.1f} ms"
    )


def run_appended(user, client) -> None:
    """Case 6 (module docstring)."""
    from loans.models import EngineState

    def back(prior: int, days: int = 10) -> date:
        return FIRST + timedelta(days=prior - 1 - days)

    started = time.perf_counter()
    loans = {prior: appended_loan(user, prior) for prior in (20, APPENDED)}
    built = time.perf_counter() - started
    states = {
        prior: EngineState.objects.filter(setup=loan.setup).count() for prior, loan in loans.items()
    }
    cases = {
        f"appended history, backdated 10 days, {prior:,} prior": rolled_back(
            repayment(client, loans[prior], back(prior))
        )
        for prior in (20, APPENDED)
    }
    # Statements of one (rolled back too).
    statements = {}
    for label, func in cases.items():
        with transaction.atomic():
            statements[label] = count_statements(func)[0]
            transaction.set_rollback(True)
    print(
        f"appended histories (built by {20 + APPENDED:,} posted repayments in {built:.1f} s; "
        f"stored states: {states[20]} and {states[APPENDED]}; {REPEAT} rounds, alternated, each "
        f"rolled back; {load_line()}):"
    )
    samples = alternate(cases, repeat=REPEAT)
    for label in cases:
        samples[label].label = f"{label} [{statements[label]} statements]"
    short, long = samples.values()
    print_figure(short)
    print_figure(long, short, ratio_goal="<= 1.5x")
    print(cpu_ratio_line(long, short), flush=True)
    print(f"  ({load_line()})")


def run() -> None:
    user = get_user_model().objects.create_superuser("bench", password="bench-pass-123")
    BusinessDate.objects.update_or_create(pk=1, defaults={"date": AS_OF})
    if ONLY_APPENDED:
        client = Client()
        client.force_login(user)
        run_appended(user, client)
        return
    loans = {
        (recalc, prior): make_loan(
            user,
            periods=360,
            repayments=prior,
            spacing_days=1,
            **({"interest_recalculation": True} if recalc else {}),
        )
        for recalc in (False, True)
        for prior in (20, 5000)
    }
    client = Client()
    client.force_login(user)

    def back(prior: int, days: int = 10) -> date:  # ``days`` before the latest repayment
        return FIRST + timedelta(days=prior - 1 - days)

    cases = {
        "PUT /business-date": business_date(client),
        "repayment, 360 periods, 20 prior transactions": repayment(client, loans[False, 20]),
        "repayment, 360 periods, 5,000 prior transactions": repayment(client, loans[False, 5000]),
        "termination, 20 prior transactions": terminate(user, loans[False, 20]),
        "termination, 5,000 prior transactions": terminate(user, loans[False, 5000]),
        "recalculating repayment, 20 prior": repayment(client, loans[True, 20]),
        "recalculating repayment, 5,000 prior": repayment(client, loans[True, 5000]),
        "recalculating termination, 20 prior": terminate(user, loans[True, 20]),
        "recalculating termination, 5,000 prior": terminate(user, loans[True, 5000]),
        "backdated 10 days, 20 prior": repayment(client, loans[False, 20], back(20)),
        "backdated 10 days, 5,000 prior": repayment(client, loans[False, 5000], back(5000)),
        "backdated near the start, 5,000 prior": repayment(
            client, loans[False, 5000], FIRST + timedelta(days=2)
        ),
        "recalculating backdated 10 days, 20 prior": repayment(client, loans[True, 20], back(20)),
        "recalculating backdated 10 days, 5,000 prior": repayment(
            client, loans[True, 5000], back(5000)
        ),
        "recalculating backdated near the start, 5,000 prior": repayment(
            client, loans[True, 5000], FIRST + timedelta(days=2)
        ),
    }
    statements = {label: count_statements(func)[0] for label, func in cases.items()}
    print(f"write path ({REPEAT} rounds, alternated; {load_line()}):")
    samples = alternate(cases, repeat=REPEAT)
    for label in cases:
        samples[label].label = f"{label} [{statements[label]} statements]"
    (
        anchor,
        short_s,
        long_s,
        term_short,
        term_long,
        recalc_short,
        recalc_long,
        recalc_term_short,
        recalc_term_long,
        back_short,
        back_long,
        back_start,
        recalc_back_short,
        recalc_back_long,
        recalc_back_start,
    ) = samples.values()
    print_figure(anchor)
    print_figure(short_s, anchor, ratio_goal="<= 3x")
    print_figure(long_s, short_s, ratio_goal="<= 1.5x")
    print_figure(term_short, anchor)
    print_figure(term_long, term_short, ratio_goal="<= 1.5x")
    print_figure(recalc_short, anchor)
    print_figure(recalc_long, recalc_short, ratio_goal="<= 1.5x")
    print_figure(recalc_term_short, anchor)
    print_figure(recalc_term_long, recalc_term_short, ratio_goal="<= 1.5x")
    print_figure(back_short, anchor)
    print_figure(back_long, back_short, ratio_goal="<= 1.5x")
    print_figure(back_start, back_short)
    print_figure(recalc_back_short, anchor)
    print_figure(recalc_back_long, recalc_back_short, ratio_goal="<= 1.5x")
    print_figure(recalc_back_start, recalc_back_short)
    print(f"  ({load_line()})")
    run_appended(user, client)


def main() -> None:
    with throwaway_database():
        run()
