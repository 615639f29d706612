"""``message_for``: the one rendering of an error in the admin and the wizard."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError

from loans.admin_messages import field_words, message_for
from loans.api_common import django_validation_errors
from loans.exceptions import (
    ConflictError,
    InvalidRequestError,
    LoanStateError,
    NotFoundError,
    field_error,
)


def test_invalid_input_is_an_error_naming_the_field_in_words():
    exc = InvalidRequestError(
        "The loan terms are invalid.",
        code="invalid_terms",
        errors=[
            field_error("firstPaymentDate", "Must be after the contract date.", "before"),
            field_error("borrower.firstName", "This field is required.", "required"),
        ],
    )
    assert message_for(exc) == (
        messages.ERROR,
        "The loan terms are invalid. First payment date: Must be after the contract date. "
        "Borrower first name: This field is required.",
    )


def test_a_conflict_is_a_warning_without_repeating_its_refusals():
    exc = ConflictError(
        "The contract cannot be terminated: The loan is charged off.",
        code="contract_termination_not_allowed",
        errors=[{"field": None, "detail": "The loan is charged off.", "code": "loan_charged_off"}],
    )
    assert message_for(exc) == (
        messages.WARNING,
        "The contract cannot be terminated: The loan is charged off.",
    )
    assert message_for(LoanStateError("The loan is closed (paid off).", code="loan_closed")) == (
        messages.WARNING,
        "The loan is closed (paid off).",
    )


def test_never_a_raw_code_nor_none():
    exc = InvalidRequestError(
        "Bad.", errors=[{"field": None, "detail": "Out of range.", "code": "out_of_range"}]
    )
    level, text = message_for(exc)
    assert (level, text) == (messages.ERROR, "Bad. Out of range.")
    assert "None" not in text and "out_of_range" not in text
    assert message_for(NotFoundError("Loan 9 was not found.", code="loan_not_found")) == (
        messages.ERROR,
        "Loan 9 was not found.",
    )


def test_django_validation_error():
    exc = ValidationError({"loan_amount": ["Too big."], "__all__": ["Inconsistent."]})
    assert message_for(exc) == (messages.ERROR, "Loan amount: Too big. Inconsistent.")
    assert django_validation_errors(exc) == [
        {"field": "loanAmount", "detail": "Too big.", "code": "invalid"},
        {"field": None, "detail": "Inconsistent.", "code": "invalid"},
    ]


def test_field_words():
    assert field_words("persistentTransactions.payments") == "Persistent transactions payments"
    assert field_words("loan_term") == "Loan term"
    assert field_words("items[2].amount") == "Items amount"
