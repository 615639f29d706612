"""Core commands: every guard (and that nothing was written), every effect, the audit row."""

from datetime import date
from decimal import Decimal

import pytest

from loans import services
from loans.exceptions import ConflictError, FutureDateError, InvalidRequestError, SetupLockedError
from loans.models import (
    BusinessDate,
    LoanEvent,
    LoanSetup,
    LoanStatus,
    Schedule,
    SchedulePeriod,
    Transaction,
    TransactionType,
)
from loans.selectors import current_schedule, loan_summary
from tests.factories import make_active_loan, make_loan, set_business_date

pytestmark = pytest.mark.django_db

D = Decimal


def periods_of(loan):
    return list(current_schedule(loan).periods.all())


def rows():
    return (
        Transaction.objects.count(),
        LoanEvent.objects.count(),
        SchedulePeriod.objects.count(),
        Schedule.objects.count(),
    )


@pytest.fixture
def small_loan(operator):
    """100.00 at 7 %, 6 monthly, HALF_EVEN: 17.01 x5 + 17.00."""
    set_business_date(date(2024, 7, 1))
    return make_active_loan(
        actor=operator,
        loan_amount=D("100.00"),
        loan_rate=D("7"),
        loan_term=D("6"),
        contract_date=date(2024, 1, 1),
        first_payment_date=date(2024, 2, 1),
        rounding_mode="HALF_EVEN",
    )


def post(loan, actor, kind, on, amount, **kw):
    return services.post_transaction(
        loan=loan, type=kind, on=on, amount=D(amount), actor=actor, **kw
    )


def test_activation_disburses_and_records(small_loan, operator):
    disbursement = Transaction.objects.get(loan=small_loan, type=TransactionType.DISBURSEMENT)
    assert (disbursement.date, disbursement.amount) == (date(2024, 1, 1), D("100.00"))
    assert small_loan.setup.active is True
    assert [p.total_due for p in periods_of(small_loan)] == [D("17.01")] * 5 + [D("17.00")]
    event = LoanEvent.objects.filter(loan=small_loan, command="activate_loan").get()
    assert event.actor == operator
    assert event.changes["status"] == ["PENDING", "ACTIVE"]


def test_activation_refuses_a_future_contract_date(operator):
    set_business_date(date(2025, 12, 31))
    loan = make_loan(actor=operator, contract_date=date(2026, 1, 1))
    before = rows()
    with pytest.raises(FutureDateError):
        services.activate_loan(loan=loan, actor=operator)
    loan.refresh_from_db()
    assert loan.status == LoanStatus.PENDING and rows() == before
    assert LoanSetup.objects.get(loan=loan).active is False


def test_pending_loan_refuses_transactions(operator):
    set_business_date(date(2026, 3, 1))
    loan = make_loan(actor=operator)
    before = rows()
    for kind in (
        TransactionType.REPAYMENT,
        TransactionType.CHARGE,
        TransactionType.ADVANCEMENT,
        TransactionType.CREDIT,
    ):
        with pytest.raises(ConflictError) as exc:
            post(loan, operator, kind, date(2026, 2, 1), "10")
        assert (exc.value.code, exc.value.status) == ("loan_not_active", 409)
    for command in (services.post_payoff, services.post_credit_balance_refund):
        with pytest.raises(ConflictError) as exc:
            command(loan=loan, on=date(2026, 2, 1), amount=D("10"), actor=operator)
        assert (exc.value.code, exc.value.status) == ("loan_not_active", 409)
    assert rows() == before
    loan.refresh_from_db()
    assert loan.status == LoanStatus.PENDING
    assert not Transaction.objects.filter(loan=loan).exists()
    assert list(LoanEvent.objects.filter(loan=loan).values_list("command", flat=True)) == [
        "create_loan"
    ]


def test_overdue_then_paid_in_advance(small_loan, operator):
    # Business date 2024-07-01: installments due 02-01..06-01 are past due (5 x 17.01).
    summary = loan_summary(small_loan, as_of=date(2024, 7, 1))
    assert summary.amount_past_due == D("85.05")
    assert summary.days_past_due == (date(2024, 7, 1) - date(2024, 2, 1)).days
    assert summary.next_due_date == date(2024, 7, 1)
    post(small_loan, operator, TransactionType.REPAYMENT, date(2024, 6, 15), "40.00")
    periods = periods_of(small_loan)
    assert [p.complete for p in periods] == [True, True, False, False, False, False]
    assert periods[2].total_paid == D("5.98")
    assert periods[0].obligations_met_on_date == date(2024, 6, 15)
    summary = loan_summary(small_loan, as_of=date(2024, 7, 1))
    assert summary.days_past_due == (date(2024, 7, 1) - date(2024, 4, 1)).days


def test_allocation_fees_interest_principal_oldest_first(small_loan, operator):
    post(small_loan, operator, TransactionType.CHARGE, date(2024, 1, 20), "5.00")
    assert periods_of(small_loan)[0].fees_due == D("5.00")
    tx = post(small_loan, operator, TransactionType.REPAYMENT, date(2024, 2, 1), "6.00")
    assert (tx.fees_portion, tx.interest_portion, tx.principal_portion) == (
        D("5.00"),
        D("0.58"),
        D("0.42"),
    )


def test_credit_reduces_balance_like_a_payment(small_loan, operator):
    tx = post(small_loan, operator, TransactionType.CREDIT, date(2024, 2, 1), "17.01")
    assert (tx.interest_portion, tx.principal_portion) == (D("0.58"), D("16.43"))
    assert periods_of(small_loan)[0].complete


def test_full_payoff_closes_and_reversal_reopens(small_loan, operator):
    tx = post(small_loan, operator, TransactionType.REPAYMENT, date(2024, 6, 30), "102.05")
    small_loan.refresh_from_db()
    assert small_loan.status == LoanStatus.CLOSED
    with pytest.raises(ConflictError) as exc:
        post(small_loan, operator, TransactionType.REPAYMENT, date(2024, 6, 30), "1")
    assert exc.value.code == "loan_closed"
    services.reverse_transaction(loan=small_loan, transaction_id=tx.pk, actor=operator)
    small_loan.refresh_from_db()
    assert small_loan.status == LoanStatus.ACTIVE
    assert loan_summary(small_loan, as_of=date(2024, 7, 1)).total_outstanding == D("102.05")


def test_overpayment_refused(small_loan, operator):
    before = rows()
    with pytest.raises(InvalidRequestError) as exc:
        post(small_loan, operator, TransactionType.REPAYMENT, date(2024, 6, 30), "102.06")
    assert exc.value.code == "overpayment" and rows() == before


def test_reversal_replays_later_payments(small_loan, operator):
    first = post(small_loan, operator, TransactionType.REPAYMENT, date(2024, 2, 1), "17.01")
    second = post(small_loan, operator, TransactionType.REPAYMENT, date(2024, 3, 1), "17.01")
    assert second.interest_portion == D("0.49")
    services.reverse_transaction(loan=small_loan, transaction_id=first.pk, actor=operator)
    second.refresh_from_db()
    # With the first payment gone, the second pays installment 1: 0.58 interest.
    assert (second.interest_portion, second.principal_portion) == (D("0.58"), D("16.43"))
    first.refresh_from_db()
    assert first.reversed and first.reversed_on == date(2024, 7, 1)
    assert first.reversed_by == operator


def test_disbursement_cannot_be_undone(small_loan, operator):
    disbursement = Transaction.objects.get(loan=small_loan, type=TransactionType.DISBURSEMENT)
    with pytest.raises(ConflictError) as exc:
        services.reverse_transaction(
            loan=small_loan, transaction_id=disbursement.pk, actor=operator
        )
    assert exc.value.code == "transaction_not_reversible"


def test_duplicate_external_ids(small_loan, operator):
    post(small_loan, operator, TransactionType.REPAYMENT, date(2024, 2, 1), "1", external_id="X-1")
    before = rows()
    with pytest.raises(InvalidRequestError) as exc:
        post(
            small_loan,
            operator,
            TransactionType.REPAYMENT,
            date(2024, 2, 1),
            "1",
            external_id="X-1",
        )
    assert exc.value.code == "duplicate_external_id" and rows() == before


def test_advancement_dynamic_reamortizes(operator):
    set_business_date(date(2024, 7, 1))
    loan = make_active_loan(
        actor=operator,
        loan_amount=D("1200.00"),
        loan_rate=D("12"),
        loan_term=D("12"),
        contract_date=date(2024, 1, 1),
        first_payment_date=date(2024, 2, 1),
    )
    post(loan, operator, TransactionType.ADVANCEMENT, date(2024, 3, 15), "300.00")
    # Before: 1,200.00 at 1 % a month over 12: 106.62 a month. The two installments due before
    # 2024-03-15 keep their figures; the 10 after it are re-amortized over the 1,009.81 left
    # plus the 300.00 advanced: 1,309.81 x 0.01 / (1 - 1.01^-10) = 138.29. The 300.00 earns
    # interest from 2024-03-15 (Fineract's progressive loan), not from 2024-03-01: the April
    # installment's interest is 1,009.81 x 1 % + 300.00 x 1 % x 17/31 = 10.0981 + 1.6452 = 11.74
    # (it was 1,309.81 x 1 % = 13.10, the whole month on the advanced amount); the principal
    # paid is 138.29 - 11.74 = 126.55, and the last installment absorbs the rest: 136.82.
    figures = [(p.due_date, p.principal_due, p.interest_due, p.total_due) for p in periods_of(loan)]
    assert figures == [
        (date(2024, 2, 1), D("94.62"), D("12.00"), D("106.62")),
        (date(2024, 3, 1), D("95.57"), D("11.05"), D("106.62")),
        (date(2024, 4, 1), D("126.55"), D("11.74"), D("138.29")),
        (date(2024, 5, 1), D("126.46"), D("11.83"), D("138.29")),
        (date(2024, 6, 1), D("127.72"), D("10.57"), D("138.29")),
        (date(2024, 7, 1), D("129.00"), D("9.29"), D("138.29")),
        (date(2024, 8, 1), D("130.29"), D("8.00"), D("138.29")),
        (date(2024, 9, 1), D("131.59"), D("6.70"), D("138.29")),
        (date(2024, 10, 1), D("132.91"), D("5.38"), D("138.29")),
        (date(2024, 11, 1), D("134.24"), D("4.05"), D("138.29")),
        (date(2024, 12, 1), D("135.58"), D("2.71"), D("138.29")),
        (date(2025, 1, 1), D("135.47"), D("1.35"), D("136.82")),
    ]
    assert sum(p.principal_due for p in periods_of(loan)) == D("1500.00")
    # The balance after each installment as it was on its due date: the two due before the
    # advancement are not raised by it (1,105.38 and 1,009.81, not 1,405.38 and 1,309.81).
    assert [p.balance_after for p in periods_of(loan)] == [
        D(v)
        for v in (
            "1105.38",
            "1009.81",
            "1183.26",
            "1056.80",
            "929.08",
            "800.08",
            "669.79",
            "538.20",
            "405.29",
            "271.05",
            "135.47",
            "0.00",
        )
    ]


def test_advancement_standard_adds_to_final_installment(operator):
    set_business_date(date(2024, 7, 1))
    loan = make_active_loan(
        actor=operator,
        schedule_engine="STANDARD",
        loan_amount=D("1200.00"),
        loan_rate=D("12"),
        loan_term=D("12"),
        contract_date=date(2024, 1, 1),
        first_payment_date=date(2024, 2, 1),
    )
    before = periods_of(loan)
    post(loan, operator, TransactionType.ADVANCEMENT, date(2024, 3, 15), "300.00")
    after = periods_of(loan)
    assert [p.total_due for p in after[:-1]] == [p.total_due for p in before[:-1]]
    assert (before[-1].principal_due, after[-1].principal_due) == (D("105.54"), D("405.54"))
    # Due before 2024-03-15: the balance of the day; from 2024-04-01 on, 300.00 more until the
    # final installment, which pays it.
    assert [p.balance_after for p in after] == [
        D(v)
        for v in (
            "1105.38",
            "1009.81",
            "1213.29",
            "1115.80",
            "1017.34",
            "917.89",
            "817.45",
            "716.00",
            "613.54",
            "510.06",
            "405.54",
            "0.00",
        )
    ]


def test_advancement_on_a_recalculating_loan_leaves_earlier_balances(operator):
    """The daily-accrual engine (DESIGN §11): the installments due before the advancement keep
    the balance of their due date."""
    set_business_date(date(2024, 7, 1))
    loan = make_active_loan(
        actor=operator,
        loan_amount=D("1200.00"),
        loan_rate=D("12"),
        loan_term=D("12"),
        contract_date=date(2024, 1, 1),
        first_payment_date=date(2024, 2, 1),
        interest_recalculation=True,
    )
    post(loan, operator, TransactionType.ADVANCEMENT, date(2024, 3, 15), "300.00")
    periods = periods_of(loan)
    assert sum(p.principal_due for p in periods) == D("1500.00")
    assert [p.balance_after for p in periods] == [
        D(v)
        for v in (
            "1105.38",
            "1010.76",
            "1186.02",
            "1062.63",
            "939.24",
            "815.85",
            "685.62",
            "554.09",
            "421.24",
            "287.06",
            "151.54",
            "0.00",
        )
    ]


def test_update_setup_only_while_not_active(operator):
    set_business_date(date(2026, 3, 1))
    loan = make_loan(actor=operator)
    setup = services.update_setup(setup=loan.setup, changes={"loan_term": D("6")}, actor=operator)
    assert setup.loan_term == D("6") and setup.payment == D("172.55")
    with pytest.raises(InvalidRequestError) as exc:
        services.update_setup(setup=setup, changes={"loan_term": D("6.5")}, actor=operator)
    assert exc.value.code == "invalid_terms"
    services.activate_loan(loan=loan, actor=operator)
    with pytest.raises(SetupLockedError):
        services.update_setup(setup=setup, changes={"loan_rate": D("1")}, actor=operator)
    assert LoanSetup.objects.get(pk=setup.pk).loan_rate == D("12")


def test_given_payment_too_small(operator):
    set_business_date(date(2026, 3, 1))
    loan = make_loan(actor=operator)
    with pytest.raises(InvalidRequestError) as exc:
        services.update_setup(setup=loan.setup, changes={"payment": D("10.00")}, actor=operator)
    assert exc.value.code == "payment_too_small"


def test_given_payment_below_the_interest_is_negative_amortization(operator):
    """DESIGN §1: a given payment below the interest is refused as negative amortization,
    naming the period; nothing changes."""
    set_business_date(date(2026, 3, 1))
    loan = make_loan(actor=operator)
    before = LoanSetup.objects.get(pk=loan.setup.pk).payment
    with pytest.raises(InvalidRequestError) as exc:
        services.update_setup(setup=loan.setup, changes={"payment": D("9.99")}, actor=operator)
    assert exc.value.code == "negative_amortization"
    assert [(e["field"], e["code"]) for e in exc.value.errors] == [
        ("payment", "negative_amortization")
    ]
    assert (
        "Installment 1's interest 10.00 is above its payment 9.99" in exc.value.errors[0]["detail"]
    )
    assert LoanSetup.objects.get(pk=loan.setup.pk).payment == before


def test_business_date_is_recorded(operator):
    services.set_business_date(new_date=date(2026, 5, 1), actor=operator, reason="month end")
    services.set_business_date(new_date=date(2026, 5, 2), actor=operator)
    event = LoanEvent.objects.filter(command="set_business_date").first()
    assert event.changes == {"date": ["2026-05-01", "2026-05-02"]}


def test_a_business_date_after_the_last_start_year_is_refused(operator):
    """A business date on 9999-12-31 left no room for the dates computed from it (a payoff
    quote's next day, the autopay horizon, a modification's payoff): GET /loans/{id} of a
    recalculating loan, command=chargeOff, POST .../modifications and POST /dispatch were 500s
    (OverflowError). It is bounded as a schedule's start is (loans.terms.LAST_START_YEAR)."""
    services.set_business_date(new_date=date(2026, 5, 1), actor=operator)
    before = LoanEvent.objects.count()
    for refused in (date(9949, 1, 1), date(9999, 12, 31)):
        with pytest.raises(InvalidRequestError) as exc:
            services.set_business_date(new_date=refused, actor=operator)
        assert exc.value.code == "out_of_range"
        assert [(e["field"], e["code"]) for e in exc.value.errors] == [("date", "out_of_range")]
        assert exc.value.errors[0]["detail"].startswith("Must be before 9949-01-01")
    assert BusinessDate.objects.get().date == date(2026, 5, 1)
    assert LoanEvent.objects.count() == before
    services.set_business_date(new_date=date(9948, 12, 31), actor=operator)
    assert BusinessDate.objects.get().date == date(9948, 12, 31)


def test_term_longer_than_fifty_years_is_refused(operator):
    set_business_date(date(2026, 3, 1))
    loan = make_loan(actor=operator)
    with pytest.raises(InvalidRequestError) as exc:
        services.update_setup(
            setup=loan.setup,
            changes={"payment_frequency": "ANNUALLY", "loan_term": D("51")},
            actor=operator,
        )
    assert exc.value.errors[0]["code"] == "term_too_long"
    services.update_setup(
        setup=loan.setup,
        changes={"payment_frequency": "ANNUALLY", "loan_term": D("50")},
        actor=operator,
    )
