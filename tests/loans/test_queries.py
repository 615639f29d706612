"""Query counts do not grow with the rows a read or a command touches."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from loans import services, versions
from loans.models import Transaction, TransactionType
from tests.factories import make_active_loan, set_business_date

pytestmark = pytest.mark.django_db


def big_loan(actor, *, periods: int, repayments: int):
    """A monthly loan with ``periods`` installments and ``repayments`` small repayments."""
    set_business_date(date(2026, 1, 1))
    loan = make_active_loan(
        actor=actor,
        loan_amount=Decimal("300000.00"),
        loan_rate=Decimal("6"),
        loan_term=Decimal(periods),
        contract_date=date(2000, 1, 1),
        first_payment_date=date(2000, 2, 1),
        as_of=date(2026, 1, 1),
    )
    Transaction.objects.bulk_create(
        Transaction(
            loan=loan,
            type=TransactionType.REPAYMENT,
            date=date(2000, 2, 1) + timedelta(days=3 * i),
            amount=Decimal("10.00"),
        )
        for i in range(repayments)
    )
    versions.rebuild_schedule(loan)
    return loan


@pytest.mark.parametrize(("periods", "repayments"), [(6, 1), (360, 1000)])
def test_loan_detail_queries_constant(
    api, operator, django_assert_max_num_queries, periods, repayments
):
    loan = big_loan(operator, periods=periods, repayments=repayments)
    # 13: the summary's creditBalance and payoffToday (DESIGN §9) add the credit aggregate and
    # the payoff's derivation, the same for 6 periods and 1 repayment as for 360 and 1,000.
    # (The credit aggregate is still read three times: one read would make it 11.)
    with django_assert_max_num_queries(13):
        response = api.get(f"/api/v1/loans/{loan.pk}?associations=all")
    assert response.status_code == 200
    body = response.json()
    assert len(body["repaymentSchedule"]["periods"]) == periods
    assert len(body["transactions"]) == repayments + 1


@pytest.mark.parametrize(("periods", "repayments"), [(6, 1), (360, 1000)])
def test_post_repayment_queries_constant(
    operator, django_assert_max_num_queries, periods, repayments
):
    loan = big_loan(operator, periods=periods, repayments=repayments)
    # 19: the rebuild reads the credit balance once (OVERPAID status, DESIGN §9);
    # + 1: the autopay re-sync receiver's "any active autopay?" (loans.hooks).
    with django_assert_max_num_queries(20):
        services.post_transaction(
            loan=loan,
            type=TransactionType.REPAYMENT,
            on=date(2025, 12, 1),
            amount=Decimal("5.00"),
            actor=operator,
        )


def test_changelist_queries_constant(client, operator, django_assert_max_num_queries):
    set_business_date(date(2026, 2, 18))
    for _ in range(3):
        make_active_loan(actor=operator)
    client.force_login(operator)
    with django_assert_max_num_queries(12) as small:
        assert client.get("/admin/loans/loan/").status_code == 200
    for _ in range(20):
        make_active_loan(actor=operator)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get("/admin/loans/loan/")
    assert response.status_code == 200
