from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from loans.models import Loan

pytestmark = pytest.mark.django_db


def test_demo_data_has_a_modified_loan():
    call_command("load_demo_data", "--admin-password", "demo-pass-123", stdout=None)
    call_command("load_demo_data", "--admin-password", "demo-pass-123", stdout=None)
    loan = Loan.objects.get(external_id="DEMO-MODIFIED")
    assert (loan.mod_total, loan.modification_in_progress) == (1, False)
    assert (loan.setup.loan_amount, loan.setup.loan_term) == (
        Decimal("9353.58"),
        Decimal("50.7553"),
    )
    assert loan.transactions.filter(reversed_by_modification_id__isnull=False).count() == 1
