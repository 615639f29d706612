"""Charge-off and its undo (DESIGN §12, issue 13): the services.

Loan L: 100.00 at 7 %, 6 monthly, contract 2024-01-01, first payment 2024-02-01, HALF_EVEN,
FREQUENCY (Fineract's e2e loan): 17.01 x 5 and 17.00, interest 0.58, 0.49, 0.39, 0.29, 0.20,
0.10. 17.01 repaid on 2024-02-01 pays #1 (16.43 principal, 0.58 interest): 83.57 principal left.

Charged off on 2024-02-14 it carries 83.79 = 83.57 principal + 0.22 interest: #2 (2024-02-01 to
2024-03-01, 29 days) earned 13 days of its 0.49 by then, 0.49 x 13 / 29 = 0.2197 -> 0.22; a
recalculating loan accrues 83.57 x 7 % / 12 x 13 / 29 = 0.2185 -> 0.22. That is the payoff on
the date (DESIGN §1's one definition of what is owed on a date), and nothing accrues after it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from loans import selectors, services
from loans.charge_off import preview_charge_off, preview_undo_charge_off
from loans.exceptions import ConflictError, DuplicateExternalIdError, LoanStateError
from loans.models import (
    Loan,
    LoanEvent,
    LoanStatus,
    Schedule,
    ScheduleReason,
    Transaction,
    TransactionType,
)
from modifications.services import create_modification
from tests.factories import make_loan, set_business_date

pytestmark = pytest.mark.django_db

L = {
    "loan_amount": D("100.00"),
    "loan_rate": D("7"),
    "loan_term": D("6"),
    "contract_date": date(2024, 1, 1),
    "first_payment_date": date(2024, 2, 1),
    "rounding_mode": "HALF_EVEN",
}
CHARGE_OFF_DATE = date(2024, 2, 14)
ENGINES = [
    pytest.param({"schedule_engine": "DYNAMIC"}, id="dynamic"),
    pytest.param({"schedule_engine": "STANDARD"}, id="standard"),
    pytest.param({"schedule_engine": "DYNAMIC", "interest_recalculation": True}, id="recalc"),
]


def loan_l(operator, *, repaid: bool = True, **kw) -> Loan:
    set_business_date(date(2024, 1, 1))
    loan = make_loan(actor=operator, **{**L, **kw})
    services.activate_loan(loan=loan, actor=operator, as_of=date(2024, 1, 1))
    set_business_date(CHARGE_OFF_DATE)
    if repaid:
        repay(loan, operator, date(2024, 2, 1), "17.01")
    return Loan.objects.get(pk=loan.pk)


def repay(loan, operator, on, amount):
    return services.post_transaction(
        loan=loan, type=TransactionType.REPAYMENT, on=on, amount=D(amount), actor=operator
    )


def periods(loan):
    """(period, dueDate, principalDue, interestDue, totalPaid, complete) of the current version."""
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    return [
        (p.period, p.due_date, p.principal_due, p.interest_due, p.total_paid, p.complete)
        for p in schedule.periods.filter(frozen=False).order_by("period")
    ]


def portions(tx):
    tx.refresh_from_db()
    return (tx.amount, tx.principal_portion, tx.interest_portion, tx.fees_portion)


def outstanding(loan):
    return selectors.loan_summary(Loan.objects.get(pk=loan.pk), as_of=selectors.get_business_date())


AFTER_CHARGE_OFF = [
    (1, date(2024, 2, 1), D("16.43"), D("0.58"), D("17.01"), True),
    # #2 keeps its amount (17.01): 0.22 interest earned to the 14th, so 16.79 principal;
    # later installments earn nothing and carry 17.01 principal, the last what remains.
    (2, date(2024, 3, 1), D("16.79"), D("0.22"), D("0.00"), False),
    (3, date(2024, 4, 1), D("17.01"), D("0.00"), D("0.00"), False),
    (4, date(2024, 5, 1), D("17.01"), D("0.00"), D("0.00"), False),
    (5, date(2024, 6, 1), D("17.01"), D("0.00"), D("0.00"), False),
    (6, date(2024, 7, 1), D("15.75"), D("0.00"), D("0.00"), False),
]


# ------------------------------------------------------------------ the charge-off


@pytest.mark.parametrize("engine", ENGINES)
def test_charge_off_carries_the_outstanding_on_the_date_and_stops_the_interest(operator, engine):
    loan = loan_l(operator, **engine)
    assert selectors.payoff(loan, on=CHARGE_OFF_DATE).total == D("83.79")

    result = services.charge_off(loan.pk, actor=operator, note="uncollectible", reason="FRAUD")

    tx = result.transaction
    assert (tx.type, tx.date, tx.reversed) == (TransactionType.CHARGE_OFF, CHARGE_OFF_DATE, False)
    assert portions(tx) == (D("83.79"), D("83.57"), D("0.22"), D("0.00"))
    assert tx.overpayment_portion == D("0.00")
    loan.refresh_from_db()
    assert (loan.charged_off, loan.status, loan.sub_status) == (True, LoanStatus.ACTIVE, None)
    assert periods(loan) == AFTER_CHARGE_OFF
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    assert (schedule.version, schedule.reason) == (2, ScheduleReason.CHARGE_OFF)
    # Interest stopped: the payoff a month later is still 83.79, with no per diem.
    later = selectors.payoff(loan, on=date(2024, 3, 20))
    assert (later.total, later.interest, later.per_diem) == (D("83.79"), D("0.22"), D("0.00"))
    event = LoanEvent.objects.filter(loan=loan).latest("id")
    assert event.command == "charge_off"
    assert event.actor == operator
    assert event.reason == "FRAUD"
    assert event.changes["chargedOff"] == [False, True]
    assert event.result["amount"] == "83.79"


def test_charge_off_on_a_due_date_is_fineracts_zero_interest_c3509(operator):
    """Fineract C3509 (ZERO_INTEREST charge-off on 2024-02-01, right after #1 was paid):
    83.57 principal, no interest; 17.01 x 4 of principal and 15.53 last."""
    loan = loan_l(operator)
    set_business_date(date(2024, 2, 1))

    tx = services.charge_off(loan, actor=operator).transaction

    assert portions(tx) == (D("83.57"), D("83.57"), D("0.00"), D("0.00"))
    assert [(p[2], p[3]) for p in periods(loan)] == [
        (D("16.43"), D("0.58")),
        (D("17.01"), D("0.00")),
        (D("17.01"), D("0.00")),
        (D("17.01"), D("0.00")),
        (D("17.01"), D("0.00")),
        (D("15.53"), D("0.00")),
    ]


def test_repayments_after_the_charge_off_are_recoveries_that_reduce_the_outstanding(operator):
    loan = loan_l(operator)
    charge_off = services.charge_off(loan, actor=operator).transaction
    set_business_date(date(2024, 3, 20))

    recovery = repay(loan, operator, date(2024, 3, 20), "20.00")

    recovery.refresh_from_db()
    # #2's 0.22 + 16.79, then 2.99 of #3's principal: no interest was added in between.
    assert (recovery.principal_portion, recovery.interest_portion) == (D("19.78"), D("0.22"))
    summary = outstanding(loan)
    assert (summary.principal_outstanding, summary.interest_outstanding) == (D("63.79"), D("0"))
    assert summary.total_outstanding == D("63.79")
    assert portions(charge_off) == (D("83.79"), D("83.57"), D("0.22"), D("0.00"))

    # The recovery of everything closes the loan; it stays charged off.
    repay(loan, operator, date(2024, 3, 20), "63.79")
    loan.refresh_from_db()
    assert (loan.status, loan.charged_off) == (LoanStatus.CLOSED, True)


def test_a_backdated_repayment_rederives_the_charge_off_portions(operator):
    loan = loan_l(operator, repaid=False)
    tx = services.charge_off(loan, actor=operator).transaction
    # Nothing paid: 100.00 principal, #1's 0.58 (overdue) and #2's 0.22.
    assert portions(tx) == (D("100.80"), D("100.00"), D("0.80"), D("0.00"))

    repay(loan, operator, date(2024, 2, 1), "17.01")

    assert portions(tx) == (D("83.79"), D("83.57"), D("0.22"), D("0.00"))
    assert periods(loan) == AFTER_CHARGE_OFF


def test_a_terminated_loan_can_be_charged_off_and_then_not_terminated_again(operator):
    loan = loan_l(operator)
    services.terminate_contract(loan=loan, actor=operator)  # ALL_OUTSTANDING: 83.57 + 1.47
    tx = services.charge_off(loan, actor=operator).transaction
    assert portions(tx) == (D("85.04"), D("83.57"), D("1.47"), D("0.00"))
    services.undo_charge_off(loan, actor=operator)
    services.undo_contract_termination(loan=loan, actor=operator)
    services.charge_off(loan, actor=operator)
    with pytest.raises(ConflictError) as caught:
        services.terminate_contract(loan=loan, actor=operator)
    assert [e["code"] for e in caught.value.errors] == ["loan_charged_off"]


def test_the_preview_is_what_the_command_writes(operator):
    loan = loan_l(operator)
    preview = preview_charge_off(loan, as_of=CHARGE_OFF_DATE)
    assert preview.allowed
    assert (preview.principal, preview.interest, preview.fees) == (
        D("83.57"),
        D("0.22"),
        D("0.00"),
    )
    assert preview.before.total_outstanding == D("85.04")
    assert preview.after.total_outstanding == D("83.79")
    assert Transaction.objects.filter(type=TransactionType.CHARGE_OFF).count() == 0


# ------------------------------------------------------------------ refusals


def state(loan):
    loan = Loan.objects.get(pk=loan.pk)
    return (
        loan.charged_off,
        loan.status,
        Transaction.objects.filter(loan=loan).count(),
        Schedule.objects.filter(loan=loan).count(),
        LoanEvent.objects.filter(loan=loan).count(),
    )


def test_the_checks_are_collected_into_one_409_and_nothing_is_written(operator):
    loan = loan_l(operator)
    services.charge_off(loan, actor=operator)
    Loan.objects.filter(pk=loan.pk).update(modification_in_progress=True)
    before = state(loan)

    with pytest.raises(ConflictError) as caught:
        services.charge_off(loan, actor=operator)

    assert caught.value.code == "charge_off_not_allowed"
    assert [e["code"] for e in caught.value.errors] == [
        "already_charged_off",
        "modification_in_progress",
    ]
    assert state(loan) == before


def test_a_pending_loan_is_not_active(operator):
    loan = make_loan(actor=operator, **L)
    with pytest.raises(ConflictError) as caught:
        services.charge_off(loan, actor=operator)
    assert [e["code"] for e in caught.value.errors] == ["loan_not_active"]


def test_a_closed_loan_is_not_active(operator):
    loan = loan_l(operator)
    set_business_date(date(2024, 2, 14))
    services.post_payoff(loan=loan, on=CHARGE_OFF_DATE, amount=D("83.79"), actor=operator)
    before = state(loan)
    with pytest.raises(ConflictError) as caught:
        services.charge_off(loan, actor=operator)
    assert [e["code"] for e in caught.value.errors] == ["loan_not_active"]
    assert state(loan) == before


def test_a_duplicate_external_id_is_refused(operator):
    loan = loan_l(operator)
    Transaction.objects.filter(loan=loan, type="REPAYMENT").update(external_id="TX-1")
    with pytest.raises(DuplicateExternalIdError):
        services.charge_off(loan, actor=operator, external_id="TX-1")
    assert Loan.objects.get(pk=loan.pk).charged_off is False


def test_no_advancement_and_no_modification_on_a_charged_off_loan(operator):
    loan = loan_l(operator)
    services.charge_off(loan, actor=operator)
    with pytest.raises(LoanStateError) as caught:
        services.post_transaction(
            loan=loan,
            type=TransactionType.ADVANCEMENT,
            on=CHARGE_OFF_DATE,
            amount=D("10.00"),
            actor=operator,
        )
    assert caught.value.code == "loan_charged_off"
    with pytest.raises(LoanStateError) as caught:
        create_modification(loan=loan, modification_date=CHARGE_OFF_DATE, actor=operator)
    assert caught.value.code == "loan_charged_off"


def test_charge_off_reads_a_bounded_number_of_queries(operator, django_assert_max_num_queries):
    loan = loan_l(operator, loan_term=D("60"))
    with django_assert_max_num_queries(40):
        services.charge_off(loan.pk, actor=operator)


# ------------------------------------------------------------------ the undo


@pytest.mark.parametrize("engine", ENGINES)
def test_undo_reverses_it_clears_the_flag_and_restores_the_schedule(operator, engine):
    loan = loan_l(operator, **engine)
    before = periods(loan)
    tx = services.charge_off(loan, actor=operator).transaction

    result = services.undo_charge_off(
        loan.pk, actor=operator, note="charged off by mistake", reversal_external_id="UCO-1"
    )

    tx.refresh_from_db()
    assert result.transaction.pk == tx.pk
    assert (tx.reversed, tx.reversed_on, tx.reversal_external_id, tx.reversal_note) == (
        True,
        CHARGE_OFF_DATE,
        "UCO-1",
        "charged off by mistake",
    )
    loan.refresh_from_db()
    assert loan.charged_off is False
    assert periods(loan) == before
    assert [p[3] for p in periods(loan)] == [
        D("0.58"),
        D("0.49"),
        D("0.39"),
        D("0.29"),
        D("0.20"),
        D("0.10"),
    ]
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    assert (schedule.version, schedule.reason) == (3, ScheduleReason.UNDO_CHARGE_OFF)
    assert outstanding(loan).total_outstanding == D("85.04")
    event = LoanEvent.objects.filter(loan=loan).latest("id")
    assert (event.command, event.changes["chargedOff"]) == ("undo_charge_off", [True, False])
    assert preview_undo_charge_off(loan, as_of=CHARGE_OFF_DATE).refusals[0]["code"] == (
        "not_charged_off"
    )


def test_undo_only_while_the_charge_off_is_the_latest_transaction(operator):
    loan = loan_l(operator)
    services.charge_off(loan, actor=operator)
    recovery = repay(loan, operator, CHARGE_OFF_DATE, "5.00")
    before = state(loan)

    with pytest.raises(ConflictError) as caught:
        services.undo_charge_off(loan, actor=operator)

    assert caught.value.code == "charge_off_not_latest"
    assert str(recovery.pk) in caught.value.errors[0]["detail"]
    assert state(loan) == before
    services.reverse_transaction(loan=loan, transaction_id=recovery.pk, actor=operator)
    services.undo_charge_off(loan, actor=operator)
    assert Loan.objects.get(pk=loan.pk).charged_off is False


def test_undo_on_a_loan_not_charged_off_is_refused(operator):
    loan = loan_l(operator)
    with pytest.raises(ConflictError) as caught:
        services.undo_charge_off(loan, actor=operator)
    assert caught.value.code == "not_charged_off"
