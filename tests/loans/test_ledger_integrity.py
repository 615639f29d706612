"""Issue 10: every cent accounted for. Each defect of the audit with its exact figures, the
payoff (DESIGN §9), overpayment and the credit balance refund, through the services."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from loans import selectors
from loans.exceptions import ConflictError, InvalidRequestError
from loans.models import (
    Loan,
    LoanEvent,
    LoanStatus,
    Schedule,
    SchedulePeriod,
    Transaction,
    TransactionType,
)
from loans.services import (
    create_loan,
    post_credit_balance_refund,
    post_payoff,
    post_transaction,
    reverse_transaction,
    terminate_contract,
    update_setup,
)
from tests.factories import make_active_loan, make_loan, set_business_date

pytestmark = pytest.mark.django_db

REPAYMENT = TransactionType.REPAYMENT


def loan_l(operator, **kw):
    """Loan L of issue 10: 100 at 7 %, 6 monthly, contract 2024-01-01, HALF_EVEN, DYNAMIC."""
    set_business_date(date(2024, 1, 1))
    return make_active_loan(
        actor=operator,
        loan_amount=D("100.00"),
        loan_rate=D("7"),
        loan_term=D("6"),
        payment_frequency="MONTHLY",
        contract_date=date(2024, 1, 1),
        first_payment_date=date(2024, 2, 1),
        rounding_mode="HALF_EVEN",
        as_of=date(2024, 1, 1),
        **kw,
    )


def pay(loan, operator, on, amount, type=REPAYMENT):
    set_business_date(max(on, selectors.get_business_date()))
    return post_transaction(loan=loan, type=type, on=on, amount=D(amount), actor=operator)


def portions(tx):
    tx.refresh_from_db()
    return (tx.principal_portion, tx.interest_portion, tx.fees_portion, tx.overpayment_portion)


def outstanding(loan):
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    return sum((p.total_outstanding for p in schedule.periods.filter(frozen=False)), D("0.00"))


def state(loan):
    loan.refresh_from_db()
    return (
        loan.status,
        loan.sub_status,
        Transaction.objects.filter(loan=loan).count(),
        Schedule.objects.filter(loan=loan).count(),
        SchedulePeriod.objects.filter(schedule__loan=loan).count(),
        LoanEvent.objects.filter(loan=loan).count(),
        list(
            Transaction.objects.filter(loan=loan)
            .order_by("id")
            .values_list("amount", "principal_portion", "interest_portion", "reversed")
        ),
    )


# ------------------------------------------------------------------ 2. termination re-derived


def test_a_backdated_repayment_re_derives_the_termination(operator):
    # 84.44 = 83.57 + 0.49 (#2, due) + 0.38 (#3's 0.39 for 30 of its 31 days)
    loan = loan_l(operator, termination_interest="ACCRUED_TO_DATE")
    pay(loan, operator, date(2024, 2, 1), "17.01")
    set_business_date(date(2024, 3, 31))
    termination = terminate_contract(loan=loan, actor=operator).transaction
    assert termination.amount == D("84.44")
    pay(loan, operator, date(2024, 3, 1), "17.01")
    termination.refresh_from_db()
    assert outstanding(loan) == D("67.43")
    assert termination.amount == D("67.43")
    assert portions(termination)[0] + portions(termination)[1] == D("67.43")
    assert not termination.reversed


def test_a_replay_that_leaves_nothing_reverses_the_termination(operator):
    loan = loan_l(operator)  # ALL_OUTSTANDING: 83.57 + 1.47 of interest = 85.04
    pay(loan, operator, date(2024, 2, 1), "17.01")
    set_business_date(date(2024, 3, 31))
    termination = terminate_contract(loan=loan, actor=operator).transaction
    assert termination.amount == D("85.04")
    pay(loan, operator, date(2024, 3, 1), "85.04")  # backdated: settles everything
    termination.refresh_from_db()
    loan.refresh_from_db()
    assert termination.reversed and termination.reversed_on == date(2024, 3, 31)
    assert loan.sub_status is None
    assert loan.status == LoanStatus.CLOSED
    assert outstanding(loan) == 0
    assert LoanEvent.objects.filter(loan=loan, command="system_reverse_termination").count() == 1


# ------------------------------------------------------------------ 3. no cent vanishes


def test_terminating_with_nothing_outstanding_is_refused(operator):
    loan = loan_l(operator, termination_interest="ACCRUED_TO_DATE")
    repayment = pay(loan, operator, date(2024, 1, 10), "101.50")
    set_business_date(date(2024, 1, 20))
    before = state(loan)
    with pytest.raises(ConflictError) as exc:
        terminate_contract(loan=loan, actor=operator)
    assert exc.value.code == "nothing_outstanding"
    assert state(loan) == before
    assert sum(portions(repayment)) == D("101.50")
    assert portions(repayment)[3] == 0


def test_an_undone_charge_leaves_a_credit_balance_refundable(operator):
    loan = loan_l(operator)
    charge = pay(loan, operator, date(2024, 1, 10), "5.00", TransactionType.CHARGE)
    repayment = pay(loan, operator, date(2024, 1, 10), "107.05")
    loan.refresh_from_db()
    assert loan.status == LoanStatus.CLOSED
    reverse_transaction(loan=loan, transaction_id=charge.pk, actor=operator)
    loan.refresh_from_db()
    assert portions(repayment) == (D("100.00"), D("2.05"), D("0.00"), D("5.00"))
    assert loan.status == LoanStatus.OVERPAID
    assert selectors.credit_balance(loan) == D("5.00")
    assert selectors.loan_summary(loan, as_of=date(2024, 1, 10)).credit_balance == D("5.00")

    before = state(loan)
    with pytest.raises(InvalidRequestError) as exc:
        post_credit_balance_refund(
            loan=loan, on=date(2024, 1, 10), amount=D("5.01"), actor=operator
        )
    assert exc.value.code == "refund_above_credit_balance"
    assert state(loan) == before

    refund = post_credit_balance_refund(
        loan=loan, on=date(2024, 1, 10), amount=D("2.00"), actor=operator
    )
    loan.refresh_from_db()
    assert refund.type == TransactionType.CREDIT_BALANCE_REFUND
    assert (refund.amount, refund.overpayment_portion) == (D("2.00"), D("2.00"))
    assert loan.status == LoanStatus.OVERPAID and selectors.credit_balance(loan) == D("3.00")
    post_credit_balance_refund(loan=loan, on=date(2024, 1, 10), amount=D("3.00"), actor=operator)
    loan.refresh_from_db()
    assert loan.status == LoanStatus.CLOSED and selectors.credit_balance(loan) == 0


def test_a_charge_on_an_overpaid_loan_is_paid_from_its_credit_balance(operator):
    """Audit: a charge on an OVERPAID loan was left outstanding beside the credit balance
    (ACTIVE, 3.00 owed and 5.00 credit), so the borrower was billed money the lender holds.
    OVERPAID is "paid more than owed: a credit balance" (DESIGN §1): what was overpaid pays
    the charge (as a replay books what a payment brings beyond what is due), the rest stays
    a refundable credit; a refund of it all closes the loan (§9)."""
    loan = loan_l(operator)
    charge = pay(loan, operator, date(2024, 1, 10), "5.00", TransactionType.CHARGE)
    repayment = pay(loan, operator, date(2024, 1, 10), "107.05")
    reverse_transaction(loan=loan, transaction_id=charge.pk, actor=operator)
    loan.refresh_from_db()
    assert loan.status == LoanStatus.OVERPAID and selectors.credit_balance(loan) == D("5.00")

    later = pay(loan, operator, date(2024, 1, 12), "3.00", TransactionType.CHARGE)
    loan.refresh_from_db()
    summary = selectors.loan_summary(loan, as_of=date(2024, 1, 12))
    assert (loan.status, summary.total_outstanding, summary.fees_outstanding) == (
        LoanStatus.OVERPAID,
        D("0.00"),
        D("0.00"),
    )
    assert selectors.credit_balance(loan) == D("2.00")
    assert portions(repayment) == (D("100.00"), D("2.05"), D("3.00"), D("2.00"))
    assert later.fees_portion == D("3.00")

    # A charge above the credit takes all of it and leaves the rest owed.
    pay(loan, operator, date(2024, 1, 12), "4.50", TransactionType.CHARGE)
    loan.refresh_from_db()
    summary = selectors.loan_summary(loan, as_of=date(2024, 1, 12))
    assert (loan.status, summary.total_outstanding, selectors.credit_balance(loan)) == (
        LoanStatus.ACTIVE,
        D("2.50"),
        D("0.00"),
    )
    assert portions(repayment) == (D("100.00"), D("2.05"), D("5.00"), D("0.00"))


def test_a_refunded_credit_balance_does_not_pay_a_later_charge(operator):
    """What a credit balance refund paid back is no longer there to pay a charge after it."""
    loan = loan_l(operator)
    charge = pay(loan, operator, date(2024, 1, 10), "5.00", TransactionType.CHARGE)
    repayment = pay(loan, operator, date(2024, 1, 10), "107.05")
    reverse_transaction(loan=loan, transaction_id=charge.pk, actor=operator)
    post_credit_balance_refund(loan=loan, on=date(2024, 1, 10), amount=D("4.00"), actor=operator)
    pay(loan, operator, date(2024, 1, 12), "3.00", TransactionType.CHARGE)
    loan.refresh_from_db()
    summary = selectors.loan_summary(loan, as_of=date(2024, 1, 12))
    assert (loan.status, summary.total_outstanding, selectors.credit_balance(loan)) == (
        LoanStatus.ACTIVE,
        D("2.00"),
        D("0.00"),
    )
    assert portions(repayment) == (D("100.00"), D("2.05"), D("1.00"), D("4.00"))


def test_a_charge_on_an_overpaid_recalculating_loan_is_paid_from_its_credit_balance(operator):
    """Audit: the daily-accrual engine (loans.progressive) left a charge on an OVERPAID loan
    owed beside the credit (ACTIVE, 3.00 owed and 5.00 credit), as the other engine did before
    83d7b34. Same rule: the credit pays it, the latest overpayment becoming fees."""
    loan = loan_l(operator, interest_recalculation=True)
    charge = pay(loan, operator, date(2024, 1, 10), "5.00", TransactionType.CHARGE)
    repayment = pay(loan, operator, date(2024, 1, 10), "105.17")  # 100 + 9 days' 0.17 + 5
    reverse_transaction(loan=loan, transaction_id=charge.pk, actor=operator)
    loan.refresh_from_db()
    assert loan.status == LoanStatus.OVERPAID and selectors.credit_balance(loan) == D("5.00")

    later = pay(loan, operator, date(2024, 1, 12), "3.00", TransactionType.CHARGE)
    loan.refresh_from_db()
    summary = selectors.loan_summary(loan, as_of=date(2024, 1, 12))
    assert (loan.status, summary.total_outstanding, selectors.credit_balance(loan)) == (
        LoanStatus.OVERPAID,
        D("0.00"),
        D("2.00"),
    )
    assert portions(repayment) == (D("100.00"), D("0.17"), D("3.00"), D("2.00"))
    assert later.fees_portion == D("3.00")

    pay(loan, operator, date(2024, 1, 12), "4.50", TransactionType.CHARGE)
    loan.refresh_from_db()
    summary = selectors.loan_summary(loan, as_of=date(2024, 1, 12))
    assert (loan.status, summary.total_outstanding, selectors.credit_balance(loan)) == (
        LoanStatus.ACTIVE,
        D("2.50"),
        D("0.00"),
    )
    assert portions(repayment) == (D("100.00"), D("0.17"), D("5.00"), D("0.00"))


def test_a_refunded_credit_balance_does_not_pay_a_later_charge_when_recalculating(operator):
    loan = loan_l(operator, interest_recalculation=True)
    charge = pay(loan, operator, date(2024, 1, 10), "5.00", TransactionType.CHARGE)
    repayment = pay(loan, operator, date(2024, 1, 10), "105.17")
    reverse_transaction(loan=loan, transaction_id=charge.pk, actor=operator)
    post_credit_balance_refund(loan=loan, on=date(2024, 1, 10), amount=D("4.00"), actor=operator)
    pay(loan, operator, date(2024, 1, 12), "3.00", TransactionType.CHARGE)
    loan.refresh_from_db()
    summary = selectors.loan_summary(loan, as_of=date(2024, 1, 12))
    assert (loan.status, summary.total_outstanding, selectors.credit_balance(loan)) == (
        LoanStatus.ACTIVE,
        D("2.00"),
        D("0.00"),
    )
    assert portions(repayment) == (D("100.00"), D("0.17"), D("1.00"), D("4.00"))


# ------------------------------------------------------------------ 4. modification carry-over


def test_modification_carries_the_payoff_on_its_date(operator):
    from modifications.services import create_modification

    loan = loan_l(operator)
    pay(loan, operator, date(2024, 2, 1), "17.01")
    pay(loan, operator, date(2024, 2, 10), "17.01")
    set_business_date(date(2024, 2, 14))
    modification = create_modification(
        loan=loan, modification_date=date(2024, 2, 14), actor=operator
    )
    assert modification.setup.loan_amount == D("66.78")
    assert selectors.payoff(loan, on=date(2024, 2, 14)).total == D("66.78")


# ------------------------------------------------------------------ 5. no re-split


def test_termination_never_re_splits_an_earlier_repayment(operator):
    loan = loan_l(operator)
    repayment = pay(loan, operator, date(2024, 1, 15), "5.00")
    assert portions(repayment) == (D("4.42"), D("0.58"), D("0.00"), D("0.00"))
    set_business_date(date(2024, 1, 20))
    termination = terminate_contract(loan=loan, actor=operator).transaction
    assert portions(repayment) == (D("4.42"), D("0.58"), D("0.00"), D("0.00"))
    assert termination.principal_portion == D("95.58")
    assert termination.interest_portion == D("1.47")


# ------------------------------------------------------------------ 6. negative amortization


@pytest.mark.parametrize(
    "amount, rate, term",
    [("10000.00", "24.99", "60"), ("250000.00", "4", "360")],
)
def test_negative_amortization_is_refused_at_setup(operator, amount, rate, term):
    setup = {
        "loan_amount": D(amount),
        "loan_rate": D(rate),
        "loan_term": D(term),
        "payment_frequency": "MONTHLY",
        "contract_date": date(2024, 1, 1),
        "first_payment_date": date(2024, 2, 15),
    }
    loans = Loan.objects.count()
    with pytest.raises(InvalidRequestError) as exc:
        create_loan(
            actor=operator,
            setup=setup,
            borrower_data={"first_name": "A", "last_name": "B"},
        )
    assert exc.value.code == "negative_amortization"
    assert exc.value.errors[0]["field"] == "firstPaymentDate"
    assert "installment 1" in exc.value.message
    assert Loan.objects.count() == loans

    # Changing an accepted setup into such terms is refused the same way, nothing written.
    loan = make_loan(**{**setup, "first_payment_date": date(2024, 2, 1)})
    with pytest.raises(InvalidRequestError) as exc:
        update_setup(
            setup=loan.setup, changes={"first_payment_date": date(2024, 2, 15)}, actor=operator
        )
    assert exc.value.code == "negative_amortization"
    loan.setup.refresh_from_db()
    assert loan.setup.first_payment_date == date(2024, 2, 1)


# ------------------------------------------------------------------ payoff (§9)


def test_payoff_quote_and_command_close_the_loan(operator):
    loan = loan_l(operator)
    first = pay(loan, operator, date(2024, 2, 1), "17.01")
    set_business_date(date(2024, 2, 14))
    quote = selectors.payoff(loan, on=date(2024, 2, 14))
    assert (quote.principal, quote.interest, quote.fees, quote.total, quote.per_diem) == (
        D("83.57"),
        D("0.22"),
        D("0.00"),
        D("83.79"),
        D("0.02"),
    )
    assert selectors.loan_summary(loan, as_of=date(2024, 2, 14)).payoff_today == D("83.79")

    before = state(loan)
    with pytest.raises(InvalidRequestError) as exc:
        post_payoff(loan=loan, on=date(2024, 2, 14), amount=D("83.80"), actor=operator)
    assert exc.value.code == "payoff_amount_mismatch"
    assert "83.79" in exc.value.message
    assert state(loan) == before

    tx = post_payoff(loan=loan, on=date(2024, 2, 14), amount=D("83.79"), actor=operator)
    loan.refresh_from_db()
    assert tx.type == TransactionType.PAYOFF
    assert portions(tx) == (D("83.57"), D("0.22"), D("0.00"), D("0.00"))
    assert portions(first) == (D("16.43"), D("0.58"), D("0.00"), D("0.00"))
    assert loan.status == LoanStatus.CLOSED
    assert outstanding(loan) == 0
    assert selectors.payoff(loan, on=date(2024, 2, 14)).total == 0

    with pytest.raises(ConflictError) as exc:
        post_payoff(loan=loan, on=date(2024, 2, 14), amount=D("0.01"), actor=operator)
    assert exc.value.code == "loan_closed"


def test_payoff_date_before_the_latest_transaction_is_refused(operator):
    loan = loan_l(operator)
    pay(loan, operator, date(2024, 2, 10), "17.01")
    with pytest.raises(InvalidRequestError) as exc:
        selectors.payoff(loan, on=date(2024, 2, 9))
    assert exc.value.code == "date_before_last_transaction"
    before = state(loan)
    with pytest.raises(InvalidRequestError) as exc:
        post_payoff(loan=loan, on=date(2024, 2, 9), amount=D("84.00"), actor=operator)
    assert exc.value.code == "date_before_last_transaction"
    assert state(loan) == before


def test_payoff_quotes_for_the_following_days(operator):
    loan = loan_l(operator)
    pay(loan, operator, date(2024, 2, 1), "17.01")
    set_business_date(date(2024, 2, 14))
    quote = selectors.payoff_quotes(loan, on=date(2024, 2, 14), days=10)
    assert [q.on for q in quote.quotes][:2] == [date(2024, 2, 14), date(2024, 2, 15)]
    assert len(quote.quotes) == 11
    assert quote.quotes[0].total == D("83.79")
    # 0.49 over the 29 days of February: 14 days -> 0.24, 23 days -> 0.39
    assert quote.quotes[1].interest == D("0.24")
    assert quote.quotes[10].interest == D("0.39")
    assert quote.quotes[10].total == D("83.96")
    assert quote.per_diem == D("0.02")
