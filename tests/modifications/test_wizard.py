"""The admin wizard through Django's test client: every step, resume, two loans, errors."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from loans.models import LoanSetup
from modifications.models import Modification, ModificationStatus
from tests.modifications.conftest import MOD_DATE

pytestmark = pytest.mark.django_db


def wizard_url(loan):
    return f"/admin/loans/loan/{loan.pk}/modify/"


def post(client, loan, name, **fields):
    data = {f"modify_loan_{loan.pk}-current_step": name}
    for key, value in fields.items():
        data[f"{name}-{key}"] = value
    return client.post(wizard_url(loan), data)


def terms_fields(setup, **changes):
    values = {
        "loan_amount": setup.loan_amount,
        "loan_rate": setup.loan_rate,
        "loan_term": setup.loan_term.normalize(),
        "payment_frequency": setup.payment_frequency,
        "first_payment_date": setup.first_payment_date.isoformat(),
        "payment": setup.payment if setup.payment_is_given else "",
        "calc_type": setup.calc_type,
        "days_in_year": setup.days_in_year,
        "rounding_mode": setup.rounding_mode,
    }
    values.update(changes)
    return values


def test_wizard_walks_to_activation(client, operator, modifiable):
    loan = modifiable
    client.force_login(operator)
    page = client.get(f"/admin/loans/loan/{loan.pk}/change/")
    assert b"Modify loan" in page.content
    response = client.get(wizard_url(loan))
    assert response.status_code == 200
    assert b"Modification date" in response.content
    response = post(client, loan, "date", modification_date="2025-07-15")
    assert response.status_code == 200
    body = response.content.decode()
    assert "2025-07-20 Repayment card" in body and "2025-07-25 Repayment" in body
    response = post(client, loan, "transactions", keep=[str(loan.kept_tx.pk)])
    assert response.status_code == 200, response.content
    modification = Modification.objects.get(loan=loan, status=ModificationStatus.DRAFT)
    assert modification.persistent_transactions["payments"] == [str(loan.kept_tx.pk)]
    assert "schedule-preview" in response.content.decode()
    setup = modification.setup
    response = client.post(
        wizard_url(loan),
        {
            f"modify_loan_{loan.pk}-current_step": "terms",
            "_preview": "1",
            **{f"terms-{k}": v for k, v in terms_fields(setup, loan_rate="12").items()},
        },
    )
    assert "(not saved yet)" in response.content.decode()
    setup.refresh_from_db()
    assert setup.loan_rate == Decimal("15.0000")
    response = post(client, loan, "terms", **terms_fields(setup))
    assert b"Roll payment" in response.content
    response = post(client, loan, "roll", amount="250.00", method="loan.rollPayment.termExact")
    body = response.content.decode()
    assert 'id="balance-chart"' in body and 'id="schedule-comparison"' in body
    setup.refresh_from_db()
    assert setup.loan_term == Decimal("50.7553")
    response = client.post(wizard_url(loan), {"wizard_goto_step": "roll"})
    assert b"Roll payment" in response.content
    response = post(client, loan, "roll", amount="", method="loan.rollPayment.termExact")
    assert b"balance-chart" in response.content
    response = post(client, loan, "review")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/loans/loan/{loan.pk}/change/"
    loan.refresh_from_db()
    assert loan.mod_total == 1 and not loan.modification_in_progress
    assert loan.setup_id == setup.pk


def test_the_terms_step_sets_the_late_fee(client, operator, modifiable):
    loan = modifiable
    client.force_login(operator)
    post(client, loan, "date", modification_date="2025-07-15")
    post(client, loan, "transactions", keep=[str(loan.kept_tx.pk)])
    setup = Modification.objects.get(loan=loan, status=ModificationStatus.DRAFT).setup
    half = post(client, loan, "terms", **terms_fields(setup, late_fee_grace_days="5"))
    assert half.context["form"].errors["late_fee_amount"] == [
        "lateFeeAmount and lateFeeGraceDays are set together (both null: no late fee)."
    ]
    response = post(
        client,
        loan,
        "terms",
        **terms_fields(setup, late_fee_amount="12.50", late_fee_grace_days="5"),
    )
    assert b"Roll payment" in response.content
    setup.refresh_from_db()
    assert (setup.late_fee_amount, setup.late_fee_grace_days) == (Decimal("12.50"), 5)


def test_wizard_resumes_the_draft_and_keeps_loans_apart(client, operator, modifiable):
    from modifications.services import create_modification

    loan = modifiable
    client.force_login(operator)
    create_modification(
        loan=loan, modification_date=MOD_DATE, persistent_transactions={}, actor=operator
    )
    response = client.get(wizard_url(loan))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-step="terms"' in body and 'class="current" data-step="terms"' in body
    assert "9353.58" in body
    assert f"wizard_modify_loan_{loan.pk}" in client.session


def test_two_loans_never_share_wizard_state(client, operator, modifiable):
    from tests.factories import make_active_loan

    other = make_active_loan(
        actor=operator, contract_date=date(2025, 1, 1), first_payment_date=date(2025, 2, 1)
    )
    client.force_login(operator)
    client.get(wizard_url(modifiable))
    post(client, modifiable, "date", modification_date="2025-07-15")
    client.get(wizard_url(other))
    post(client, other, "date", modification_date="2025-03-10")
    response = post(client, modifiable, "transactions", keep=[str(modifiable.kept_tx.pk)])
    assert response.status_code == 200
    assert Modification.objects.get(loan=modifiable).modification_date == date(2025, 7, 15)
    post(client, other, "transactions")
    assert Modification.objects.get(loan=other).modification_date == date(2025, 3, 10)
    assert f"wizard_modify_loan_{modifiable.pk}" in client.session
    assert f"wizard_modify_loan_{other.pk}" in client.session


def test_wizard_shows_errors_on_the_step(client, operator, modifiable):
    loan = modifiable
    client.force_login(operator)
    client.get(wizard_url(loan))
    # The date is refused on its own step (not on the next one).
    response = post(client, loan, "date", modification_date="2024-12-01")
    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "date"
    assert b"before the loan&#x27;s contract date" in response.content
    assert response.context["form"].errors["modification_date"] == ["Before the contract date."]
    future = post(client, loan, "date", modification_date="2099-01-01")
    assert future.context["wizard"]["steps"].current == "date"
    assert "is after the business date" in future.content.decode()
    assert future.context["form"].errors["modification_date"] == ["After the business date."]
    # Posting the second step without a date does not reach the command.
    response = post(client, loan, "transactions")
    assert response.status_code == 200
    assert not Modification.objects.filter(loan=loan).exists()
    assert LoanSetup.objects.filter(loan=loan).count() == 1


def test_cancel_button_abandons_the_draft(client, operator, modifiable):
    from modifications.services import create_modification

    loan = modifiable
    client.force_login(operator)
    create_modification(
        loan=loan, modification_date=date(2025, 7, 15), persistent_transactions={}, actor=operator
    )
    response = client.post(f"/admin/loans/loan/{loan.pk}/cancel-modification/", {"confirm": "1"})
    assert response.status_code == 302
    loan.refresh_from_db()
    assert not loan.modification_in_progress
    assert Modification.objects.get(loan=loan).status == ModificationStatus.CANCELLED


def test_wizard_needs_modify_loan(client, viewer, modifiable):
    client.force_login(viewer)
    assert client.get(wizard_url(modifiable)).status_code == 403


def test_changing_the_date_replaces_the_draft(client, operator, modifiable):
    loan = modifiable
    client.force_login(operator)
    client.get(wizard_url(loan))
    post(client, loan, "date", modification_date="2025-07-15")
    post(client, loan, "transactions", keep=[str(loan.kept_tx.pk)])
    first = Modification.objects.get(loan=loan, status=ModificationStatus.DRAFT)
    # back to the date, then forward with another date: the draft is replaced
    client.post(wizard_url(loan), {"wizard_goto_step": "date"})
    post(client, loan, "date", modification_date="2025-07-22")
    response = post(client, loan, "transactions", keep=[str(loan.dropped_tx.pk)])
    assert response.status_code == 200
    first.refresh_from_db()
    assert first.status == ModificationStatus.CANCELLED
    second = Modification.objects.get(loan=loan, status=ModificationStatus.DRAFT)
    assert second.modification_date == date(2025, 7, 22)
    assert second.persistent_transactions["payments"] == [str(loan.dropped_tx.pk)]
    # the same date and selection again reuses the draft
    client.post(wizard_url(loan), {"wizard_goto_step": "transactions"})
    post(client, loan, "transactions", keep=[str(loan.dropped_tx.pk)])
    assert Modification.objects.filter(loan=loan).count() == 2


def test_failed_activation_returns_to_the_wizard_with_the_message(client, operator, modifiable):
    from loans.services import update_setup
    from modifications.services import create_modification

    loan = modifiable
    client.force_login(operator)
    modification = create_modification(
        loan=loan, modification_date=MOD_DATE, persistent_transactions={}, actor=operator
    )
    update_setup(
        setup=modification.setup, changes={"contract_date": date(2025, 7, 14)}, actor=operator
    )
    client.get(wizard_url(loan))  # resumes at terms
    post(client, loan, "terms", **terms_fields(LoanSetup.objects.get(pk=modification.setup_id)))
    post(client, loan, "roll", amount="", method="loan.rollPayment.termExact")
    response = post(client, loan, "review")
    assert response.status_code == 302
    assert response["Location"] == wizard_url(loan)
    page = client.get(response["Location"])
    assert b"must stay the modification date" in page.content
    loan.refresh_from_db()
    assert loan.mod_total == 0 and loan.modification_in_progress


def test_live_preview_fragment(client, operator, viewer, modifiable):
    from modifications.services import create_modification

    loan = modifiable
    url = f"/admin/loans/loan/{loan.pk}/modify/preview/"
    client.force_login(operator)
    assert b"no modification in progress" in client.get(url).content
    modification = create_modification(
        loan=loan, modification_date=MOD_DATE, persistent_transactions={}, actor=operator
    )
    fields = {f"terms-{k}": v for k, v in terms_fields(modification.setup, loan_term="12").items()}
    body = client.get(url, fields).content.decode()
    assert body.count("<tr") == 1 + 6 + 12
    assert "(not saved yet)" in body
    fields["terms-first_payment_date"] = "2025-07-01"
    assert b"Must be after the contract date." in client.get(url, fields).content
    modification.setup.refresh_from_db()
    assert modification.setup.loan_term == Decimal("54")
    client.force_login(viewer)
    assert client.get(url, fields).status_code == 403


def test_back_to_terms_shows_the_rolled_terms(client, operator, modifiable):
    loan = modifiable
    client.force_login(operator)
    client.get(wizard_url(loan))
    post(client, loan, "date", modification_date="2025-07-15")
    post(client, loan, "transactions")
    setup = Modification.objects.get(loan=loan).setup
    post(client, loan, "terms", **terms_fields(setup))
    post(client, loan, "roll", amount="250.00", method="loan.rollPayment.termExact")
    response = client.post(wizard_url(loan), {"wizard_goto_step": "terms"})
    body = response.content.decode()
    assert 'value="50.7553"' in body and 'value="250.00"' in body


def test_review_compares_what_is_due_after_the_date(client, operator, modifiable):
    from modifications.services import create_modification, roll_payment

    loan = modifiable
    client.force_login(operator)
    create_modification(
        loan=loan, modification_date=MOD_DATE, persistent_transactions={}, actor=operator
    )
    roll_payment(loan=loan, amount="250.00", method="loan.rollPayment.termExact", actor=operator)
    response = client.get(wizard_url(loan))  # resumes at the review
    body = response.content.decode()
    assert 'class="current" data-step="review"' in body
    # old: installments 7..60 (54); new: 51 of 250.00, the last 189.08 -> 50 x 250 + 189.08
    assert "54 installments" in body
    assert "51 installments, interest 3335.50, total 12689.08, maturity 2029-10-15" in body
    assert body.count('class="changed') == 54
    assert "2025-07-20 Repayment card (237.90); 2025-07-25 Repayment (100.00)" in body


def test_review_warns_and_asks_for_confirmation(client, operator, modifiable, settings):
    from loans.services import update_setup
    from modifications.services import create_modification, roll_payment

    loan = modifiable
    client.force_login(operator)
    modification = create_modification(
        loan=loan, modification_date=MOD_DATE, persistent_transactions={}, actor=operator
    )
    update_setup(setup=modification.setup, changes={"loan_rate": Decimal("500")}, actor=operator)
    roll_payment(loan=loan, amount="20000.00", method="loan.rollPayment.termExact", actor=operator)
    modification.refresh_from_db()
    carried = modification.carried_total
    body = client.get(wizard_url(loan)).content.decode()
    assert 'id="review-warnings"' in body
    assert (
        f"The payment 20,000.00 is above the balance carried into the modification "
        f"({carried:,}): the first installment would pay it all." in body
    )
    assert "is under one installment" in body
    assert "The rate 500 % is above 36 % a year." in body
    # Delinquency before and after, from a dry run of the activation (nothing changed).
    assert 'id="delinquency-before"' in body and 'id="delinquency-after"' in body
    assert "Pending scheduled payments (autopay) that move:</strong>\n    none" in body
    loan.refresh_from_db()
    assert loan.modification_in_progress
    refused = client.post(wizard_url(loan), {f"modify_loan_{loan.pk}-current_step": "review"})
    assert "Confirm the warnings above to activate." in refused.content.decode()
    loan.refresh_from_db()
    assert loan.modification_in_progress
    done = client.post(
        wizard_url(loan),
        {f"modify_loan_{loan.pk}-current_step": "review", "review-confirm_warnings": "on"},
    )
    assert done.status_code == 302
    loan.refresh_from_db()
    assert not loan.modification_in_progress and loan.mod_total == 1


def test_rate_warning_cap_is_a_setting(client, operator, modifiable, settings):
    from loans.services import update_setup
    from modifications.services import create_modification

    settings.MODIFICATION_RATE_WARNING_PERCENT = 10
    loan = modifiable
    client.force_login(operator)
    modification = create_modification(
        loan=loan, modification_date=MOD_DATE, persistent_transactions={}, actor=operator
    )
    update_setup(setup=modification.setup, changes={"loan_rate": Decimal("12")}, actor=operator)
    from modifications.views import review_warnings

    modification.refresh_from_db()
    assert review_warnings(modification) == ["The rate 12 % is above 10 % a year."]
    settings.MODIFICATION_RATE_WARNING_PERCENT = 36
    assert review_warnings(modification) == []


def test_review_shows_delinquency_before_and_after(client, operator, modifiable):
    from modifications.services import create_modification, roll_payment

    loan = modifiable
    client.force_login(operator)
    create_modification(
        loan=loan, modification_date=MOD_DATE, persistent_transactions={}, actor=operator
    )
    roll_payment(loan=loan, amount="250.00", method="loan.rollPayment.termExact", actor=operator)
    response = client.get(wizard_url(loan))
    activation = response.context["activation"]
    before, after = activation["before"], activation["after"]
    assert (before.amount_past_due, before.days_past_due) == (Decimal("0.00"), 0)
    assert (after.amount_past_due, after.days_past_due) == (Decimal("0.00"), 0)
    assert before.next_due_date == date(2025, 9, 1)
    assert after.next_due_date == date(2025, 8, 15)
    assert activation["moved"] == []
    loan.refresh_from_db()
    assert loan.modification_in_progress  # the dry run changed nothing


def test_a_payment_posted_while_the_checklist_was_shown_is_not_decided_unseen(
    client, operator, modifiable
):
    """Found by the audit in Chromium: the checklist listed the transactions after the date; a
    repayment posted from another tab before "continue" was recomputed into the choices
    unchecked, so the draft reversed it on activation although the operator never saw it. The
    page now carries the ids it listed; a change re-renders the list (the new one kept, as the
    page starts) with a message, and no draft is created."""
    from tests.factories import post_repayment

    loan = modifiable
    client.force_login(operator)
    page = post(client, loan, "date", modification_date="2025-07-15")
    shown = f"{loan.kept_tx.pk},{loan.dropped_tx.pk}"
    assert f'name="transactions-shown" value="{shown}"' in page.content.decode()
    other_tab = post_repayment(loan, date(2025, 8, 1), "50.00", actor=operator)
    response = post(client, loan, "transactions", keep=[str(loan.kept_tx.pk)], shown=shown)
    body = response.content.decode()
    assert response.status_code == 200
    assert "The transactions after 2025-07-15 changed since this list was shown (new: " in body
    assert "2025-08-01 Repayment" in body and "Check the list and continue again." in body
    assert not Modification.objects.filter(loan=loan).exists()
    again = f"{shown},{other_tab.pk}"
    assert f'name="transactions-shown" value="{again}"' in body
    boxes = re.findall(r'<input type="checkbox" name="transactions-keep"[^>]*>', body)
    checked = {re.search(r'value="(\d+)"', box).group(1) for box in boxes if "checked" in box}
    assert checked == {str(loan.kept_tx.pk), str(other_tab.pk)}  # the new one kept by default
    response = post(
        client, loan, "transactions", keep=[str(loan.kept_tx.pk), str(other_tab.pk)], shown=again
    )
    assert b"Roll payment" in response.content or b"schedule-preview" in response.content
    draft = Modification.objects.get(loan=loan, status=ModificationStatus.DRAFT)
    assert draft.persistent_transactions["payments"] == [str(loan.kept_tx.pk), str(other_tab.pk)]


def test_a_first_payment_date_at_the_end_of_the_calendar_is_a_field_message(
    client, operator, modifiable
):
    """Found by the audit in Chromium: 9999-12-31 as the terms' first payment date was refused
    with Python's "year 10000 is out of range"; now the field says what is accepted."""
    loan = modifiable
    client.force_login(operator)
    post(client, loan, "date", modification_date="2025-07-15")
    post(client, loan, "transactions", keep=[str(loan.kept_tx.pk)])
    setup = Modification.objects.get(loan=loan).setup
    response = post(client, loan, "terms", **terms_fields(setup, first_payment_date="9999-12-31"))
    body = response.content.decode()
    assert "Must be before 9949-01-01: the schedule would run past 9999-12-31." in body
    assert "out of range" not in body
    setup.refresh_from_db()
    assert setup.first_payment_date == date(2025, 8, 15)


def test_a_step_posted_after_the_draft_was_cancelled_elsewhere_says_so(
    client, operator, modifiable
):
    """Found by the audit in Chromium: with the review open in one tab and the draft cancelled
    from the loan page in another (which clears the wizard's state), "activate" landed on the
    date step with "This field is required." and no word of what happened."""
    from django.contrib.messages import get_messages

    loan = modifiable
    client.force_login(operator)
    post(client, loan, "date", modification_date="2025-07-15")
    post(client, loan, "transactions", keep=[str(loan.kept_tx.pk)])
    setup = Modification.objects.get(loan=loan).setup
    post(client, loan, "terms", **terms_fields(setup))
    review = post(client, loan, "roll", amount="", method="loan.rollPayment.termExact")
    assert b'id="review-facts"' in review.content
    client.post(f"/admin/loans/loan/{loan.pk}/cancel-modification/", {"confirm": "1"})
    response = post(client, loan, "review")
    body = response.content.decode()
    assert response.status_code == 200
    assert [str(m) for m in get_messages(response.wsgi_request)][-1:] == [
        f"The modification of {loan} was cancelled or activated on another page since this "
        "step was shown; nothing was saved. Start again from the date."
    ]
    assert "This field is required." not in body and 'name="date-modification_date"' in body
    assert list(Modification.objects.values_list("status", flat=True)) == ["CANCELLED"]
