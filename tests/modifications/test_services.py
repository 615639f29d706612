"""Service tests of the modification commands: every guard (and that nothing was written), every
effect, the audit rows. Figures are derived in tests/modifications/test_api.py's docstring."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from loans import services as loan_services
from loans.exceptions import ConflictError, DomainError, InvalidRequestError, SetupLockedError
from loans.models import (
    Loan,
    LoanEvent,
    LoanSetup,
    LoanSubStatus,
    Schedule,
    SchedulePeriod,
    Transaction,
    TransactionType,
)
from loans.selectors import loan_summary
from modifications import selectors, services
from modifications.models import Modification, ModificationStatus
from tests.factories import make_active_loan, make_loan, set_business_date
from tests.modifications.conftest import MOD_DATE

pytestmark = pytest.mark.django_db


def snapshot(loan: Loan) -> dict:
    """Everything a refused command must leave as it was."""
    loan = Loan.objects.get(pk=loan.pk)
    return {
        "loan": (loan.setup_id, loan.mod_total, loan.modification_in_progress, loan.status),
        "setups": list(LoanSetup.objects.filter(loan=loan).values()),
        "schedules": list(Schedule.objects.filter(loan=loan).values("id", "version", "is_current")),
        "periods": list(SchedulePeriod.objects.filter(schedule__loan=loan).order_by("id").values()),
        "transactions": list(Transaction.objects.filter(loan=loan).order_by("id").values()),
        "modifications": list(Modification.objects.filter(loan=loan).values()),
        "events": LoanEvent.objects.filter(loan=loan).count(),
    }


def create(loan, actor, on=MOD_DATE, keep=None):
    return services.create_modification(
        loan=loan,
        modification_date=on,
        persistent_transactions={"payments": keep or []},
        actor=actor,
    )


# ---------------------------------------------------------------- pre-modification test


def test_pre_modification_test_groups_later_transactions(operator, modifiable):
    charge = loan_services.post_transaction(
        loan=modifiable,
        type=TransactionType.CHARGE,
        on=date(2025, 7, 30),
        amount=Decimal("15.00"),
        external_id="LATE-FEE-1",
        note="late fee",
        actor=operator,
    )
    result = selectors.pre_modification_test(loan=modifiable, on=MOD_DATE)
    assert [item["id"] for item in result["payments"]] == [
        str(modifiable.kept_tx.pk),
        str(modifiable.dropped_tx.pk),
    ]
    assert result["charges"] == [
        {
            "id": str(charge.pk),
            "displayId": "LATE-FEE-1",
            "date": date(2025, 7, 30),
            "amount": Decimal("15.00"),
            "info": "2025-07-30 Charge late fee",
        }
    ]
    assert result["advancements"] == [] and result["credits"] == []
    assert selectors.pre_modification_test(loan=modifiable, on=date(2025, 7, 25)) == {
        "payments": [],
        "charges": result["charges"],
        "advancements": [],
        "credits": [],
    }


# ---------------------------------------------------------------- create


def test_create_modification_carries_the_balance(operator, modifiable):
    modification = create(modifiable, operator, keep=[str(modifiable.kept_tx.pk)])
    modifiable.refresh_from_db()
    draft = modification.setup
    assert modification.status == ModificationStatus.DRAFT
    assert (modification.carried_principal, modification.carried_interest) == (
        Decimal("9301.08"),
        Decimal("52.50"),
    )
    assert modification.carried_fees == Decimal("0.00")
    assert draft.loan_amount == Decimal("9353.58")
    assert (draft.contract_date, draft.first_payment_date) == (MOD_DATE, date(2025, 8, 15))
    assert (draft.loan_term, draft.payment, draft.payment_is_given) == (
        Decimal("54"),
        Decimal("239.24"),
        False,
    )
    assert (draft.mod_id, draft.active, draft.loan_rate) == (
        modification.pk,
        False,
        Decimal("15.0000"),
    )
    assert modification.previous_setup_id == modifiable.setup_id != draft.pk
    assert modifiable.modification_in_progress is True
    event = LoanEvent.objects.filter(loan=modifiable, command="create_modification").get()
    assert event.actor == operator
    assert event.result["loanAmount"] == "9353.58"
    assert event.changes == {"modificationInProgress": [False, True]}


def test_create_modification_on_a_due_date_carries_unpaid_interest_and_fees(operator):
    set_business_date(date(2025, 8, 10))
    loan = make_active_loan(
        actor=operator,
        loan_amount=Decimal("10000.00"),
        loan_rate=Decimal("15"),
        loan_term=Decimal("60"),
        contract_date=date(2025, 1, 1),
        first_payment_date=date(2025, 2, 1),
    )
    loan_services.post_transaction(
        loan=loan,
        type=TransactionType.CHARGE,
        on=date(2025, 2, 10),
        amount=Decimal("25.00"),
        actor=operator,
    )
    # Nothing paid: on 2025-03-01 two installments' interest is due (125.00 + 123.59, see the
    # table in test_api.py: with nothing paid the second is 9887.10 x 1.25 % = 123.59) and the
    # 25.00 fee; the principal is all 10,000.00.
    modification = create(loan, operator, on=date(2025, 3, 1))
    assert modification.carried_principal == Decimal("10000.00")
    assert modification.carried_interest == Decimal("248.59")
    assert modification.carried_fees == Decimal("25.00")
    assert modification.setup.loan_amount == Decimal("10273.59")
    assert modification.setup.loan_term == Decimal("58")


def test_create_refused_for_a_pending_loan(operator):
    set_business_date(date(2026, 2, 18))
    loan = make_loan(actor=operator)
    before = snapshot(loan)
    with pytest.raises(ConflictError) as exc:
        create(loan, operator, on=date(2026, 1, 15))
    assert exc.value.code == "loan_not_active"
    assert snapshot(loan) == before


def test_create_refused_for_a_terminated_loan(operator, modifiable):
    Loan.objects.filter(pk=modifiable.pk).update(sub_status=LoanSubStatus.CONTRACT_TERMINATION)
    before = snapshot(modifiable)
    with pytest.raises(ConflictError) as exc:
        create(modifiable, operator)
    assert exc.value.code == "loan_terminated"
    assert snapshot(modifiable) == before


def test_create_refused_while_one_is_in_progress(operator, modifiable):
    create(modifiable, operator)
    before = snapshot(modifiable)
    with pytest.raises(ConflictError) as exc:
        create(modifiable, operator, on=date(2025, 7, 20))
    assert exc.value.code == "modification_in_progress"
    assert snapshot(modifiable) == before


@pytest.mark.parametrize(
    ("on", "error", "code"),
    [
        (date(2024, 12, 31), InvalidRequestError, "date_before_contract"),
        (date(2025, 8, 11), InvalidRequestError, "future_date"),
    ],
)
def test_create_refused_for_bad_dates(operator, modifiable, on, error, code):
    before = snapshot(modifiable)
    with pytest.raises(error) as exc:
        create(modifiable, operator, on=on)
    assert exc.value.code == code
    assert snapshot(modifiable) == before


def test_create_on_the_contract_date_is_allowed(operator, modifiable):
    modification = create(modifiable, operator, on=date(2025, 1, 1))
    assert modification.setup.loan_amount == Decimal("10000.00")
    assert modification.setup.loan_term == Decimal("60")


def test_create_refused_on_or_before_the_latest_modification(operator, modifiable):
    """400 (the request's date is out of range), as a transaction dated on or before it
    (date_before_modification) and a modification before the contract (DESIGN §6: 400 invalid
    input); it was a 409 (acceptance audit)."""
    create(modifiable, operator)
    services.activate_modification(loan=modifiable, actor=operator)
    before = snapshot(modifiable)
    for on in (MOD_DATE, date(2025, 7, 1)):
        with pytest.raises(InvalidRequestError) as exc:
            create(modifiable, operator, on=on)
        assert exc.value.code == "date_before_latest_modification"
    assert snapshot(modifiable) == before


@pytest.mark.parametrize("case", ["unknown", "before", "wrong_group", "reversed", "other_loan"])
def test_create_refused_for_invalid_persistent_transactions(operator, modifiable, case):
    kept = modifiable.kept_tx
    if case == "unknown":
        persistent = {"payments": ["999999"]}
    elif case == "before":
        first = Transaction.objects.filter(loan=modifiable, type="REPAYMENT").order_by("date")[0]
        persistent = {"payments": [str(first.pk)]}
    elif case == "wrong_group":
        persistent = {"credits": [str(kept.pk)]}
    elif case == "reversed":
        loan_services.reverse_transaction(loan=modifiable, transaction_id=kept.pk, actor=operator)
        persistent = {"payments": [str(kept.pk)]}
    else:
        other = make_active_loan(
            actor=operator, contract_date=date(2025, 1, 1), first_payment_date=date(2025, 2, 1)
        )
        tx = loan_services.post_transaction(
            loan=other,
            type=TransactionType.REPAYMENT,
            on=date(2025, 7, 20),
            amount=Decimal("10.00"),
            actor=operator,
        )
        persistent = {"payments": [str(tx.pk)]}
    before = snapshot(modifiable)
    with pytest.raises(InvalidRequestError) as exc:
        services.create_modification(
            loan=modifiable,
            modification_date=MOD_DATE,
            persistent_transactions=persistent,
            actor=operator,
        )
    assert exc.value.code == "invalid_persistent_transactions"
    assert exc.value.errors
    assert snapshot(modifiable) == before


def test_one_draft_per_loan_is_a_database_constraint(operator, modifiable):
    modification = create(modifiable, operator)
    with pytest.raises(IntegrityError), transaction.atomic():
        Modification.objects.create(
            loan=modifiable,
            modification_date=date(2025, 7, 20),
            previous_setup=modification.previous_setup,
        )


# ---------------------------------------------------------------- update setup


def test_update_setup_on_the_draft_and_locked_after_activation(operator, modifiable):
    modification = create(modifiable, operator)
    setup = loan_services.update_setup(
        setup=modification.setup, changes={"loan_rate": Decimal("12")}, actor=operator
    )
    assert (setup.loan_rate, setup.payment) == (
        Decimal("12"),
        Decimal("225.02"),
    )  # 93.5358 / (1 - 1.01^-54)
    services.activate_modification(loan=modifiable, actor=operator)
    before = snapshot(modifiable)
    with pytest.raises(SetupLockedError):
        loan_services.update_setup(
            setup=setup, changes={"loan_rate": Decimal("10")}, actor=operator
        )
    assert snapshot(modifiable) == before


# ---------------------------------------------------------------- roll payment


def test_roll_payment_term_exact_and_term(operator, modifiable):
    create(modifiable, operator)
    result = services.roll_payment(
        loan=modifiable, amount="250.00", method=services.ROLL_TERM_EXACT, actor=operator
    )
    assert (result.payment, result.solution) == (Decimal("250.00"), Decimal("50.7553"))
    assert (result.setup.loan_term, result.setup.payment_is_given) == (Decimal("50.7553"), True)
    result = services.roll_payment(
        loan=modifiable, amount=Decimal("250.00"), method=services.ROLL_TERM, actor=operator
    )
    assert (result.payment, result.solution) == (Decimal("249.14"), Decimal("51"))
    assert (result.setup.loan_term, result.setup.payment_is_given) == (Decimal("51"), False)
    assert LoanEvent.objects.filter(loan=modifiable, command="roll_payment").count() == 2


@pytest.mark.parametrize(
    ("amount", "method", "code"),
    [
        ("116.91", services.ROLL_TERM_EXACT, "payment_too_small"),  # interest is 116.91975
        ("116.91", services.ROLL_TERM, "payment_too_small"),
        ("0", services.ROLL_TERM, "invalid_request"),
        ("abc", services.ROLL_TERM, "invalid_request"),
        ("250.00", "loan.rollPayment.other", "invalid_method"),
    ],
)
def test_roll_payment_refusals(operator, modifiable, amount, method, code):
    create(modifiable, operator)
    before = snapshot(modifiable)
    with pytest.raises(InvalidRequestError) as exc:
        services.roll_payment(loan=modifiable, amount=amount, method=method, actor=operator)
    assert exc.value.code == code
    assert snapshot(modifiable) == before


def test_roll_payment_needs_a_modification_in_progress(operator, modifiable):
    before = snapshot(modifiable)
    with pytest.raises(ConflictError) as exc:
        services.roll_payment(
            loan=modifiable, amount="250.00", method=services.ROLL_TERM, actor=operator
        )
    assert exc.value.code == "no_modification_in_progress"
    assert snapshot(modifiable) == before


def test_roll_payment_on_a_pending_loan_rolls_its_own_setup(operator):
    loan = make_loan(
        actor=operator,
        loan_amount=Decimal("10000.00"),
        loan_rate=Decimal("15"),
        loan_term=Decimal("60"),
    )
    result = services.roll_payment(
        loan=loan, amount="300.00", method=services.ROLL_TERM, actor=operator
    )
    # n = -ln(1 - 125 / 300) / ln(1.0125) = 43.4 -> 44 installments
    assert result.solution == Decimal("44")
    assert result.setup.pk == loan.setup_id
    assert result.payment == Decimal("296.86")  # 125 / (1 - 1.0125^-44)


# ---------------------------------------------------------------- activate


def test_activate_with_nothing_pending(operator, modifiable):
    before = snapshot(modifiable)
    result = services.activate_modification(loan=modifiable, actor=operator)
    assert result.activated is False
    assert snapshot(modifiable) == before


def test_activate_modification_leaves_a_pending_loan_to_the_core(operator):
    set_business_date(date(2026, 2, 18))
    loan = make_loan(actor=operator)
    result = services.activate_modification(loan=loan, actor=operator)
    assert result.activated is False
    loan.refresh_from_db()
    assert (loan.status, loan.mod_total) == ("PENDING", 0)
    assert not Transaction.objects.filter(loan=loan).exists()
    assert not LoanEvent.objects.filter(loan=loan).exclude(command="create_loan").exists()


def test_activate_modification_effects(operator, modifiable):
    old_setup_id = modifiable.setup_id
    old = list(
        SchedulePeriod.objects.filter(schedule__loan=modifiable, schedule__is_current=True)
        .order_by("period")
        .values()
    )
    modification = create(modifiable, operator, keep=[str(modifiable.kept_tx.pk)])
    result = services.activate_modification(loan=modifiable, actor=operator)
    assert result.activated is True
    modifiable.refresh_from_db()
    modification.refresh_from_db()
    assert modifiable.setup_id == modification.setup_id != old_setup_id
    assert (modifiable.mod_total, modifiable.modification_in_progress) == (1, False)
    assert modification.status == ModificationStatus.ACTIVE
    assert modification.activated_by == operator
    assert modification.reversed_transaction_ids == [modifiable.dropped_tx.pk]
    schedule = Schedule.objects.get(loan=modifiable, is_current=True)
    assert (schedule.reason, schedule.version, schedule.setup_id) == (
        "MODIFICATION",
        2,
        modification.setup_id,
    )
    assert modification.previous_schedule.version == 1
    periods = list(schedule.periods.order_by("period"))
    frozen = [p for p in periods if p.frozen]
    ignore = {"id", "schedule_id", "frozen"}
    assert [{k: v for k, v in p.items() if k not in ignore} for p in old[:6]] == [
        {k: v for k, v in vars(p).items() if k in old[0] and k not in ignore} for p in frozen
    ]
    dropped = Transaction.objects.get(pk=modifiable.dropped_tx.pk)
    assert dropped.reversed and dropped.reversed_on == date(2025, 8, 10)
    assert dropped.reversed_by_modification_id == modification.pk
    assert dropped.reversed_by == operator
    kept = Transaction.objects.get(pk=modifiable.kept_tx.pk)
    assert (kept.reversed, kept.principal_portion, kept.interest_portion) == (
        False,
        Decimal("120.98"),
        Decimal("116.92"),
    )
    event = LoanEvent.objects.get(loan=modifiable, command="activate_modification")
    assert event.changes["modTotal"] == [0, 1]


def test_activation_restarts_days_past_due(operator):
    # Nothing paid since 2025-02-01: 6 installments are past due on 2025-07-10.
    set_business_date(date(2025, 7, 10))
    loan = make_active_loan(
        actor=operator,
        loan_amount=Decimal("10000.00"),
        loan_rate=Decimal("15"),
        loan_term=Decimal("60"),
        contract_date=date(2025, 1, 1),
        first_payment_date=date(2025, 2, 1),
    )
    summary = loan_summary(loan, as_of=date(2025, 7, 10))
    assert (summary.days_past_due, summary.amount_past_due) == (159, Decimal("1427.40"))
    create(loan, operator, on=date(2025, 7, 10))
    services.activate_modification(loan=loan, actor=operator)
    summary = loan_summary(loan, as_of=date(2025, 7, 10))
    assert (summary.days_past_due, summary.amount_past_due) == (0, Decimal("0.00"))
    assert summary.next_due_date == date(2025, 8, 10)


def test_transactions_on_or_before_the_modification_date_are_refused(operator, modifiable):
    create(modifiable, operator)
    services.activate_modification(loan=modifiable, actor=operator)
    with pytest.raises(DomainError) as exc:
        loan_services.post_transaction(
            loan=modifiable,
            type=TransactionType.REPAYMENT,
            on=MOD_DATE,
            amount=Decimal("10.00"),
            actor=operator,
        )
    assert exc.value.code == "date_before_modification"


def test_activate_refused_when_the_draft_contract_date_moved(operator, modifiable):
    modification = create(modifiable, operator)
    loan_services.update_setup(
        setup=modification.setup,
        changes={"contract_date": date(2025, 7, 14)},
        actor=operator,
    )
    before = snapshot(modifiable)
    with pytest.raises(ConflictError) as exc:
        services.activate_modification(loan=modifiable, actor=operator)
    assert exc.value.code == "contract_date_changed"
    assert snapshot(modifiable) == before


# ---------------------------------------------------------------- cancel


def test_cancel_a_draft(operator, modifiable):
    before = snapshot(modifiable)
    modification = create(modifiable, operator)
    draft_id = modification.setup_id
    cancelled = services.cancel_modification(loan=modifiable, actor=operator)
    modifiable.refresh_from_db()
    assert cancelled.status == ModificationStatus.CANCELLED
    assert cancelled.cancelled_by == operator
    assert cancelled.draft_terms["loan_amount"] == "9353.58"
    assert not LoanSetup.objects.filter(pk=draft_id).exists()
    assert modifiable.modification_in_progress is False
    after = snapshot(modifiable)
    assert after["loan"] == before["loan"]
    assert after["periods"] == before["periods"]
    assert after["transactions"] == before["transactions"]
    # a new modification can start again
    assert create(modifiable, operator).status == ModificationStatus.DRAFT


def test_cancel_an_activated_modification_restores_everything(operator, modifiable):
    before = snapshot(modifiable)
    modification = create(modifiable, operator, keep=[str(modifiable.kept_tx.pk)])
    services.activate_modification(loan=modifiable, actor=operator)
    services.cancel_modification(loan=modifiable, actor=operator)
    modifiable.refresh_from_db()
    modification.refresh_from_db()
    assert modification.status == ModificationStatus.CANCELLED
    assert (modifiable.setup_id, modifiable.mod_total) == (before["loan"][0], 0)
    schedule = Schedule.objects.get(loan=modifiable, is_current=True)
    assert (schedule.reason, schedule.version) == ("MODIFICATION_CANCELLED", 3)
    ignore = {"id", "schedule_id"}

    def strip(rows):
        return [{k: v for k, v in r.items() if k not in ignore} for r in rows]

    restored = list(schedule.periods.order_by("period").values())
    original = before["periods"]  # version 1's periods, in period order
    assert strip(restored) == strip(original)
    assert snapshot(modifiable)["transactions"] == before["transactions"]


def test_cancel_newest_first_and_nothing_to_cancel(operator, modifiable):
    first = create(modifiable, operator)
    services.activate_modification(loan=modifiable, actor=operator)
    loan_services.post_transaction(
        loan=modifiable,
        type=TransactionType.REPAYMENT,
        on=date(2025, 8, 1),
        amount=Decimal("50.00"),
        actor=operator,
    )
    second = create(modifiable, operator, on=date(2025, 8, 5))
    services.activate_modification(loan=modifiable, actor=operator)
    modifiable.refresh_from_db()
    assert modifiable.mod_total == 2
    assert services.cancel_modification(loan=modifiable, actor=operator).pk == second.pk
    modifiable.refresh_from_db()
    assert (modifiable.setup_id, modifiable.mod_total) == (first.setup_id, 1)
    # the 2025-08-01 repayment (reversed by the second) is back; the first's two are not
    assert list(
        Transaction.objects.filter(loan=modifiable, reversed=True).values_list("pk", flat=True)
    ) == [modifiable.kept_tx.pk, modifiable.dropped_tx.pk]
    assert services.cancel_modification(loan=modifiable, actor=operator).pk == first.pk
    modifiable.refresh_from_db()
    assert (modifiable.setup_id, modifiable.mod_total) == (first.previous_setup_id, 0)
    assert Transaction.objects.filter(loan=modifiable, reversed=True).count() == 0
    before = snapshot(modifiable)
    with pytest.raises(ConflictError) as exc:
        services.cancel_modification(loan=modifiable, actor=operator)
    assert exc.value.code == "no_modification"
    assert snapshot(modifiable) == before
