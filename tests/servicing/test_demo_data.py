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


def test_demo_reminders_go_out_whatever_the_hour_make_run_starts():
    """Found by the acceptance audit: every demo borrower was in New York, so a `make run`
    started between 02:00 and 13:00 UTC sent no due reminder (all deferred to 08:00 there)."""
    from datetime import UTC, datetime, timedelta

    from servicing.dispatcher import next_window_start, zone_of
    from servicing.models import ScheduledCommunication

    call_command("load_demo_data", admin_password="x-demo-pass-123", stdout=None)
    borrowers = {
        item.loan.borrower
        for item in ScheduledCommunication.objects.filter(status="PENDING").select_related(
            "loan__borrower"
        )
    }
    zones = [zone_of(borrower) for borrower in borrowers]
    for day in (datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 7, 15, tzinfo=UTC)):
        for minutes in range(0, 24 * 60, 30):
            now = day + timedelta(minutes=minutes)
            assert any(next_window_start(now, zone) is None for zone in zones), now


def test_demo_data_ends_with_the_close_of_business_of_its_date_once():
    """Found by the audit: every demo loan showed bucket CURRENT until the first nightly run
    (DEMO-PAST-DUE is 65 days past due). The load closes its date through the service; a second
    load closes nothing and starts no job."""
    from servicing.models import Job, LoanDailySnapshot

    call_command("load_demo_data", admin_password="x-demo-pass-123", stdout=None)
    call_command("load_demo_data", admin_password="x-demo-pass-123", stdout=None)
    late = Loan.objects.get(external_id="DEMO-PAST-DUE")
    assert late.delinquency_bucket == "DPD_61_90"
    assert str(late.last_closed_business_date) == "2026-02-18"
    snapshot = LoanDailySnapshot.objects.get(loan=late)
    assert (snapshot.delinquency_bucket, snapshot.days_past_due) == ("DPD_61_90", 65)
    # 7 open loans (9 less DEMO-PENDING and DEMO-CLOSED), one snapshot each, one job
    assert LoanDailySnapshot.objects.count() == 7
    assert list(Job.objects.values_list("status", "done", "failed")) == [("DONE", 7, 0)]
    assert not Loan.objects.filter(status="ACTIVE", last_closed_business_date__isnull=True)
