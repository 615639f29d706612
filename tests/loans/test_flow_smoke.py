from datetime import date
from decimal import Decimal

import pytest

from loans.models import LoanStatus

pytestmark = pytest.mark.django_db


def test_baseline_b_schedule_after_three_payments(baseline_b, api):
    response = api.get(f"/api/v1/loans/{baseline_b.pk}?associations=all")
    assert response.status_code == 200, response.content
    body = response.json()
    periods = body["repaymentSchedule"]["periods"]
    assert [p["dueDate"] for p in periods] == [
        "2026-01-10",
        "2026-01-24",
        "2026-02-07",
        "2026-02-21",
        "2026-03-07",
        "2026-03-21",
    ]
    assert [p["interestDue"] for p in periods] == ["5.54", "4.62", "3.69", "2.77", "1.85", "0.92"]
    assert [p["complete"] for p in periods] == [True, True, True, False, False, False]
    assert body["summary"]["principalOutstanding"] == "300.00"
    assert body["summary"]["interestOutstanding"] == "5.54"
    assert body["summary"]["nextDueDate"] == "2026-02-21"
    assert body["summary"]["daysPastDue"] == 0
    assert body["status"] == LoanStatus.ACTIVE
    assert [t["type"] for t in body["transactions"]] == ["DISBURSEMENT"] + ["REPAYMENT"] * 3
    assert body["transactions"][1]["interestPortion"] == "5.54"
    assert body["transactions"][1]["principalPortion"] == "100.00"
    assert Decimal(body["setup"]["loanAmount"]) == Decimal("600.00")
    assert date.fromisoformat(body["setup"]["contractDate"]) == date(2025, 12, 27)
