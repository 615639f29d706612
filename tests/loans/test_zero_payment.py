"""Issue 16, finding 1: terms whose installment rounds to 0.00 are refused with their own code
(not a 500, not "duplicate_external_id ... None"), and every constraint a loan creation can
still meet is reported as itself."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest
from django.db.models import QuerySet

from loans import services, terms
from loans.models import Borrower, Loan, LoanEvent, LoanSetup
from tests.factories import make_loan

pytestmark = pytest.mark.django_db

BORROWER = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}
ZERO_TERMS = [
    {"loanAmount": "0.05", "loanTerm": "360", "calcType": "EQUAL_PRINCIPAL"},
    {"loanAmount": "0.05", "loanTerm": "360", "calcType": "EQUAL_INSTALLMENTS", "loanRate": "0"},
    {"loanAmount": "1.00", "loanTerm": "360", "loanRate": "0"},
]


def rows():
    return (Loan.objects.count(), LoanSetup.objects.count(), LoanEvent.objects.count())


def setup_values(setup):
    return LoanSetup.objects.filter(pk=setup.pk).values().get()


@pytest.mark.parametrize("terms", ZERO_TERMS)
def test_patching_a_setup_to_a_zero_installment_is_400_and_writes_nothing(api, terms):
    loan = make_loan(external_id="ZERO-1")
    before, count = setup_values(loan.setup), rows()

    response = api.patch(f"/api/v1/loan-setups/{loan.setup_id}", terms, format="json")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "payment_rounds_to_zero"
    assert body["detail"] == (
        "The loan terms are invalid. An installment rounds to 0.00: raise the amount or "
        "shorten the term."
    )
    assert [e["field"] for e in body["errors"]] == ["loanAmount", "loanTerm"]
    assert setup_values(loan.setup) == before
    assert rows() == count


@pytest.mark.parametrize("terms", ZERO_TERMS)
def test_creating_a_loan_with_a_zero_installment_is_400(api, terms):
    setup = {
        "loanRate": "12",
        "contractDate": "2026-01-01",
        "firstPaymentDate": "2026-02-01",
        **terms,
    }
    count = rows()
    response = api.post("/api/v1/loans", {"borrower": BORROWER, "setup": setup}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "payment_rounds_to_zero"
    assert rows() == count
    assert not Borrower.objects.filter(email="ada@example.com").exists()


def test_the_smallest_amount_that_amortizes_is_accepted(api):
    loan = make_loan(external_id="ZERO-2")
    response = api.patch(
        f"/api/v1/loan-setups/{loan.setup_id}",
        {"loanAmount": "3.60", "loanTerm": "360", "calcType": "EQUAL_PRINCIPAL", "loanRate": "0"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["payment"] == "0.01"


def test_a_concurrent_duplicate_external_id_names_the_id(operator):
    make_loan(external_id="DUP-1")
    with (
        mock.patch.object(QuerySet, "exists", return_value=False),  # the pre-check lost a race
        pytest.raises(services.DuplicateExternalIdError) as caught,
    ):
        services.create_loan(
            actor=operator,
            setup={
                "loan_amount": Decimal("100.00"),
                "loan_rate": Decimal("12"),
                "loan_term": Decimal("12"),
                "contract_date": _date(),
                "first_payment_date": _date(month=2),
            },
            borrower_data={"first_name": "A", "last_name": "B", "email": "a@b.example"},
            external_id="DUP-1",
        )
    assert caught.value.message == "A loan with external id 'DUP-1' already exists."


def test_a_check_constraint_at_creation_is_reported_as_itself(api):
    """Were the validation to let a zero payment through, the constraint is not reported as a
    duplicate external id (the red team's "A loan with external id None already exists")."""
    real = terms.validate_terms

    def let_zero_through(values):
        return {**real(values), "payment": Decimal("0.00")}

    setup = {
        "loanAmount": "100.00",
        "loanRate": "12",
        "loanTerm": "12",
        "contractDate": "2026-01-01",
        "firstPaymentDate": "2026-02-01",
    }
    count = rows()
    with mock.patch("loans.terms.validate_terms", let_zero_through):
        response = api.post("/api/v1/loans", {"borrower": BORROWER, "setup": setup}, format="json")
    assert response.status_code == 400, response.content
    assert response.json() == {
        "code": "invalid_terms",
        "detail": "The loan terms are invalid.",
        "errors": [
            {"field": "payment", "detail": "Must be positive.", "code": "payment_rounds_to_zero"}
        ],
    }
    assert rows() == count


def _date(month=1):
    from datetime import date

    return date(2026, month, 1)
