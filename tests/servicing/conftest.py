"""Fixtures of the servicing tests: an active loan, seed 000's mix with noise."""

from __future__ import annotations

import pytest

from tests.factories import make_active_loan, set_business_date
from tests.servicing.helpers import AS_OF, add_noise, add_seed_000_mix


@pytest.fixture
def as_of(db):
    return set_business_date(AS_OF)


@pytest.fixture
def loan(as_of, operator):
    return make_active_loan(actor=operator)


@pytest.fixture
def other_loan(as_of, operator):
    return make_active_loan(actor=operator)


@pytest.fixture
def seeded_loan(loan, other_loan, operator):
    """Seed 000's mix plus noise on ``loan``; a pending mix on ``other_loan`` too."""
    add_seed_000_mix(loan, operator)
    add_noise(loan)
    add_seed_000_mix(other_loan, operator)
    loan.refresh_from_db()
    return loan
