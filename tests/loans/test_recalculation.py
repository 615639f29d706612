"""Interest recalculation wired into the loan (DESIGN §11, issue 11): setup field, validation,
replay, termination, undo, API and admin. Figures: Fineract's e2e scenarios."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from loans import selectors, services
from loans.exceptions import InvalidRequestError
from loans.models import Schedule, Transaction, TransactionType
from tests.factories import make_loan, set_business_date

pytestmark = pytest.mark.django_db

FINERACT = {
    "loan_amount": D("100.00"),
    "loan_rate": D("7"),
    "loan_term": D("6"),
    "contract_date": date(2024, 1, 1),
    "first_payment_date": date(2024, 2, 1),
    "rounding_mode": "HALF_EVEN",
    "interest_recalculation": True,
}


def recalculating_loan(operator, **kw):
    set_business_date(date(2024, 1, 1))
    loan = make_loan(actor=operator, **{**FINERACT, **kw})
    services.activate_loan(loan=loan, actor=operator, as_of=date(2024, 1, 1))
    loan.refresh_from_db()
    return loan


def repay(loan, operator, on, amount):
    set_business_date(max(on, selectors.get_business_date()))
    return services.post_transaction(
        loan=loan, type=TransactionType.REPAYMENT, on=on, amount=D(amount), actor=operator
    )


def rows(loan):
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    return [
        (str(p.principal_due), str(p.interest_due), str(p.total_due))
        for p in schedule.periods.filter(frozen=False).order_by("period")
    ]


def outstanding(loan):
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    return sum((p.total_outstanding for p in schedule.periods.filter(frozen=False)), D(0))


def portions(tx):
    tx.refresh_from_db()
    return (tx.principal_portion, tx.interest_portion, tx.fees_portion)


# ------------------------------------------------------------------ the setup field


def test_false_is_the_default_and_keeps_interest_per_period(operator):
    loan = make_loan(actor=operator)
    assert loan.setup.interest_recalculation is False


def test_recalculation_on_a_standard_loan_is_refused(operator):
    with pytest.raises(InvalidRequestError) as caught:
        make_loan(actor=operator, schedule_engine="STANDARD", interest_recalculation=True)
    assert caught.value.code == "recalculation_requires_dynamic"
    assert caught.value.errors[0]["field"] == "interestRecalculation"


def test_switching_it_on_for_a_pending_standard_loan_is_refused_and_changes_nothing(operator):
    loan = make_loan(actor=operator, schedule_engine="STANDARD")
    with pytest.raises(InvalidRequestError) as caught:
        services.update_setup(
            setup=loan.setup, changes={"interest_recalculation": True}, actor=operator
        )
    assert caught.value.code == "recalculation_requires_dynamic"
    loan.setup.refresh_from_db()
    assert loan.setup.interest_recalculation is False


def test_equal_principal_cannot_recalculate(operator):
    with pytest.raises(InvalidRequestError) as caught:
        make_loan(actor=operator, calc_type="EQUAL_PRINCIPAL", interest_recalculation=True)
    assert caught.value.errors[0]["code"] == "recalculation_requires_equal_installments"


# ------------------------------------------------------------------ replay


def test_activation_gives_the_scheduled_installments(operator):
    loan = recalculating_loan(operator)
    assert rows(loan)[0] == ("16.43", "0.58", "17.01")
    assert rows(loan)[-1] == ("16.90", "0.10", "17.00")


def test_late_repayment_c3249(operator):
    loan = recalculating_loan(operator)
    tx = repay(loan, operator, date(2024, 2, 15), "17.01")
    assert portions(tx) == (D("16.43"), D("0.58"), D("0.00"))
    assert rows(loan)[1] == ("16.48", "0.53", "17.01")
    assert rows(loan)[-1] == ("16.94", "0.10", "17.04")
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    assert sum((p.interest_due for p in schedule.periods.all()), D(0)) == D("2.09")


def test_early_repayment_c3253(operator):
    loan = recalculating_loan(operator)
    tx = repay(loan, operator, date(2024, 1, 15), "15.00")
    assert portions(tx) == (D("14.74"), D("0.26"), D("0.00"))
    assert rows(loan)[0] == ("16.47", "0.54", "17.01")
    assert rows(loan)[-1] == ("16.86", "0.10", "16.96")


def test_undo_regenerates_with_recalculation(operator):
    loan = recalculating_loan(operator)
    early = repay(loan, operator, date(2024, 1, 15), "15.00")
    late = repay(loan, operator, date(2024, 2, 15), "2.01")
    services.reverse_transaction(loan=loan, transaction_id=early.pk, actor=operator)
    # Only the 2.01 of 15 Feb is left: it pays #1's 0.58 interest and 1.43 principal late.
    assert portions(late) == (D("1.43"), D("0.58"), D("0.00"))
    assert rows(loan)[0] == ("16.43", "0.58", "17.01")


def test_a_non_recalculating_loan_is_unchanged_by_a_late_payment(operator):
    loan = recalculating_loan(operator, interest_recalculation=False)
    tx = repay(loan, operator, date(2024, 2, 15), "17.01")
    assert portions(tx) == (D("16.43"), D("0.58"), D("0.00"))
    assert rows(loan)[1] == ("16.52", "0.49", "17.01")


# ------------------------------------------------------------------ termination


def test_termination_accrued_to_date_with_an_unpaid_installment_c3682(operator):
    loan = recalculating_loan(operator, termination_interest="ACCRUED_TO_DATE")
    repay(loan, operator, date(2024, 2, 1), "17.01")
    set_business_date(date(2024, 3, 31))
    result = services.terminate_contract(loan=loan, actor=operator, as_of=date(2024, 3, 31))
    tx = result.transaction
    assert (tx.amount, tx.principal_portion, tx.interest_portion) == (
        D("84.53"),
        D("83.57"),
        D("0.96"),
    )
    assert outstanding(loan) == D("84.53")


def test_undoing_the_repayment_under_a_termination_c3684(operator):
    loan = recalculating_loan(operator, termination_interest="ACCRUED_TO_DATE")
    first = repay(loan, operator, date(2024, 2, 1), "17.01")
    set_business_date(date(2024, 2, 29))
    services.terminate_contract(loan=loan, actor=operator, as_of=date(2024, 2, 29))
    services.reverse_transaction(loan=loan, transaction_id=first.pk, actor=operator)
    assert outstanding(loan) == D("101.14")  # 100.00 + 0.58 + 0.56
    assert rows(loan) == [("16.43", "0.58", "17.01"), ("83.57", "0.56", "84.13")]


def test_undo_termination_restores_the_recalculated_schedule(operator):
    loan = recalculating_loan(operator, termination_interest="ACCRUED_TO_DATE")
    repay(loan, operator, date(2024, 2, 1), "17.01")
    set_business_date(date(2024, 3, 31))
    services.terminate_contract(loan=loan, actor=operator, as_of=date(2024, 3, 31))
    services.undo_contract_termination(loan=loan, actor=operator, as_of=date(2024, 3, 31))
    assert len(rows(loan)) == 6
    # #2 unpaid since 1 Mar: its principal accrued for #3 up to the business date (31 Mar)
    assert rows(loan)[2] == ("16.53", "0.48", "17.01")
    assert not Transaction.objects.filter(
        loan=loan, type=TransactionType.CONTRACT_TERMINATION, reversed=False
    ).exists()


# ------------------------------------------------------------------ demo data, API, admin


def test_demo_data_has_a_recalculating_loan_with_a_late_and_an_early_payment():
    from django.core.management import call_command

    from loans.models import Loan

    call_command("load_demo_data", admin_password="x-demo-pass-123", stdout=None)
    loan = Loan.objects.get(external_id="DEMO-RECALC")
    assert loan.setup.interest_recalculation is True
    late, early = loan.transactions.filter(type=TransactionType.REPAYMENT).order_by("date")[:2]
    # 11 days late: #1 keeps its 12.00; #2 paid 6 days early: 9.19 (1,200.00 for 11 days,
    # 1,105.38 for 13), the rest of its period accrues to #3 (12.10)
    assert (late.date, late.principal_portion, late.interest_portion) == (
        date(2025, 9, 12),
        D("94.62"),
        D("12.00"),
    )
    assert (early.date, early.principal_portion, early.interest_portion) == (
        date(2025, 9, 25),
        D("97.43"),
        D("9.19"),
    )
    assert rows(loan)[2] == ("94.52", "12.10", "106.62")


FINERACT_API_SETUP = {
    "loanAmount": "100.00",
    "loanRate": "7",
    "loanTerm": 6,
    "paymentFrequency": "MONTHLY",
    "contractDate": "2024-01-01",
    "firstPaymentDate": "2024-02-01",
    "roundingMode": "HALF_EVEN",
    "interestRecalculation": True,
}
BORROWER = {"firstName": "Ada", "lastName": "Api", "email": "ada@example.com"}


def test_api_creates_a_recalculating_loan_and_shows_the_late_payment_c3249(api):
    set_business_date(date(2024, 1, 1))
    created = api.post(
        "/api/v1/loans",
        {"externalId": "RC-1", "borrower": BORROWER, "setup": FINERACT_API_SETUP},
        format="json",
    )
    assert created.status_code == 201, created.json()
    loan_id = created.json()["id"]
    setup = api.get(f"/api/v1/loans/{loan_id}/setup").json()
    assert setup["interestRecalculation"] is True
    api.post(f"/api/v1/loans/{loan_id}/activate")
    set_business_date(date(2024, 2, 15))
    repaid = api.post(
        f"/api/v1/loans/{loan_id}/transactions?command=repayment",
        {"transactionDate": "2024-02-15", "transactionAmount": "17.01"},
        format="json",
    )
    assert repaid.status_code in (200, 201), repaid.json()
    assert (repaid.json()["principalPortion"], repaid.json()["interestPortion"]) == (
        "16.43",
        "0.58",
    )
    periods = api.get(f"/api/v1/loans/{loan_id}?associations=repaymentSchedule").json()[
        "repaymentSchedule"
    ]["periods"]
    assert (periods[1]["principalDue"], periods[1]["interestDue"]) == ("16.48", "0.53")
    assert periods[-1]["totalDue"] == "17.04"


def test_api_refuses_recalculation_on_standard_with_a_400(api):
    response = api.post(
        "/api/v1/loans",
        {"borrower": BORROWER, "scheduleEngine": "STANDARD", "setup": FINERACT_API_SETUP},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "recalculation_requires_dynamic"
    assert response.json()["errors"][0]["field"] == "interestRecalculation"


def test_api_patch_switches_it_on_for_a_pending_loan(api, operator):
    loan = make_loan(actor=operator)
    response = api.patch(
        f"/api/v1/loan-setups/{loan.setup_id}", {"interestRecalculation": True}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["interestRecalculation"] is True


def test_schema_documents_the_field_with_an_example(api):
    schema = api.get("/api/v1/schema?format=json").json()
    text = str(schema)
    schemas = schema["components"]["schemas"]
    assert "interestRecalculation" in schemas["SetupInputRequest"]["properties"]
    assert "interestRecalculation" in schemas["Setup"]["properties"]
    assert "Interest recalculation (daily accrual, DYNAMIC only)" in text


def test_admin_loan_page_marks_a_recalculating_loan(client, operator):
    loan = recalculating_loan(operator)
    client.force_login(operator)
    html = client.get(f"/admin/loans/loan/{loan.pk}/change/").content.decode()
    assert 'id="interest-recalculation"' in html
    assert "daily" in html  # the terms table's column
    fixed = recalculating_loan(operator, interest_recalculation=False)
    other = client.get(f"/admin/loans/loan/{fixed.pk}/change/").content.decode()
    assert 'id="interest-recalculation"' not in other


# ------------------------------------------------------------------ modification


def test_modification_carries_the_payoff_on_its_date_and_may_switch_recalculation_off(operator):
    from modifications import services as modifications

    loan = recalculating_loan(operator)
    set_business_date(date(2024, 2, 15))
    modification = modifications.create_modification(
        loan=loan,
        modification_date=date(2024, 2, 15),
        persistent_transactions={},
        actor=operator,
    )
    draft = modification.setup
    # C3245's payoff: 100.00 + 0.58 (#1, overdue) + 0.28 (#2 to 15 Feb, overdue principal in)
    assert draft.loan_amount == D("100.86")
    assert draft.interest_recalculation is True
    services.update_setup(setup=draft, changes={"interest_recalculation": False}, actor=operator)
    modifications.activate_modification(loan=loan, actor=operator, as_of=date(2024, 2, 15))
    loan.refresh_from_db()
    assert loan.setup.interest_recalculation is False
    assert loan.setup.loan_amount == D("100.86")


# ------------------------------------------------------------------ payoff and system reversal


def test_payoff_quote_uses_the_daily_accrual_c3245(operator):
    loan = recalculating_loan(operator)
    set_business_date(date(2024, 2, 15))
    quote = selectors.payoff(loan, on=date(2024, 2, 15))
    assert (quote.principal, quote.interest, quote.total) == (D("100.00"), D("0.86"), D("100.86"))
    assert quote.per_diem == D("0.02")
    quotes = selectors.payoff_quotes(loan, on=date(2024, 2, 15), days=3)
    assert [q.total for q in quotes.quotes][0] == D("100.86")
    assert quotes.per_diem == quote.per_diem


def test_backdated_repayment_settling_everything_reverses_the_termination_c3724(operator):
    from loans.models import LoanStatus

    loan = recalculating_loan(operator, termination_interest="ACCRUED_TO_DATE")
    repay(loan, operator, date(2024, 2, 1), "17.01")
    set_business_date(date(2024, 3, 31))
    result = services.terminate_contract(loan=loan, actor=operator, as_of=date(2024, 3, 31))
    assert result.transaction.amount == D("84.53")
    backdated = services.post_transaction(
        loan=loan,
        type=TransactionType.REPAYMENT,
        on=date(2024, 3, 1),
        amount=D("84.06"),
        actor=operator,
        as_of=date(2024, 3, 31),
    )
    loan.refresh_from_db()
    result.transaction.refresh_from_db()
    assert result.transaction.reversed is True
    assert loan.sub_status is None and loan.status == LoanStatus.CLOSED
    assert portions(backdated)[:2] == (D("83.57"), D("0.49"))
    assert outstanding(loan) == 0
    assert rows(loan)[2:] == [("17.01", "0.00", "17.01")] * 3 + [("16.02", "0.00", "16.02")]
