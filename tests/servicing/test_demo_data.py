from __future__ import annotations

import pytest
from django.core.management import call_command

from loans.models import Loan
from servicing.selectors import pending_counts
from tests.servicing.helpers import SEED_000_COUNTS

pytestmark = pytest.mark.django_db


def test_demo_data_gives_demo_active_seed_000s_mix_once():
    call_command("load_demo_data", admin_password="x-demo-pass-123", stdout=None)
    call_command("load_demo_data", admin_password="x-demo-pass-123", stdout=None)
    loan = Loan.objects.get(external_id="DEMO-ACTIVE")
    counts = pending_counts([loan.pk])[loan.pk]
    assert {name: getattr(counts, name) for name in SEED_000_COUNTS} == SEED_000_COUNTS
    baseline = Loan.objects.get(external_id="BASELINE-B")
    assert pending_counts([baseline.pk])[baseline.pk].total == 8
