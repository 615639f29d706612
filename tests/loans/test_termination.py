"""Contract termination and its undo (seed 002, DESIGN §3): the services."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal as D

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from loans import selectors
from loans.exceptions import ConflictError, DuplicateExternalIdError, LoanStateError
from loans.models import (
    Loan,
    LoanEvent,
    LoanStatus,
    LoanSubStatus,
    Schedule,
    ScheduleEngine,
    SchedulePeriod,
    ScheduleReason,
    Transaction,
    TransactionType,
)
from loans.selectors import preview_contract_termination, preview_undo_contract_termination
from loans.services import (
    post_transaction,
    reverse_transaction,
    terminate_contract,
    undo_contract_termination,
)
from tests.factories import make_active_loan, make_loan, set_business_date

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------ helpers


def periods_of(loan, *, version=None):
    """(period, fromDate, dueDate, principalDue, interestDue, feesDue, totalPaid, complete)."""
    schedule = (
        Schedule.objects.get(loan=loan, version=version)
        if version is not None
        else Schedule.objects.get(loan=loan, is_current=True)
    )
    return [
        (
            p.period,
            p.from_date,
            p.due_date,
            p.principal_due,
            p.interest_due,
            p.fees_due,
            p.total_paid,
            p.complete,
        )
        for p in schedule.periods.order_by("period")
    ]


def summary_of(loan, as_of):
    return selectors.loan_summary(loan, as_of=as_of)


def row_counts():
    return (
        Transaction.objects.count(),
        Schedule.objects.count(),
        SchedulePeriod.objects.count(),
        LoanEvent.objects.count(),
    )


def loan_state(loan):
    loan.refresh_from_db()
    return (
        loan.status,
        loan.sub_status,
        periods_of(loan),
        list(
            Transaction.objects.filter(loan=loan)
            .order_by("id")
            .values_list(
                "type",
                "date",
                "amount",
                "principal_portion",
                "interest_portion",
                "fees_portion",
                "reversed",
            )
        ),
    )


BASELINE_B_PAID = [
    (
        1,
        date(2025, 12, 27),
        date(2026, 1, 10),
        D("100.00"),
        D("5.54"),
        D("0.00"),
        D("105.54"),
        True,
    ),
    (2, date(2026, 1, 10), date(2026, 1, 24), D("100.00"), D("4.62"), D("0.00"), D("104.62"), True),
    (3, date(2026, 1, 24), date(2026, 2, 7), D("100.00"), D("3.69"), D("0.00"), D("103.69"), True),
]
BASELINE_B_BEFORE = [
    *BASELINE_B_PAID,
    (4, date(2026, 2, 7), date(2026, 2, 21), D("100.00"), D("2.77"), D("0.00"), D("0.00"), False),
    (5, date(2026, 2, 21), date(2026, 3, 7), D("100.00"), D("1.85"), D("0.00"), D("0.00"), False),
    (6, date(2026, 3, 7), date(2026, 3, 21), D("100.00"), D("0.92"), D("0.00"), D("0.00"), False),
]


def seven_percent_loan(operator, *, policy, contract=date(2024, 1, 1), **kw):
    """100.00 at 7 %, six monthly from 2024-01-01, HALF_EVEN: 17.01 x 5 and 17.00."""
    return make_active_loan(
        actor=operator,
        loan_amount=D("100.00"),
        loan_rate=D("7"),
        loan_term=D("6"),
        payment_frequency="MONTHLY",
        contract_date=contract,
        first_payment_date=date(2024, 2, 1),
        rounding_mode="HALF_EVEN",
        termination_interest=policy,
        as_of=contract,
        **kw,
    )


def seven_percent_first_paid(operator, *, policy, business_date):
    set_business_date(date(2024, 2, 1))
    loan = seven_percent_loan(operator, policy=policy)
    post_transaction(
        loan=loan,
        type=TransactionType.REPAYMENT,
        on=date(2024, 2, 1),
        amount=D("17.01"),
        actor=operator,
    )
    set_business_date(business_date)
    loan.refresh_from_db()
    return loan


# ------------------------------------------------------------------ seed 002, Baseline B


def test_baseline_b_before_termination(baseline_b):
    assert periods_of(baseline_b) == BASELINE_B_BEFORE
    summary = summary_of(baseline_b, date(2026, 2, 18))
    assert summary.principal_outstanding == D("300.00")
    assert summary.interest_outstanding == D("5.54")
    assert summary.next_due_date == date(2026, 2, 21)


def test_baseline_b_termination_matches_seed_002(baseline_b, operator):
    result = terminate_contract(
        loan=baseline_b,
        actor=operator,
        note="Merchant cancelled order XYZ",
        external_id="CT-BL-B-0001",
    )

    tx = result.transaction
    tx.refresh_from_db()
    assert tx.type == TransactionType.CONTRACT_TERMINATION
    assert tx.date == date(2026, 2, 18)
    assert tx.amount == D("305.54")
    assert (tx.principal_portion, tx.interest_portion, tx.fees_portion) == (
        D("300.00"),
        D("5.54"),
        D("0.00"),
    )
    assert tx.external_id == "CT-BL-B-0001"
    assert tx.note == "Merchant cancelled order XYZ"
    assert tx.reversed is False
    assert tx.created_by == operator

    loan = Loan.objects.get(pk=baseline_b.pk)
    assert loan.status == LoanStatus.ACTIVE
    assert loan.sub_status == LoanSubStatus.CONTRACT_TERMINATION
    assert result.loan.sub_status == LoanSubStatus.CONTRACT_TERMINATION

    assert periods_of(loan) == [
        *BASELINE_B_PAID,
        (
            4,
            date(2026, 2, 7),
            date(2026, 2, 18),
            D("300.00"),
            D("5.54"),
            D("0.00"),
            D("0.00"),
            False,
        ),
    ]
    current = Schedule.objects.get(loan=loan, is_current=True)
    assert (current.version, current.reason) == (2, ScheduleReason.CONTRACT_TERMINATION)
    assert current.periods.get(period=4).balance_after == D("0.00")

    summary = summary_of(loan, date(2026, 2, 18))
    assert summary.principal_outstanding == D("300.00")
    assert summary.interest_outstanding == D("5.54")
    assert summary.total_outstanding == D("305.54")
    assert summary.next_due_date == date(2026, 2, 18)
    assert summary.amount_past_due == D("0.00")
    assert summary.days_past_due == 0

    # The previous version stays readable with its six periods.
    previous = Schedule.objects.get(loan=loan, version=1)
    assert previous.is_current is False
    assert periods_of(loan, version=1) == BASELINE_B_BEFORE

    # The earlier repayments keep their allocations.
    assert list(
        Transaction.objects.filter(loan=loan, type=TransactionType.REPAYMENT)
        .order_by("date")
        .values_list("principal_portion", "interest_portion")
    ) == [(D("100.00"), D("5.54")), (D("100.00"), D("4.62")), (D("100.00"), D("3.69"))]


def test_termination_records_an_audit_row(baseline_b, operator):
    result = terminate_contract(loan=baseline_b, actor=operator, note="Dispute #42")
    event = LoanEvent.objects.get(loan=baseline_b, command="terminate_contract")
    assert event.actor == operator
    assert event.business_date == date(2026, 2, 18)
    assert event.reason == "Dispute #42"
    assert event.changes == {
        "subStatus": [None, "CONTRACT_TERMINATION"],
        "nextDueDate": ["2026-02-21", "2026-02-18"],
        "outstanding": ["305.54", "305.54"],
    }
    assert event.result == {
        "transactionId": result.transaction.pk,
        "amount": "305.54",
        "principalPortion": "300.00",
        "interestPortion": "5.54",
        "feesPortion": "0.00",
        "scheduleVersion": 2,
    }


def test_preview_equals_the_result_and_writes_nothing(baseline_b, operator):
    before = row_counts()
    preview = preview_contract_termination(baseline_b)
    assert row_counts() == before
    assert preview.allowed
    assert preview.on == date(2026, 2, 18)
    assert (preview.principal, preview.interest, preview.fees, preview.total) == (
        D("300.00"),
        D("5.54"),
        D("0.00"),
        D("305.54"),
    )
    accelerated = preview.accelerated
    assert (accelerated.period, accelerated.due_date) == (4, date(2026, 2, 18))
    assert (accelerated.principal_due, accelerated.interest_due) == (D("300.00"), D("5.54"))
    assert periods_of(baseline_b) == BASELINE_B_BEFORE

    tx = terminate_contract(loan=baseline_b, actor=operator).transaction
    assert (tx.principal_portion, tx.interest_portion, tx.fees_portion) == (
        preview.principal,
        preview.interest,
        preview.fees,
    )


def test_fees_are_accelerated_too(baseline_b, operator):
    post_transaction(
        loan=baseline_b,
        type=TransactionType.CHARGE,
        on=date(2026, 2, 10),
        amount=D("7.50"),
        actor=operator,
    )
    tx = terminate_contract(loan=baseline_b, actor=operator).transaction
    assert (tx.amount, tx.principal_portion, tx.interest_portion, tx.fees_portion) == (
        D("313.04"),
        D("300.00"),
        D("5.54"),
        D("7.50"),
    )
    assert periods_of(baseline_b)[-1] == (
        4,
        date(2026, 2, 7),
        date(2026, 2, 18),
        D("300.00"),
        D("5.54"),
        D("7.50"),
        D("0.00"),
        False,
    )


# ------------------------------------------------------------------ both interest policies


def test_accrued_to_date_on_a_due_date(operator):
    loan = seven_percent_first_paid(
        operator, policy="ACCRUED_TO_DATE", business_date=date(2024, 3, 1)
    )
    tx = terminate_contract(loan=loan, actor=operator).transaction
    assert tx.date == date(2024, 3, 1)
    assert (tx.amount, tx.principal_portion, tx.interest_portion) == (
        D("84.06"),
        D("83.57"),
        D("0.49"),
    )
    assert periods_of(loan) == [
        (1, date(2024, 1, 1), date(2024, 2, 1), D("16.43"), D("0.58"), D("0.00"), D("17.01"), True),
        (2, date(2024, 2, 1), date(2024, 3, 1), D("83.57"), D("0.49"), D("0.00"), D("0.00"), False),
    ]
    summary = summary_of(loan, date(2024, 3, 1))
    assert (summary.principal_outstanding, summary.interest_outstanding) == (
        D("83.57"),
        D("0.49"),
    )
    assert summary.next_due_date == date(2024, 3, 1)


@pytest.mark.parametrize(
    ("on", "interest", "amount"),
    [
        # Fineract's LoanContractTermination.feature: S3 (14 Feb) and S2 (29 Feb).
        (date(2024, 2, 14), D("0.22"), D("83.79")),  # 0.49 x 13 / 29 = 0.2196...
        (date(2024, 2, 15), D("0.24"), D("83.81")),  # 0.49 x 14 / 29 = 0.2365...
        (date(2024, 2, 29), D("0.47"), D("84.04")),  # 0.49 x 28 / 29 = 0.4731...
    ],
)
def test_accrued_to_date_mid_period_prorates_by_days(operator, on, interest, amount):
    loan = seven_percent_first_paid(operator, policy="ACCRUED_TO_DATE", business_date=on)
    tx = terminate_contract(loan=loan, actor=operator).transaction
    assert (tx.date, tx.amount, tx.principal_portion, tx.interest_portion) == (
        on,
        amount,
        D("83.57"),
        interest,
    )
    assert periods_of(loan)[-1] == (
        2,
        date(2024, 2, 1),
        on,
        D("83.57"),
        interest,
        D("0.00"),
        D("0.00"),
        False,
    )


def test_accrued_to_date_repayment_after_termination(operator):
    # Fineract: terminated on 29 Feb 2024 (84.04), 17.01 repaid on 1 March -> 0.47 interest,
    # 16.54 principal, 67.03 outstanding and now past due.
    loan = seven_percent_first_paid(
        operator, policy="ACCRUED_TO_DATE", business_date=date(2024, 2, 29)
    )
    terminate_contract(loan=loan, actor=operator)
    set_business_date(date(2024, 3, 1))
    tx = post_transaction(
        loan=loan,
        type=TransactionType.REPAYMENT,
        on=date(2024, 3, 1),
        amount=D("17.01"),
        actor=operator,
    )
    assert (tx.principal_portion, tx.interest_portion) == (D("16.54"), D("0.47"))
    summary = summary_of(loan, date(2024, 3, 1))
    assert (summary.total_outstanding, summary.amount_past_due, summary.days_past_due) == (
        D("67.03"),
        D("67.03"),
        1,
    )


def test_accrued_to_date_with_a_fee_charged_before(operator):
    loan = seven_percent_first_paid(
        operator, policy="ACCRUED_TO_DATE", business_date=date(2024, 3, 1)
    )
    post_transaction(
        loan=loan,
        type=TransactionType.CHARGE,
        on=date(2024, 2, 15),
        amount=D("5.00"),
        actor=operator,
    )
    tx = terminate_contract(loan=loan, actor=operator).transaction
    assert (tx.amount, tx.principal_portion, tx.interest_portion, tx.fees_portion) == (
        D("89.06"),
        D("83.57"),
        D("0.49"),
        D("5.00"),
    )


@pytest.mark.parametrize("on", [date(2024, 2, 15), date(2024, 3, 1)])
def test_all_outstanding_accelerates_all_remaining_interest(operator, on):
    # 0.49 + 0.39 + 0.29 + 0.20 + 0.10 = 1.47
    loan = seven_percent_first_paid(operator, policy="ALL_OUTSTANDING", business_date=on)
    tx = terminate_contract(loan=loan, actor=operator).transaction
    assert (tx.amount, tx.principal_portion, tx.interest_portion) == (
        D("85.04"),
        D("83.57"),
        D("1.47"),
    )
    assert periods_of(loan)[-1] == (
        2,
        date(2024, 2, 1),
        on,
        D("83.57"),
        D("1.47"),
        D("0.00"),
        D("0.00"),
        False,
    )


# ------------------------------------------------------------------ dates


def test_overdue_installment_is_kept_and_included(baseline_b, operator):
    set_business_date(date(2026, 2, 25))  # installment #4 (due 2026-02-21) is unpaid
    tx = terminate_contract(loan=baseline_b, actor=operator).transaction
    assert (tx.date, tx.amount, tx.principal_portion, tx.interest_portion) == (
        date(2026, 2, 25),
        D("305.54"),
        D("300.00"),
        D("5.54"),
    )
    assert periods_of(baseline_b) == [
        *BASELINE_B_PAID,
        (
            4,
            date(2026, 2, 7),
            date(2026, 2, 21),
            D("100.00"),
            D("2.77"),
            D("0.00"),
            D("0.00"),
            False,
        ),
        (
            5,
            date(2026, 2, 21),
            date(2026, 2, 25),
            D("200.00"),
            D("2.77"),
            D("0.00"),
            D("0.00"),
            False,
        ),
    ]
    summary = summary_of(baseline_b, date(2026, 2, 25))
    assert summary.amount_past_due == D("102.77")
    assert summary.days_past_due == 4
    assert summary.next_due_date == date(2026, 2, 25)
    assert summary.total_outstanding == D("305.54")


def test_termination_on_the_disbursement_date_gives_one_installment(operator):
    set_business_date(date(2024, 1, 1))
    loan = seven_percent_loan(operator, policy="ALL_OUTSTANDING")
    tx = terminate_contract(loan=loan, actor=operator).transaction
    # all scheduled interest: 0.58 + 0.49 + 0.39 + 0.29 + 0.20 + 0.10 = 2.05
    assert (tx.date, tx.amount, tx.principal_portion, tx.interest_portion) == (
        date(2024, 1, 1),
        D("102.05"),
        D("100.00"),
        D("2.05"),
    )
    assert periods_of(loan) == [
        (1, date(2024, 1, 1), date(2024, 1, 1), D("100.00"), D("2.05"), D("0.00"), D("0.00"), False)
    ]


def test_termination_on_the_disbursement_date_accrued_to_date_has_no_interest(operator):
    set_business_date(date(2024, 1, 1))
    loan = seven_percent_loan(operator, policy="ACCRUED_TO_DATE")
    tx = terminate_contract(loan=loan, actor=operator).transaction
    assert (tx.amount, tx.principal_portion, tx.interest_portion) == (
        D("100.00"),
        D("100.00"),
        D("0.00"),
    )
    assert len(periods_of(loan)) == 1


@pytest.mark.parametrize(
    ("on", "past_due", "days_past_due"),
    [(date(2024, 7, 1), D("68.04"), 122), (date(2024, 8, 15), D("85.04"), 167)],
)
def test_on_or_after_maturity_the_periods_are_kept(operator, on, past_due, days_past_due):
    loan = seven_percent_first_paid(operator, policy="ACCRUED_TO_DATE", business_date=on)
    before = periods_of(loan)
    preview = preview_contract_termination(loan)
    assert preview.accelerated is None
    tx = terminate_contract(loan=loan, actor=operator).transaction
    assert (tx.amount, tx.principal_portion, tx.interest_portion) == (
        D("85.04"),
        D("83.57"),
        D("1.47"),
    )
    assert periods_of(loan) == before
    assert len(before) == 6
    loan.refresh_from_db()
    assert loan.sub_status == LoanSubStatus.CONTRACT_TERMINATION
    summary = summary_of(loan, on)
    assert (summary.amount_past_due, summary.days_past_due) == (past_due, days_past_due)


# ------------------------------------------------------------------ after termination


def test_a_repayment_after_termination_goes_to_the_accelerated_installment(baseline_b, operator):
    terminate_contract(loan=baseline_b, actor=operator)
    tx = post_transaction(
        loan=baseline_b,
        type=TransactionType.REPAYMENT,
        on=date(2026, 2, 18),
        amount=D("105.54"),
        actor=operator,
    )
    assert (tx.principal_portion, tx.interest_portion, tx.fees_portion) == (
        D("100.00"),
        D("5.54"),
        D("0.00"),
    )
    assert periods_of(baseline_b)[-1] == (
        4,
        date(2026, 2, 7),
        date(2026, 2, 18),
        D("300.00"),
        D("5.54"),
        D("0.00"),
        D("105.54"),
        False,
    )
    loan = Loan.objects.get(pk=baseline_b.pk)
    assert (loan.status, loan.sub_status) == (
        LoanStatus.ACTIVE,
        LoanSubStatus.CONTRACT_TERMINATION,
    )
    assert summary_of(loan, date(2026, 2, 18)).total_outstanding == D("200.00")


def test_paying_off_a_terminated_loan_closes_it_and_undoing_the_payoff_restores_it(
    baseline_b, operator
):
    terminate_contract(loan=baseline_b, actor=operator)
    payoff = post_transaction(
        loan=baseline_b,
        type=TransactionType.REPAYMENT,
        on=date(2026, 2, 18),
        amount=D("305.54"),
        actor=operator,
    )
    loan = Loan.objects.get(pk=baseline_b.pk)
    assert (loan.status, loan.sub_status) == (LoanStatus.CLOSED, None)
    assert periods_of(loan)[-1][-2:] == (D("305.54"), True)

    reverse_transaction(loan=loan, transaction_id=payoff.pk, actor=operator)
    loan = Loan.objects.get(pk=baseline_b.pk)
    assert (loan.status, loan.sub_status) == (
        LoanStatus.ACTIVE,
        LoanSubStatus.CONTRACT_TERMINATION,
    )


def test_no_advancement_on_a_terminated_loan(baseline_b, operator):
    terminate_contract(loan=baseline_b, actor=operator)
    with pytest.raises(LoanStateError) as exc:
        post_transaction(
            loan=baseline_b,
            type=TransactionType.ADVANCEMENT,
            on=date(2026, 2, 18),
            amount=D("10.00"),
            actor=operator,
        )
    assert exc.value.code == "loan_terminated"


# ------------------------------------------------------------------ terminate refusals


def refused(loan, operator, **kwargs):
    before = row_counts()
    with pytest.raises(ConflictError) as exc:
        terminate_contract(loan=loan, actor=operator, **kwargs)
    assert row_counts() == before
    assert exc.value.code == "contract_termination_not_allowed"
    assert exc.value.status == 409
    return [e["code"] for e in exc.value.errors]


def test_refusals_are_collected_together(operator):
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(actor=operator, schedule_engine=ScheduleEngine.STANDARD)
    Loan.objects.filter(pk=loan.pk).update(charged_off=True)
    loan.refresh_from_db()
    assert refused(loan, operator) == ["engine_not_dynamic", "loan_charged_off"]
    loan.refresh_from_db()
    assert loan.sub_status is None


def test_each_error_names_its_field_and_detail(operator):
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(actor=operator, schedule_engine=ScheduleEngine.STANDARD)
    with pytest.raises(ConflictError) as exc:
        terminate_contract(loan=loan, actor=operator)
    assert exc.value.errors == [
        {
            "field": None,
            "code": "engine_not_dynamic",
            "detail": "The loan uses the standard schedule engine; contract termination "
            "needs the dynamic engine.",
        }
    ]


def test_already_terminated(baseline_b, operator):
    terminate_contract(loan=baseline_b, actor=operator)
    assert refused(baseline_b, operator) == ["already_terminated"]


def test_modification_in_progress(baseline_b, operator):
    Loan.objects.filter(pk=baseline_b.pk).update(modification_in_progress=True)
    assert refused(baseline_b, operator) == ["modification_in_progress"]


def test_pending_loan_is_not_active(operator):
    set_business_date(date(2026, 2, 18))
    loan = make_loan(actor=operator)
    assert refused(loan, operator) == ["loan_not_active"]


def test_closed_loan_is_not_active(operator):
    set_business_date(date(2024, 2, 1))
    loan = seven_percent_loan(operator, policy="ALL_OUTSTANDING")
    post_transaction(
        loan=loan,
        type=TransactionType.REPAYMENT,
        on=date(2024, 2, 1),
        amount=D("102.05"),
        actor=operator,
    )
    loan.refresh_from_db()
    assert loan.status == LoanStatus.CLOSED
    assert refused(loan, operator) == ["loan_not_active"]


def test_every_check_fails_at_once(operator):
    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(actor=operator, schedule_engine=ScheduleEngine.STANDARD)
    Loan.objects.filter(pk=loan.pk).update(
        charged_off=True,
        sub_status=LoanSubStatus.CONTRACT_TERMINATION,
        modification_in_progress=True,
    )
    loan.refresh_from_db()
    assert refused(loan, operator) == [
        "engine_not_dynamic",
        "loan_charged_off",
        "already_terminated",
        "modification_in_progress",
    ]


def test_transactions_after_the_business_date_block_termination(baseline_b, operator):
    set_business_date(date(2026, 2, 5))  # the repayment of 2026-02-07 is later
    assert refused(baseline_b, operator) == ["transactions_after_business_date"]


def test_duplicate_external_id_is_refused_before_writing(baseline_b, operator):
    post_transaction(
        loan=baseline_b,
        type=TransactionType.CHARGE,
        on=date(2026, 2, 18),
        amount=D("1.00"),
        actor=operator,
        external_id="TAKEN-1",
    )
    before = row_counts()
    with pytest.raises(DuplicateExternalIdError) as exc:
        terminate_contract(loan=baseline_b, actor=operator, external_id="TAKEN-1")
    assert (exc.value.code, exc.value.status) == ("duplicate_external_id", 400)
    assert exc.value.errors[0]["field"] == "externalId"
    assert row_counts() == before
    baseline_b.refresh_from_db()
    assert baseline_b.sub_status is None


def test_an_external_id_used_as_a_reversal_id_is_a_duplicate(baseline_b, operator):
    tx = Transaction.objects.filter(loan=baseline_b, type=TransactionType.REPAYMENT).last()
    reverse_transaction(
        loan=baseline_b, transaction_id=tx.pk, actor=operator, reversal_external_id="REV-1"
    )
    with pytest.raises(DuplicateExternalIdError):
        terminate_contract(loan=baseline_b, actor=operator, external_id="REV-1")


# ------------------------------------------------------------------ undo


def test_undo_restores_the_schedule(baseline_b, operator):
    terminated = terminate_contract(loan=baseline_b, actor=operator, external_id="CT-1")
    result = undo_contract_termination(
        loan=baseline_b,
        actor=operator,
        note="Dispute resolved",
        reversal_external_id="CT-1-UNDO",
    )
    assert result.transaction.pk == terminated.transaction.pk
    tx = Transaction.objects.get(pk=terminated.transaction.pk)
    assert tx.reversed is True
    assert tx.reversed_on == date(2026, 2, 18)
    assert tx.reversal_external_id == "CT-1-UNDO"
    assert tx.reversal_note == "Dispute resolved"
    assert tx.reversed_by == operator
    assert tx.amount == D("305.54")  # kept as it was

    loan = Loan.objects.get(pk=baseline_b.pk)
    assert (loan.status, loan.sub_status) == (LoanStatus.ACTIVE, None)
    assert result.loan.sub_status is None
    assert periods_of(loan) == BASELINE_B_BEFORE
    current = Schedule.objects.get(loan=loan, is_current=True)
    assert (current.version, current.reason) == (3, ScheduleReason.UNDO_CONTRACT_TERMINATION)
    assert Schedule.objects.filter(loan=loan).count() == 3
    summary = summary_of(loan, date(2026, 2, 18))
    assert (summary.total_outstanding, summary.next_due_date) == (D("305.54"), date(2026, 2, 21))

    event = LoanEvent.objects.get(loan=loan, command="undo_contract_termination")
    assert event.changes == {
        "subStatus": ["CONTRACT_TERMINATION", None],
        "transaction.reversed": [False, True],
        "nextDueDate": ["2026-02-18", "2026-02-21"],
        "outstanding": ["305.54", "305.54"],
    }
    assert event.reason == "Dispute resolved"


def test_undo_restores_interest_dropped_by_accrued_to_date(operator):
    loan = seven_percent_first_paid(
        operator, policy="ACCRUED_TO_DATE", business_date=date(2024, 2, 15)
    )
    before = periods_of(loan)
    loan = terminate_contract(loan=loan, actor=operator).loan
    preview = preview_undo_contract_termination(loan)
    assert preview.allowed
    assert preview.after.total_outstanding == D("85.04")
    undo_contract_termination(loan=loan, actor=operator)
    assert periods_of(loan) == before
    assert summary_of(loan, date(2024, 2, 15)).total_outstanding == D("85.04")


def test_terminate_again_after_undo(baseline_b, operator):
    terminate_contract(loan=baseline_b, actor=operator)
    undo_contract_termination(loan=baseline_b, actor=operator)
    tx = terminate_contract(loan=baseline_b, actor=operator).transaction
    assert tx.amount == D("305.54")
    assert (
        Transaction.objects.filter(
            loan=baseline_b, type=TransactionType.CONTRACT_TERMINATION
        ).count()
        == 2
    )
    assert len(periods_of(baseline_b)) == 4


def undo_refused(loan, operator, code, **kwargs):
    before = row_counts()
    with pytest.raises(ConflictError) as exc:
        undo_contract_termination(loan=loan, actor=operator, **kwargs)
    assert row_counts() == before
    assert exc.value.status == 409
    assert exc.value.code == code
    return [e["code"] for e in exc.value.errors]


def test_undo_refused_when_not_terminated(baseline_b, operator):
    assert undo_refused(baseline_b, operator, "not_terminated") == ["not_terminated"]


def test_undo_refused_when_a_repayment_came_after(baseline_b, operator):
    terminate_contract(loan=baseline_b, actor=operator)
    repayment = post_transaction(
        loan=baseline_b,
        type=TransactionType.REPAYMENT,
        on=date(2026, 2, 18),
        amount=D("50.00"),
        actor=operator,
    )
    state = loan_state(baseline_b)
    assert undo_refused(baseline_b, operator, "termination_not_latest") == [
        "termination_not_latest"
    ]
    assert loan_state(baseline_b) == state
    # Once the repayment is undone, the termination is the latest again.
    reverse_transaction(loan=baseline_b, transaction_id=repayment.pk, actor=operator)
    undo_contract_termination(loan=baseline_b, actor=operator)
    assert periods_of(baseline_b) == BASELINE_B_BEFORE


def test_a_back_dated_repayment_does_not_block_the_undo(baseline_b, operator):
    # Ordered by transaction date, then entry: a repayment dated before the termination
    # comes before it.
    set_business_date(date(2026, 2, 20))
    terminate_contract(loan=baseline_b, actor=operator)
    post_transaction(
        loan=baseline_b,
        type=TransactionType.REPAYMENT,
        on=date(2026, 2, 19),
        amount=D("10.00"),
        actor=operator,
    )
    undo_contract_termination(loan=baseline_b, actor=operator)
    baseline_b.refresh_from_db()
    assert baseline_b.sub_status is None


def test_undo_refused_when_the_loan_is_not_active(baseline_b, operator):
    terminate_contract(loan=baseline_b, actor=operator)
    post_transaction(
        loan=baseline_b,
        type=TransactionType.REPAYMENT,
        on=date(2026, 2, 18),
        amount=D("305.54"),
        actor=operator,
    )
    baseline_b.refresh_from_db()
    assert baseline_b.status == LoanStatus.CLOSED
    assert undo_refused(baseline_b, operator, "loan_not_active") == [
        "loan_not_active",
        "not_terminated",
    ]


def test_undo_refused_on_a_pending_loan(operator):
    set_business_date(date(2026, 2, 18))
    loan = make_loan(actor=operator)
    assert undo_refused(loan, operator, "loan_not_active") == ["loan_not_active", "not_terminated"]


def test_undo_refused_with_a_duplicate_reversal_external_id(baseline_b, operator):
    charge = post_transaction(
        loan=baseline_b,
        type=TransactionType.CHARGE,
        on=date(2026, 2, 10),
        amount=D("1.00"),
        actor=operator,
    )
    reverse_transaction(
        loan=baseline_b, transaction_id=charge.pk, actor=operator, reversal_external_id="REV-9"
    )
    terminate_contract(loan=baseline_b, actor=operator, external_id="CT-2")
    before = row_counts()
    for taken in ("CT-2", "REV-9"):
        with pytest.raises(DuplicateExternalIdError) as exc:
            undo_contract_termination(loan=baseline_b, actor=operator, reversal_external_id=taken)
        assert exc.value.errors[0]["field"] == "reversalExternalId"
    assert row_counts() == before
    baseline_b.refresh_from_db()
    assert baseline_b.sub_status == LoanSubStatus.CONTRACT_TERMINATION
    assert Transaction.objects.get(external_id="CT-2").reversed is False


def test_the_termination_cannot_be_undone_with_command_undo(baseline_b, operator):
    tx = terminate_contract(loan=baseline_b, actor=operator).transaction
    with pytest.raises(ConflictError) as exc:
        reverse_transaction(loan=baseline_b, transaction_id=tx.pk, actor=operator)
    assert exc.value.code == "transaction_not_reversible"


# ------------------------------------------------------------------ query count


def test_query_count_does_not_grow_with_the_schedule(operator, django_assert_max_num_queries):
    set_business_date(date(2026, 2, 18))
    small = make_active_loan(actor=operator, loan_term=D("6"))
    post_transaction(
        loan=small,
        type=TransactionType.REPAYMENT,
        on=date(2026, 2, 1),
        amount=D("172.55"),
        actor=operator,
    )
    with CaptureQueriesContext(connection) as small_queries:
        terminate_contract(loan=small, actor=operator)
    assert len(periods_of(small)) == 2
    assert len(small_queries) <= 30, len(small_queries)

    # 360 monthly installments, 60 repayments posted (kept periods stay under one insert batch).
    set_business_date(date(2021, 1, 15))
    big = make_active_loan(
        actor=operator,
        loan_amount=D("250000.00"),
        loan_rate=D("6"),
        loan_term=D("360"),
        contract_date=date(2016, 1, 1),
        first_payment_date=date(2016, 2, 1),
    )
    payment = big.setup.payment
    for k in range(60):
        year, month = divmod(1 + k, 12)
        post_transaction(
            loan=big,
            type=TransactionType.REPAYMENT,
            on=date(2016 + year, month + 1, 1),
            amount=payment,
            actor=operator,
        )
    assert Schedule.objects.get(loan=big, is_current=True).periods.count() == 360
    with django_assert_max_num_queries(len(small_queries)):
        terminate_contract(loan=big, actor=operator)
    assert len(periods_of(big)) == 61


# ------------------------------------------------------------------ PostgreSQL race


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_termination_and_repayment_race_serialise(operator):
    """A termination and a repayment on one loan at the same time end in the state of one of
    the two serial orders."""

    def baseline(external_id):
        set_business_date(date(2026, 2, 18))
        loan = make_active_loan(
            actor=operator,
            external_id=external_id,
            loan_amount=D("600.00"),
            loan_rate=D("24"),
            loan_term=D("6"),
            payment_frequency="BIWEEKLY",
            contract_date=date(2025, 12, 27),
            first_payment_date=date(2026, 1, 10),
            calc_type="EQUAL_PRINCIPAL",
        )
        post_transaction(
            loan=loan,
            type=TransactionType.REPAYMENT,
            on=date(2026, 1, 10),
            amount=D("105.54"),
            actor=operator,
        )
        return loan

    def terminate(loan):
        terminate_contract(loan=loan, actor=operator)

    def repay(loan):
        post_transaction(
            loan=loan,
            type=TransactionType.REPAYMENT,
            on=date(2026, 2, 18),
            amount=D("150.00"),
            actor=operator,
        )

    serial_a = baseline("SERIAL-A")
    terminate(serial_a)
    repay(serial_a)
    serial_b = baseline("SERIAL-B")
    repay(serial_b)
    terminate(serial_b)
    expected = {"terminate-first": loan_state(serial_a), "repay-first": loan_state(serial_b)}
    assert expected["terminate-first"] != expected["repay-first"]

    outcomes = set()
    for attempt in range(3):
        loan = baseline(f"RACE-{attempt}")
        barrier = threading.Barrier(2)
        errors = []

        def run(command, loan=loan, barrier=barrier, errors=errors):
            try:
                barrier.wait()
                command(loan)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run, args=(c,)) for c in (terminate, repay)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        state = loan_state(loan)
        matches = [name for name, value in expected.items() if value == state]
        assert len(matches) == 1, state
        outcomes.add(matches[0])
    assert outcomes <= set(expected)


@pytest.mark.django_db
def test_a_termination_after_an_advancement_keeps_the_balances_before_it(operator):
    """The termination resumes from the stored periods, whose rows do not keep what was
    advanced after an installment (``advanced_later``): its settlement raised the earlier
    installments' balances by it (1924.63 for 1923.63). Such periods are replayed whole
    (found by the random histories of the ledger-state branch)."""
    from loans import services
    from loans.models import Schedule, TransactionType
    from tests.loans.test_engine_state import from_scratch, stored

    start = date(2024, 1, 1)
    set_business_date(start)
    loan = make_loan(
        actor=operator,
        schedule_engine="DYNAMIC",
        loan_amount=D("2000.00"),
        loan_rate=D("9"),
        loan_term=D("24"),
        contract_date=start,
        first_payment_date=date(2024, 2, 1),
        rounding_mode="HALF_EVEN",
    )
    services.activate_loan(loan=loan, actor=operator, as_of=start)
    for on, type_ in (
        (date(2024, 4, 5), TransactionType.REPAYMENT),
        (date(2024, 5, 14), TransactionType.ADVANCEMENT),
    ):
        set_business_date(on)
        services.post_transaction(loan=loan, type=type_, on=on, amount=D("1.00"), actor=operator)
    set_business_date(date(2024, 7, 22))
    loan.refresh_from_db()
    services.terminate_contract(loan=loan, actor=operator, note="t")
    assert stored(loan) == from_scratch(loan)
    periods = Schedule.objects.get(loan=loan, is_current=True).periods.order_by("period")
    assert periods[0].balance_after == D("1923.63")  # 2000.00 - 76.37, not the 1.00 after it
