"""Ledger integrity under random command sequences (issue 10, DESIGN §1 "Ledger integrity").

A hypothesis ``RuleBasedStateMachine`` drives one loan with random terms through the services:
repayments on, before and after due dates (backdated ones too), charges, credits, advancements,
the undo of any of them, termination and its undo, modification create / activate / cancel,
payoff and credit balance refund, while the business date moves forward. After every step it
checks the invariants:

* every transaction's portions add up to its amount;
* what was paid = what was allocated + the credit balance;
* principal outstanding = carried/disbursed + advanced - principal repaid (- the paid-ahead
  interest a settlement credited);
* nothing negative; a termination stands only with something outstanding;
* an undo of the latest command restores the exact schedule before it;
* the payoff quote for D paid on D closes the loan with nothing left.

CI runs the bounded ``ci`` profile; ``HYPOTHESIS_PROFILE=long`` runs more examples.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from loans import selectors, services
from loans.exceptions import DomainError
from loans.models import (
    Loan,
    LoanStatus,
    Schedule,
    Transaction,
    TransactionType,
)
from modifications import selectors as modification_selectors
from modifications import services as modifications
from tests.factories import make_loan, set_business_date

D = Decimal
ZERO = D("0.00")
PAYING = (TransactionType.REPAYMENT, TransactionType.CREDIT, TransactionType.PAYOFF)

PROFILES = {
    # ~ 25 examples x 25 steps: a few hundred commands and invariant checks.
    "ci": settings(
        max_examples=25,
        stateful_step_count=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    ),
    "quick": settings(
        max_examples=8,
        stateful_step_count=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    ),
    "long": settings(
        max_examples=400,
        stateful_step_count=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    ),
}
PROFILE = PROFILES.get(os.environ.get("HYPOTHESIS_PROFILE", "ci"), PROFILES["ci"])

CONTRACT = date(2024, 1, 1)
STATS = {"examples": 0, "steps": 0, "commands_ok": 0, "commands_refused": 0}
REFUSALS: Counter = Counter()

amounts = st.decimals(min_value=D("0.01"), max_value=D("400.00"), places=2)


def live_periods(loan):
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    return list(schedule.periods.filter(frozen=False).order_by("period"))


def schedule_key(loan):
    return [
        (
            p.period,
            p.from_date,
            p.due_date,
            p.principal_due,
            p.interest_due,
            p.fees_due,
            p.principal_paid,
            p.interest_paid,
            p.fees_paid,
        )
        for p in live_periods(loan)
    ]


def _open(self):
    return (
        self.loan is not None
        and not self.loan.modification_in_progress
        and self.loan.status != LoanStatus.PENDING
    )


def _active(self):
    return _open(self) and self.loan.status == LoanStatus.ACTIVE


def _terminable(self):
    return _active(self) and self.loan.sub_status is None and self.loan.schedule_engine == "DYNAMIC"


def _terminated(self):
    return _open(self) and self.loan.sub_status is not None


def _has_modification(self):
    from modifications.models import Modification

    return self.loan is not None and (
        Modification.objects.filter(loan=self.loan).exclude(status="CANCELLED").exists()
    )


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.loan = None
        self.today = CONTRACT
        self.before_last = None  # (transaction id, schedule before it) of the latest post
        STATS["examples"] += 1

    # ------------------------------------------------------------------ setup

    @initialize(
        amount=st.sampled_from(["100.00", "1000.00", "2500.00", "12000.00"]),
        rate=st.sampled_from(["0", "7", "12", "24.99", "36"]),
        term=st.integers(min_value=1, max_value=12),
        frequency=st.sampled_from(["MONTHLY", "BIWEEKLY", "WEEKLY"]),
        odd_days=st.sampled_from([0, 0, 5, 12]),
        days_in_year=st.sampled_from(["FREQUENCY", "ACTUAL_365", "ACTUAL_360", "ACTUAL_ACTUAL"]),
        rounding=st.sampled_from(["HALF_UP", "HALF_EVEN"]),
        calc=st.sampled_from(["EQUAL_INSTALLMENTS", "EQUAL_INSTALLMENTS", "EQUAL_PRINCIPAL"]),
        termination=st.sampled_from(["ALL_OUTSTANDING", "ACCRUED_TO_DATE"]),
        engine=st.sampled_from(["DYNAMIC", "DYNAMIC", "STANDARD"]),
    )
    def create(
        self,
        amount,
        rate,
        term,
        frequency,
        odd_days,
        days_in_year,
        rounding,
        calc,
        termination,
        engine,
    ):
        from loans.schedules import step

        set_business_date(CONTRACT)
        setup = {
            "loan_amount": D(amount),
            "loan_rate": D(rate),
            "loan_term": D(term),
            "payment_frequency": frequency,
            "contract_date": CONTRACT,
            "first_payment_date": step(CONTRACT, frequency) + timedelta(days=odd_days),
            "days_in_year": days_in_year,
            "rounding_mode": rounding,
            "calc_type": calc,
            "termination_interest": termination,
        }
        try:
            loan = make_loan(schedule_engine=engine, **setup)
        except DomainError:  # refused terms (negative amortization): a plain loan instead
            setup.update(first_payment_date=step(CONTRACT, frequency))
            loan = make_loan(schedule_engine=engine, **setup)
        services.activate_loan(loan=loan, actor=None, as_of=CONTRACT)
        self.loan = Loan.objects.get(pk=loan.pk)

    # ------------------------------------------------------------------ helpers

    def refresh(self):
        self.loan = Loan.objects.select_related("setup").get(pk=self.loan.pk)
        return self.loan

    def run(self, command, **kwargs):
        STATS["steps"] += 1
        try:
            result = command(**kwargs)
        except DomainError as exc:
            STATS["commands_refused"] += 1
            REFUSALS[f"{command.__name__}:{exc.code}"] += 1
            return None
        STATS["commands_ok"] += 1
        self.refresh()
        return result

    def day(self, offset):
        return max(CONTRACT, self.today - timedelta(days=offset))

    def due_dates(self):
        return [p.due_date for p in live_periods(self.loan) if p.due_date <= self.today]

    def post(self, type, on, amount):
        before = schedule_key(self.loan)
        tx = self.run(
            services.post_transaction,
            loan=self.loan,
            type=type,
            on=on,
            amount=amount,
            actor=None,
            as_of=self.today,
        )
        self.before_last = (tx.pk, before) if tx is not None else None
        return tx

    # ------------------------------------------------------------------ rules

    @rule(days=st.integers(min_value=1, max_value=45))
    def advance_business_date(self, days):
        self.today += timedelta(days=days)
        set_business_date(self.today)
        self.before_last = None

    @precondition(_open)
    @rule(amount=amounts, back=st.integers(min_value=0, max_value=60))
    def repay(self, amount, back):
        self.post(TransactionType.REPAYMENT, self.day(back), amount)

    @precondition(_active)
    @rule(data=st.data())
    def repay_installment_on_its_due_date(self, data):
        dates = self.due_dates()
        if not dates:
            return
        on = data.draw(st.sampled_from(dates))
        periods = [p for p in live_periods(self.loan) if p.due_date == on]
        amount = periods[0].total_due if periods else D("1.00")
        if amount > 0:
            self.post(TransactionType.REPAYMENT, on, amount)

    @precondition(_active)
    @rule()
    def repay_everything_outstanding(self):
        owed = sum((p.total_outstanding for p in live_periods(self.loan)), ZERO)
        if owed > 0:
            self.post(TransactionType.REPAYMENT, self.today, owed)

    @precondition(_open)
    @rule(
        amount=st.decimals(min_value=D("0.01"), max_value=D("30.00"), places=2),
        back=st.integers(min_value=0, max_value=60),
    )
    def charge(self, amount, back):
        self.post(TransactionType.CHARGE, self.day(back), amount)

    @precondition(_active)
    @rule(amount=amounts, back=st.integers(min_value=0, max_value=60))
    def credit(self, amount, back):
        self.post(TransactionType.CREDIT, self.day(back), amount)

    @precondition(_active)
    @rule(amount=amounts, back=st.integers(min_value=0, max_value=30))
    def advance_principal(self, amount, back):
        self.post(TransactionType.ADVANCEMENT, self.day(back), amount)

    @precondition(_open)
    @rule(data=st.data())
    def undo_any(self, data):
        ids = list(
            Transaction.objects.filter(loan=self.loan, reversed=False)
            .exclude(type__in=[TransactionType.DISBURSEMENT, TransactionType.CONTRACT_TERMINATION])
            .values_list("pk", flat=True)
        )
        if not ids:
            return
        pk = data.draw(st.sampled_from(ids))
        latest = self.before_last
        done = self.run(
            services.reverse_transaction,
            loan=self.loan,
            transaction_id=pk,
            actor=None,
            as_of=self.today,
        )
        if done is not None and latest is not None and latest[0] == pk:
            # Undoing the command just posted restores the exact schedule before it.
            assert schedule_key(self.loan) == latest[1]
        self.before_last = None

    @precondition(_terminable)
    @rule()
    def terminate_and_maybe_undo(self):
        before = schedule_key(self.loan)
        done = self.run(services.terminate_contract, loan=self.loan, actor=None, as_of=self.today)
        if done is not None:
            assert done.transaction.amount > 0
            self.before_last = ("termination", before)
        else:
            self.before_last = None

    @precondition(_terminated)
    @rule()
    def undo_termination(self):
        latest = self.before_last
        done = self.run(
            services.undo_contract_termination, loan=self.loan, actor=None, as_of=self.today
        )
        if done is not None and latest is not None and latest[0] == "termination":
            assert schedule_key(self.loan) == latest[1]
        self.before_last = None

    @precondition(_active)
    @rule(back=st.integers(min_value=0, max_value=40), keep=st.booleans())
    def modify(self, back, keep):
        on = self.day(back)
        later = modification_selectors.pre_modification_test(loan=self.loan, on=on)
        persistent = later if keep else {}
        persistent = {k: [row["id"] for row in v] for k, v in persistent.items()}
        self.run(
            modifications.create_modification,
            loan=self.loan,
            modification_date=on,
            persistent_transactions=persistent,
            actor=None,
            as_of=self.today,
        )
        self.before_last = None

    @precondition(lambda self: self.loan is not None and self.loan.modification_in_progress)
    @rule()
    def activate_modification(self):
        self.run(activate_modification, loan=self.loan, actor=None, as_of=self.today)
        self.before_last = None

    @precondition(_has_modification)
    @rule()
    def cancel_modification(self):
        set_business_date(self.today)
        self.run(modifications.cancel_modification, loan=self.loan, actor=None)
        self.before_last = None

    @precondition(_active)
    @rule(ahead=st.integers(min_value=0, max_value=0))
    def pay_off(self, ahead):
        on = self.today
        try:
            quote = selectors.payoff(self.loan, on=on)
        except DomainError:
            return
        done = self.run(
            services.post_payoff,
            loan=self.loan,
            on=on,
            amount=quote.total,
            actor=None,
            as_of=self.today,
        )
        if done is not None:
            assert sum((p.total_outstanding for p in live_periods(self.loan)), ZERO) == 0
            assert self.loan.status in (LoanStatus.CLOSED, LoanStatus.OVERPAID)
            assert selectors.payoff(self.loan, on=on).total == 0
        self.before_last = None

    @precondition(_open)
    @rule(part=st.sampled_from(["all", "some"]))
    def refund(self, part):
        credit = selectors.credit_balance(self.loan)
        if credit <= 0:
            return
        amount = credit if part == "all" else max(D("0.01"), (credit / 2).quantize(D("0.01")))
        done = self.run(
            services.post_credit_balance_refund,
            loan=self.loan,
            on=self.today,
            amount=amount,
            actor=None,
            as_of=self.today,
        )
        if done is not None and part == "all":
            assert selectors.credit_balance(self.loan) == 0
            if sum((p.total_outstanding for p in live_periods(self.loan)), ZERO) == 0:
                assert self.loan.status == LoanStatus.CLOSED
        self.before_last = None

    # ------------------------------------------------------------------ invariants

    @invariant()
    def ledger_holds(self):
        if self.loan is None:
            return
        loan = self.refresh()
        rows = list(Transaction.objects.filter(loan=loan).order_by("date", "id"))
        for tx in rows:
            portions = (
                tx.principal_portion,
                tx.interest_portion,
                tx.fees_portion,
                tx.overpayment_portion,
            )
            assert all(p >= 0 for p in portions), tx
            assert sum(portions) == tx.amount, (tx.type, tx.amount, portions)
        live_rows = [t for t in rows if not t.reversed]
        periods = live_periods(loan)
        for p in periods:
            for value in (
                p.principal_due,
                p.interest_due,
                p.fees_due,
                p.principal_outstanding,
                p.interest_outstanding,
                p.fees_outstanding,
            ):
                assert value >= 0, p

        # Paid = allocated + credit balance.
        refunds = sum(
            (t.amount for t in live_rows if t.type == TransactionType.CREDIT_BALANCE_REFUND), ZERO
        )
        paying = [t for t in live_rows if t.type in PAYING]
        paid = sum((t.amount for t in paying), ZERO)
        allocated = sum(
            (t.principal_portion + t.interest_portion + t.fees_portion for t in paying), ZERO
        )
        credit = selectors.credit_balance(loan)
        assert credit >= 0
        assert paid - refunds == allocated + credit

        # Principal outstanding = what was lent - principal repaid (since the setup in force).
        setup = loan.setup
        since = [t for t in live_rows if setup.mod_id is None or t.date > setup.contract_date]
        lent = setup.loan_amount + sum(
            (t.amount for t in since if t.type == TransactionType.ADVANCEMENT), ZERO
        )
        repaid = sum((t.principal_portion for t in since if t.type in PAYING), ZERO)
        credited = sum((p.interest_credit for p in selectors.derived_periods(loan)), ZERO)
        principal_outstanding = sum((p.principal_outstanding for p in periods), ZERO)
        assert principal_outstanding == lent - repaid - credited

        # A termination stands only with something outstanding, and carries it on its date.
        terminations = [t for t in live_rows if t.type == TransactionType.CONTRACT_TERMINATION]
        assert len(terminations) <= 1
        if terminations:
            assert terminations[0].amount > 0
            assert loan.sub_status == "CONTRACT_TERMINATION" or loan.status != LoanStatus.ACTIVE
        elif loan.status == LoanStatus.ACTIVE:
            assert loan.sub_status is None

        # Status follows the figures.
        outstanding = sum((p.total_outstanding for p in periods), ZERO)
        if outstanding > 0:
            assert loan.status == LoanStatus.ACTIVE
        elif credit > 0:
            assert loan.status == LoanStatus.OVERPAID
        else:
            assert loan.status == LoanStatus.CLOSED


def activate_modification(**kwargs):
    command = getattr(modifications, "activate_modification", None) or modifications.activate_loan
    return command(**kwargs)


@pytest.mark.django_db
def test_ledger_state_machine():
    run_state_machine_as_test(LedgerMachine, settings=PROFILE)
    print(f"\nledger state machine: {STATS}\nrefusals: {REFUSALS.most_common()}")
    assert STATS["commands_ok"] > 0
