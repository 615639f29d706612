"""The operator's admin pages of the loan core (issue 15): create a loan with a schedule
preview and activate it, post a charge / credit / advancement, reverse a transaction from its
row with a required note, the readable audit trail, CSV export of the filtered changelist,
money and date formats."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from loans import formatting
from loans.models import Borrower, Loan, LoanEvent, LoanStatus, Transaction, TransactionType
from loans.services import post_transaction
from tests.factories import make_active_loan, make_loan, set_business_date

pytestmark = pytest.mark.django_db

CREATE = "/admin/loans/loan/create/"
TERMS = {
    "loan_amount": "10000.00",
    "loan_rate": "15",
    "loan_term": "60",
    "payment_frequency": "MONTHLY",
    "contract_date": "2025-01-01",
    "first_payment_date": "2025-02-01",
    "payment": "",
    "calc_type": "EQUAL_INSTALLMENTS",
    "days_in_year": "FREQUENCY",
    "rounding_mode": "HALF_UP",
    "termination_interest": "ALL_OUTSTANDING",
}
NEW_BORROWER = {
    "borrower_id": "",
    "first_name": "Grace",
    "last_name": "Hopper",
    "email": "grace@example.com",
    "phone": "+15550123",
    "timezone": "America/Chicago",
    "external_id": "NEW-1",
    "schedule_engine": "DYNAMIC",
}


@pytest.fixture
def loan(operator):
    set_business_date(date(2025, 3, 15))
    return make_active_loan(
        actor=operator,
        external_id="ADM-1",
        loan_amount=Decimal("10000.00"),
        loan_rate=Decimal("15"),
        loan_term=Decimal("60"),
        contract_date=date(2025, 1, 1),
        first_payment_date=date(2025, 2, 1),
    )


# ------------------------------------------------------------------ formats


def test_money_has_separators_and_no_negative_zero():
    assert formatting.money(Decimal("1234567.5")) == "1,234,567.50"
    assert formatting.money(Decimal("-0.00")) == "0.00"
    assert formatting.money(Decimal("-0.001")) == "0.00"
    assert formatting.money(None) == "-"
    assert formatting.plural(1, "payment") == "1 payment"
    assert formatting.plural(2, "payment") == "2 payments"


def test_time_in_the_borrowers_zone_and_utc():
    from datetime import UTC, datetime

    moment = datetime(2026, 2, 18, 14, 30, tzinfo=UTC)
    assert formatting.local_and_utc(moment, "America/New_York") == (
        "2026-02-18 09:30 America/New_York (14:30 UTC)"
    )
    late = datetime(2026, 2, 19, 2, 0, tzinfo=UTC)
    assert formatting.local_and_utc(late, "America/Los_Angeles") == (
        "2026-02-18 18:00 America/Los_Angeles (2026-02-19 02:00 UTC)"
    )


# ------------------------------------------------------------------ create and activate


def test_create_page_previews_the_schedule(client, operator):
    set_business_date(date(2025, 3, 15))
    client.force_login(operator)
    page = client.get(CREATE)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="create-loan-form"' in html and "live_preview.js" in html
    assert "<script>" not in html  # no inline script (CSP)
    preview = client.get(f"{CREATE}preview/", TERMS).content.decode()
    # 10,000 at 15 %, 60 monthly: payment 237.90, final 237.80, total 14,273.90.
    assert 'id="preview-payment">237.90<' in preview
    assert "60 installments of" in preview
    assert "total 14,273.90" in preview and "maturity 2030-01-01" in preview
    assert ">237.80<" in preview
    assert Loan.objects.count() == 0


def test_preview_errors_are_in_words_under_the_field_label(client, operator):
    client.force_login(operator)
    bad = {**TERMS, "first_payment_date": "2024-12-01"}
    preview = client.get(f"{CREATE}preview/", bad).content.decode()
    assert "First payment date: Must be after the contract date." in preview
    assert "firstPaymentDate" not in preview
    fractional = client.get(f"{CREATE}preview/", {**TERMS, "loan_term": "12.5"}).content.decode()
    assert "Term (installments): A fractional term needs a given payment" in fractional


def test_create_then_activate(client, operator):
    set_business_date(date(2025, 3, 15))
    client.force_login(operator)
    response = client.post(CREATE, {**TERMS, **NEW_BORROWER})
    loan = Loan.objects.get(external_id="NEW-1")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/loans/loan/{loan.pk}/change/"
    assert loan.status == LoanStatus.PENDING
    assert (loan.borrower.first_name, loan.borrower.timezone) == ("Grace", "America/Chicago")
    assert loan.setup.payment == Decimal("237.90")
    page = client.get(response["Location"]).content.decode()
    assert "created for Grace Hopper: pending, payment 237.90" in page
    assert "Activate loan" in page
    client.post(f"/admin/loans/loan/{loan.pk}/activate/", {"confirm": "1"})
    loan.refresh_from_db()
    assert loan.status == LoanStatus.ACTIVE
    disbursement = Transaction.objects.get(loan=loan, type=TransactionType.DISBURSEMENT)
    assert (disbursement.date, disbursement.amount) == (date(2025, 1, 1), Decimal("10000.00"))


def test_create_for_an_existing_borrower(client, operator):
    existing = make_loan(actor=operator).borrower
    client.force_login(operator)
    data = {**TERMS, **NEW_BORROWER, "borrower_id": str(existing.pk), "first_name": ""}
    data["last_name"] = ""
    assert client.post(CREATE, data).status_code == 302
    assert Loan.objects.get(external_id="NEW-1").borrower == existing
    assert Borrower.objects.count() == 1


def test_create_errors_under_the_right_field_and_nothing_written(client, operator):
    client.force_login(operator)
    response = client.post(
        CREATE, {**TERMS, **NEW_BORROWER, "first_name": "", "first_payment_date": "2024-12-01"}
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["first_name"] == ["Required for a new borrower (or give a borrower id)."]
    assert Loan.objects.count() == 0
    response = client.post(CREATE, {**TERMS, **NEW_BORROWER, "first_payment_date": "2024-12-01"})
    assert response.context["form"].errors["first_payment_date"] == [
        "Must be after the contract date."
    ]
    assert Loan.objects.count() == 0 and Borrower.objects.count() == 0


def test_create_needs_the_permission(client, viewer):
    client.force_login(viewer)
    assert client.get(CREATE).status_code == 403
    assert client.post(CREATE, {**TERMS, **NEW_BORROWER}).status_code == 403
    assert client.get(f"{CREATE}preview/", TERMS).status_code == 403
    assert Loan.objects.count() == 0


# ------------------------------------------------------------------ transactions


@pytest.mark.parametrize(
    ("suffix", "tx_type", "amount", "message"),
    [
        (
            "post-charge",
            TransactionType.CHARGE,
            "25.00",
            "Charge of 25.00 on 2025-03-15 posted; total outstanding now 14,298.90.",
        ),
        (
            # Oldest installment first: 2025-02-01's interest 125.00 is more than the credit.
            "post-credit",
            TransactionType.CREDIT,
            "100.00",
            "Credit of 100.00 on 2025-03-15 posted: principal 0.00, interest 100.00, fees 0.00.",
        ),
        (
            "post-advancement",
            TransactionType.ADVANCEMENT,
            "1000.00",
            "Advancement of 1,000.00 on 2025-03-15 posted; total outstanding now ",
        ),
    ],
)
def test_transaction_pages(client, operator, loan, suffix, tx_type, amount, message):
    client.force_login(operator)
    url = f"/admin/loans/loan/{loan.pk}/{suffix}/"
    page = client.get(url).content.decode()
    assert 'value="2025-03-15"' in page
    assert 'Outstanding as of 2025-03-15: <strong id="outstanding-now">14,273.90<' in page
    response = client.post(
        url, {"transaction_date": "2025-03-15", "amount": amount, "note": "ops"}, follow=True
    )
    tx = Transaction.objects.get(loan=loan, type=tx_type)
    assert (tx.amount, tx.note, tx.created_by) == (Decimal(amount), "ops", operator)
    assert message in response.content.decode()


def test_loan_page_buttons_for_each_transaction_command(client, operator, viewer, loan):
    client.force_login(operator)
    html = client.get(f"/admin/loans/loan/{loan.pk}/change/").content.decode()
    for label in ("Post repayment", "Post charge", "Post credit", "Post advancement"):
        assert f">{label}</a>" in html
    client.force_login(viewer)
    html = client.get(f"/admin/loans/loan/{loan.pk}/change/").content.decode()
    assert "Post charge" not in html and "Reverse</a>" not in html
    assert client.get(f"/admin/loans/loan/{loan.pk}/post-charge/").status_code == 403


def test_overpaying_credit_names_the_field(client, operator, loan):
    client.force_login(operator)
    response = client.post(
        f"/admin/loans/loan/{loan.pk}/post-credit/",
        {"transaction_date": "2025-03-15", "amount": "20000.00"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["amount"] == ["At most 14273.90."]
    assert not Transaction.objects.filter(type=TransactionType.CREDIT).exists()


def test_post_and_reverse_a_charge_from_its_row(client, operator, loan):
    client.force_login(operator)
    charge = post_transaction(
        loan=loan,
        type=TransactionType.CHARGE,
        on=date(2025, 3, 10),
        amount=Decimal("25.00"),
        actor=operator,
    )
    page = client.get(f"/admin/loans/loan/{loan.pk}/change/").content.decode()
    url = f"/admin/loans/loan/{loan.pk}/transactions/{charge.pk}/reverse/"
    assert f'href="{url}"' in page
    # The disbursement has no reverse link.
    disbursement = Transaction.objects.get(loan=loan, type=TransactionType.DISBURSEMENT)
    assert f"/transactions/{disbursement.pk}/reverse/" not in page

    confirm = client.get(url).content.decode()
    assert 'id="reversed-amount">25.00<' in confirm and "2025-03-10" in confirm
    refused = client.post(url, {"note": "   "})
    assert refused.context["form"].errors["note"] == ["A note is required."]
    charge.refresh_from_db()
    assert not charge.reversed

    done = client.post(url, {"note": "waived by the manager"}, follow=True).content.decode()
    assert f"Charge {charge.pk} of 25.00 on 2025-03-10 reversed (waived by the manager)" in done
    charge.refresh_from_db()
    assert (charge.reversed, charge.reversed_on, charge.reversal_note) == (
        True,
        date(2025, 3, 15),
        "waived by the manager",
    )
    # The audit trail reads as sentences.
    assert f"Reversed CHARGE {charge.pk} of 25.00 on 2025-03-10" in done
    assert "CHARGE of 25.00 on 2025-03-10 (principal 0.00, interest 0.00, fees 25.00)" in done
    assert "transaction reversed: no → yes" in done
    # Again: already reversed, no form.
    again = client.get(url).content.decode()
    assert "already reversed on 2025-03-15" in again and "reverse-transaction-form" not in again


def test_audit_trail_lines_on_the_loan_page(client, operator, loan):
    client.force_login(operator)
    html = client.get(f"/admin/loans/loan/{loan.pk}/change/").content.decode()
    assert "status: PENDING → ACTIVE" in html
    assert "terms locked: no → yes" in html
    assert "status: — → PENDING" in html
    assert "{&#x27;status&#x27;" not in html  # no raw dicts
    event = LoanEvent.objects.filter(loan=loan, command="activate_loan").get()
    listing = client.get(f"/admin/loans/loanevent/?q={loan.external_id}").content.decode()
    assert "status: PENDING → ACTIVE" in listing
    assert event.command in listing


def test_loan_page_money_has_thousands_separators(client, operator, loan):
    client.force_login(operator)
    html = client.get(f"/admin/loans/loan/{loan.pk}/change/").content.decode()
    assert 'id="total-outstanding">14,273.90<' in html
    assert ">10,000.00<" in html  # the setup's amount and the disbursement


# ------------------------------------------------------------------ CSV export


def test_export_csv_of_the_filtered_list(
    client, operator, viewer, loan, django_assert_max_num_queries
):
    make_loan(actor=operator, external_id="PENDING-1")
    client.force_login(operator)
    page = client.get("/admin/loans/loan/?status__exact=ACTIVE").content.decode()
    assert 'href="/admin/loans/loan/export.csv?status__exact=ACTIVE"' in page
    response = client.get("/admin/loans/loan/export.csv?status__exact=ACTIVE")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="loans-2025-03-15.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["id", "displayId", "externalId"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["externalId"] == "ADM-1" and row["status"] == "ACTIVE"
    assert (row["totalOutstanding"], row["amountPastDue"], row["daysPastDue"]) == (
        "14273.90",
        "475.80",
        "42",
    )
    everything = client.get("/admin/loans/loan/export.csv")
    assert len(list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode())))) == 3
    client.force_login(viewer)
    assert client.get("/admin/loans/loan/export.csv").status_code == 200  # a read


def test_export_queries_do_not_grow_with_rows(client, operator, django_assert_max_num_queries):
    set_business_date(date(2025, 3, 15))
    for _ in range(30):
        make_active_loan(
            actor=operator, contract_date=date(2025, 1, 1), first_payment_date=date(2025, 2, 1)
        )
    client.force_login(operator)
    with django_assert_max_num_queries(14):
        response = client.get("/admin/loans/loan/export.csv")
        lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 31


def test_export_needs_the_view_permission(client, django_user_model):
    nobody = django_user_model.objects.create_user(
        "nobody", password="x-long-pass-1", is_staff=True
    )
    client.force_login(nobody)
    assert client.get("/admin/loans/loan/export.csv").status_code == 403


@pytest.mark.parametrize(
    "suffix",
    [
        "post-repayment/",
        "post-charge/",
        "post-credit/",
        "post-advancement/",
        "transactions/{tx}/reverse/",
    ],
)
def test_every_new_command_page_refuses_a_viewer(client, viewer, loan, suffix):
    tx = Transaction.objects.get(loan=loan, type=TransactionType.DISBURSEMENT)
    url = f"/admin/loans/loan/{loan.pk}/{suffix.format(tx=tx.pk)}"
    before = (Transaction.objects.count(), LoanEvent.objects.count())
    client.force_login(viewer)
    assert client.get(url).status_code == 403
    body = {"transaction_date": "2025-03-15", "amount": "10.00", "note": "x"}
    assert client.post(url, body).status_code == 403
    assert (Transaction.objects.count(), LoanEvent.objects.count()) == before


def test_create_sets_the_late_fee_and_refuses_half_of_it(client, operator):
    client.force_login(operator)
    half = client.post(CREATE, {**TERMS, **NEW_BORROWER, "late_fee_amount": "15.00"})
    assert half.status_code == 200
    assert half.context["form"].errors["late_fee_grace_days"] == [
        "lateFeeAmount and lateFeeGraceDays are set together (both null: no late fee)."
    ]
    assert Loan.objects.count() == 0
    data = {**TERMS, **NEW_BORROWER, "late_fee_amount": "15.00", "late_fee_grace_days": "10"}
    assert client.post(CREATE, data).status_code == 302
    setup = Loan.objects.get(external_id="NEW-1").setup
    assert (setup.late_fee_amount, setup.late_fee_grace_days) == (Decimal("15.00"), 10)
    page = client.get(f"/admin/loans/loan/{setup.loan_id}/change/").content.decode()
    assert "15.00 after 10 days" in page
