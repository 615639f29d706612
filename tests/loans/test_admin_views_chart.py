"""The loan page's balance chart: what the borrower paid in, cumulatively."""

from datetime import date
from decimal import Decimal as D
from types import SimpleNamespace

from loans.admin_views import paid_points
from loans.models import TransactionType as T


def tx(type_, on, amount, reversed_=False):
    return SimpleNamespace(type=type_, date=on, amount=D(amount), reversed=reversed_)


def test_payoffs_count_as_paid_refunds_give_back_and_reversals_count_for_nothing():
    history = [
        tx(T.DISBURSEMENT, date(2024, 1, 1), "100.00"),
        tx(T.REPAYMENT, date(2024, 2, 1), "17.01"),
        tx(T.CHARGE, date(2024, 2, 5), "5.00"),
        tx(T.REPAYMENT, date(2024, 2, 10), "9.99", reversed_=True),
        tx(T.CREDIT, date(2024, 2, 14), "1.00"),
        tx(T.PAYOFF, date(2024, 3, 1), "88.00"),
        tx(T.CREDIT_BALANCE_REFUND, date(2024, 3, 2), "2.50"),
    ]
    assert paid_points(history) == [
        (date(2024, 2, 1), D("17.01")),
        (date(2024, 2, 14), D("18.01")),
        (date(2024, 3, 1), D("106.01")),
        (date(2024, 3, 2), D("103.51")),
    ]
