"""Loan modification commands (seed 004). See DESIGN §4."""

from __future__ import annotations

from datetime import date

from loans import services as loan_services
from loans.models import Loan


def activate_loan(*, loan: Loan, actor, as_of: date | None = None):
    """Activate a PENDING loan (loan core) or a modification in progress."""
    return loan_services.activate_loan(loan=loan, actor=actor, as_of=as_of)
