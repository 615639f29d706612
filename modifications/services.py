"""Loan modification commands (seed 004, DESIGN §4).

Each command is one keyword-only function with a required actor: it validates first (changing
nothing on failure), runs in one transaction, locks the loan row, writes, and records one audit
row. The API, the admin wizard and the demo data call these same functions.

Choices made where the seed and the spec are silent (LoanPro's behaviour where known):

* The carried balance (the draft's ``loanAmount``) is what the borrower owed on the modification
  date: the current schedule version replayed in memory with only the transactions dated on or
  before that date, then ``ledger.payoff`` (all unpaid principal, unpaid interest of
  installments due by then, the current installment's interest accrued by days less interest
  paid ahead of being earned, unpaid fees).
* The draft's first payment date is one frequency step after the modification date and its term
  the number of installments of the current schedule still due after that date (at least one);
  its payment is computed.
* On activation the periods due on or before the modification date are frozen "as they were on
  that date" (the same in-memory replay), so a payment dated after the modification date that was
  allocated to an older installment is not counted twice.
* ``roll_payment`` works on the draft setup of a modification in progress and, as in LoanPro's
  setup screen, on the setup of a ``PENDING`` loan.
* Cancelling a draft deletes its draft setup (a setup that never was in force; its terms are
  kept on the modification in ``draft_terms``) because a loan may hold only one inactive setup.

Why this module is long: it holds every modification command (create, replace, roll payment,
activate, cancel) and their shared validation; the reads live in ``modifications.selectors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from loans import terms, versions
from loans.exceptions import (
    ConflictError,
    FutureDateError,
    InvalidRequestError,
    LoanStateError,
    SetupLockedError,
    field_error,
)
from loans.formatting import article, words
from loans.models import (
    Loan,
    LoanSetup,
    LoanStatus,
    Schedule,
    ScheduleReason,
    Transaction,
)
from loans.schedules import PaymentTooSmallError, solve_term, step
from loans.selectors import get_business_date
from loans.services import ActivationResult
from modifications import selectors
from modifications.models import PERSISTENT_GROUPS, Modification, ModificationStatus
from modifications.selectors import GROUP_TYPES

ZERO = Decimal("0.00")

ROLL_TERM_EXACT = "loan.rollPayment.termExact"
ROLL_TERM = "loan.rollPayment.term"
ROLL_METHODS = (ROLL_TERM_EXACT, ROLL_TERM)


class ModificationInProgressError(ConflictError):
    default_code = "modification_in_progress"


class NoModificationError(ConflictError):
    default_code = "no_modification"


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _check_can_modify(loan: Loan) -> None:
    refusals = selectors.modification_refusals(loan)
    if refusals:
        first = refusals[0]
        if first["code"] == "modification_in_progress":
            raise ModificationInProgressError(first["detail"])
        raise LoanStateError(first["detail"], code=first["code"])


def _check_date(loan: Loan, on: date, as_of: date) -> None:
    if not isinstance(on, date):
        raise InvalidRequestError(
            "modificationDate must be a date (YYYY-MM-DD).",
            code="invalid_date",
            errors=[field_error("modificationDate", "A date is required.", "invalid")],
        )
    contract = versions.original_contract_date(loan)
    if on < contract:
        raise InvalidRequestError(
            f"The modification date {on} is before the loan's contract date {contract}.",
            code="date_before_contract",
            errors=[
                field_error("modificationDate", "Before the contract date.", "date_before_contract")
            ],
        )
    latest = selectors.latest_active_modification(loan)
    if latest is not None and on <= latest.modification_date:
        # 400 like a transaction dated on or before it (date_before_modification) and a
        # modification before the contract: a date the request gave is out of its range.
        raise InvalidRequestError(
            f"The modification date {on} is on or before the latest modification's date "
            f"{latest.modification_date}.",
            code="date_before_latest_modification",
            errors=[
                field_error(
                    "modificationDate",
                    "On or before the latest modification.",
                    "date_before_latest_modification",
                )
            ],
        )
    if on > as_of:
        raise FutureDateError(
            f"The modification date {on} is after the business date {as_of}.",
            errors=[field_error("modificationDate", "After the business date.", "future_date")],
        )


def _clean_persistent(loan: Loan, on: date, persistent: dict | None) -> dict[str, list[str]]:
    """Validate ``{"payments": ["12"], ...}``: each id a transaction of this loan, not reversed,
    dated after ``on``, of the group's type. Returns the normalized groups (ids as strings)."""
    persistent = persistent or {}
    if not isinstance(persistent, dict):
        raise InvalidRequestError(
            "persistentTransactions must be an object of id lists.",
            code="invalid_persistent_transactions",
        )
    errors = []
    unknown = set(persistent) - set(PERSISTENT_GROUPS)
    for group in sorted(unknown):
        errors.append(
            field_error(
                f"persistentTransactions.{group}",
                f"Unknown group; use {', '.join(PERSISTENT_GROUPS)}.",
                "unknown_group",
            )
        )
    later = {t.pk: t for t in selectors.later_transactions(loan, on)}
    cleaned: dict[str, list[str]] = {group: [] for group in PERSISTENT_GROUPS}
    for group in PERSISTENT_GROUPS:
        ids = persistent.get(group) or []
        if not isinstance(ids, list | tuple):
            errors.append(
                field_error(f"persistentTransactions.{group}", "A list of ids is required.")
            )
            continue
        for raw in ids:
            field = f"persistentTransactions.{group}"
            try:
                pk = int(str(raw).strip())
            except (TypeError, ValueError):
                errors.append(field_error(field, f"{raw!r} is not a transaction id.", "invalid"))
                continue
            tx = later.get(pk)
            if tx is None:
                errors.append(
                    field_error(
                        field,
                        f"Transaction {pk} is not a non-reversed transaction of this loan dated "
                        f"after {on}.",
                        "invalid_transaction",
                    )
                )
            elif tx.type != GROUP_TYPES[group]:
                errors.append(
                    field_error(
                        field,
                        f"Transaction {pk} is {article(words(tx.type))}, not one of the {group}.",
                        "wrong_group",
                    )
                )
            elif str(pk) not in cleaned[group]:
                cleaned[group].append(str(pk))
    if errors:
        raise InvalidRequestError(
            "Some persistent transactions are invalid.",
            code="invalid_persistent_transactions",
            errors=errors,
        )
    return cleaned


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


@transaction.atomic
def create_modification(
    *,
    loan: Loan,
    modification_date: date,
    persistent_transactions: dict | None = None,
    actor,
    note: str = "",
    as_of: date | None = None,
) -> Modification:
    """Start a modification: a DRAFT ``Modification`` and a draft setup copied from the one in
    force, carrying the balance outstanding on the modification date."""
    as_of = as_of or get_business_date()
    loan = versions.lock_loan(loan)
    _check_can_modify(loan)
    _check_date(loan, modification_date, as_of)
    persistent = _clean_persistent(loan, modification_date, persistent_transactions)
    carried = selectors.carried_balance(loan, modification_date)
    if carried.total <= 0:
        raise LoanStateError(
            f"Nothing is outstanding on {modification_date}; there is nothing to modify.",
            code="nothing_outstanding",
        )
    in_force = loan.setup
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    remaining = schedule.periods.filter(frozen=False, due_date__gt=modification_date).count()
    values = {
        **{name: getattr(in_force, name) for name in terms.SETUP_FIELDS},
        "loan_amount": carried.total,
        "contract_date": modification_date,
        "first_payment_date": step(modification_date, in_force.payment_frequency),
        "loan_term": Decimal(max(remaining, 1)),
        "payment": None,
    }
    cleaned = terms.validate_terms(values)
    modification = Modification.objects.create(
        loan=loan,
        status=ModificationStatus.DRAFT,
        modification_date=modification_date,
        previous_setup=in_force,
        carried_principal=carried.principal,
        carried_interest=carried.interest,
        carried_fees=carried.fees,
        persistent_transactions=persistent,
        note=(note or "")[:500],
        created_by=versions.actor_or_none(actor),
    )
    draft = LoanSetup.objects.create(loan=loan, mod_id=modification.pk, active=False, **cleaned)
    modification.setup = draft
    modification.save(update_fields=["setup"])
    loan.modification_in_progress = True
    loan.save(update_fields=["modification_in_progress", "updated_at"])
    versions.record_event(
        loan=loan,
        command="create_modification",
        actor=actor,
        as_of=as_of,
        reason=note,
        input={"modificationDate": modification_date, "persistentTransactions": persistent},
        changes={"modificationInProgress": (False, True)},
        result={
            "modificationId": modification.pk,
            "setupId": draft.pk,
            "carriedPrincipal": carried.principal,
            "carriedInterest": carried.interest,
            "carriedFees": carried.fees,
            "loanAmount": draft.loan_amount,
            "loanTerm": draft.loan_term,
            "payment": draft.payment,
        },
    )
    return modification


def _parse_amount(amount) -> Decimal:
    try:
        value = Decimal(str(amount))
        if not value.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidRequestError(
            "amount must be a number.",
            errors=[field_error("amount", "A number is required.", "invalid")],
        )
    if value <= 0 or value != value.quantize(Decimal("0.01")):
        raise InvalidRequestError(
            "amount must be positive with at most two decimal places.",
            errors=[field_error("amount", "Must be a positive amount in cents.", "invalid")],
        )
    return value


@dataclass(frozen=True)
class RollResult:
    method: str
    payment: Decimal
    solution: Decimal
    setup: LoanSetup


def _payment_too_small(amount: Decimal) -> InvalidRequestError:
    return InvalidRequestError(
        f"A payment of {amount} does not cover one period's interest.",
        code="payment_too_small",
        errors=[field_error("amount", "Too small to cover interest.", "payment_too_small")],
    )


@transaction.atomic
def roll_payment(*, loan: Loan, amount, method: str, actor) -> RollResult:
    """Solve for the term so the payment is ``amount`` (LoanPro's roll payment).

    ``loan.rollPayment.termExact``: fractional term, the payment is the amount (given), the final
    installment smaller. ``loan.rollPayment.term``: whole term (rounded up), payment recomputed.
    """
    if method not in ROLL_METHODS:
        raise InvalidRequestError(
            f"Unknown method {method!r}; use {' or '.join(ROLL_METHODS)}.",
            code="invalid_method",
            errors=[field_error("method", "Unknown method.", "invalid_choice")],
        )
    amount = _parse_amount(amount)
    loan = versions.lock_loan(loan)
    if loan.status == LoanStatus.PENDING:
        setup = LoanSetup.objects.select_for_update().get(pk=loan.setup_id)
    else:
        modification = selectors.draft_modification(loan)
        if modification is None or modification.setup_id is None:
            raise NoModificationError(
                "There is no modification in progress whose payment could be rolled.",
                code="no_modification_in_progress",
            )
        setup = LoanSetup.objects.select_for_update().get(pk=modification.setup_id)
    if setup.active:  # pragma: no cover - a draft or pending setup is never active
        raise SetupLockedError(f"Setup {setup.pk} is active and locked.")
    exact = method == ROLL_TERM_EXACT
    try:
        solution = solve_term(terms.terms_for(setup), amount, exact=exact)
    except PaymentTooSmallError:
        raise _payment_too_small(amount)
    values = {name: getattr(setup, name) for name in terms.SETUP_FIELDS}
    values.update(loan_term=solution, payment=amount if exact else None)
    try:
        cleaned = terms.validate_terms(values)
    except InvalidRequestError as exc:
        if exc.code == "payment_too_small":
            raise _payment_too_small(amount)
        raise
    before = terms.setup_terms(setup)
    for name, value in cleaned.items():
        setattr(setup, name, value)
    setup.save()
    after = terms.setup_terms(setup)
    versions.record_event(
        loan=loan,
        command="roll_payment",
        actor=actor,
        as_of=get_business_date(),
        input={"amount": amount, "method": method},
        changes={k: (before[k], after[k]) for k in before if before[k] != after[k]},
        result={"setupId": setup.pk, "payment": setup.payment, "solution": solution},
    )
    return RollResult(method=method, payment=setup.payment, solution=solution, setup=setup)


@transaction.atomic
def activate_modification(*, loan: Loan, actor, as_of: date | None = None) -> ActivationResult:
    """Activate the loan's draft modification; ``activated=False`` when it has none.

    The draft setup is locked and put in force from the modification date; the periods due on
    or before it are kept as history (frozen); the non-persistent transactions dated after it
    are reversed naming the modification; a new schedule version is derived from the new terms
    and the persistent transactions replayed on their own dates. Past-due figures restart
    because frozen periods no longer count. ``modTotal`` goes up. (A ``PENDING`` loan is
    activated by the core's ``loans.services.activate_loan``.)
    """
    as_of = as_of or get_business_date()
    locked = versions.lock_loan(loan)
    modification = (
        Modification.objects.select_for_update()
        .filter(loan=locked, status=ModificationStatus.DRAFT)
        .first()
    )
    if modification is None:
        return ActivationResult(activated=False, loan=locked)
    return _activate_modification(locked, modification, actor=actor, as_of=as_of)


def _activate_modification(
    loan: Loan, modification: Modification, *, actor, as_of: date
) -> ActivationResult:
    on = modification.modification_date
    draft = LoanSetup.objects.select_for_update().get(pk=modification.setup_id)
    if loan.is_terminated:  # pragma: no cover - termination is refused during a modification
        raise LoanStateError("The contract of this loan is terminated.", code="loan_terminated")
    if draft.contract_date != on:
        raise ConflictError(
            f"The draft's contract date {draft.contract_date} must stay the modification date "
            f"{on}.",
            code="contract_date_changed",
            errors=[field_error("contractDate", f"Must be {on}.", "contract_date_changed")],
        )
    if on > as_of:
        raise FutureDateError(f"The modification date {on} is after the business date {as_of}.")
    terms.validate_terms(terms.setup_values(draft))
    persistent = set(modification.persistent_ids)
    carried = selectors.carried_balance(loan, on)
    previous_schedule = Schedule.objects.get(loan=loan, is_current=True)
    previous_setup = loan.setup

    # Reverse what is not kept, before the rebuild (one statement).
    to_reverse = list(
        selectors.later_transactions(loan, on)
        .exclude(pk__in=persistent)
        .values_list("pk", flat=True)
    )
    now = timezone.now()
    Transaction.objects.filter(pk__in=to_reverse).update(
        reversed=True,
        reversed_on=as_of,
        reversed_at=now,
        reversed_by=versions.actor_or_none(actor),
        reversal_note=f"Reversed by loan modification {modification.pk} dated {on}"[:500],
        reversed_by_modification_id=modification.pk,
    )

    draft.active = True
    draft.activated_at = now
    draft.save(update_fields=["active", "activated_at"])
    loan.setup = draft
    loan.mod_total += 1
    loan.modification_in_progress = False
    loan.save(update_fields=["setup", "mod_total", "modification_in_progress", "updated_at"])
    schedule = versions.new_schedule_version(
        loan=loan,
        reason=ScheduleReason.MODIFICATION,
        actor=actor,
        note=f"Modification {modification.pk} as of {on}",
        setup=draft,
        frozen_periods=carried.frozen_periods,
    )
    status_before = loan.status
    versions.rebuild_schedule(loan, schedule=schedule)

    modification.status = ModificationStatus.ACTIVE
    modification.activated_at = now
    modification.activated_by = versions.actor_or_none(actor)
    modification.previous_schedule = previous_schedule
    modification.schedule = schedule
    modification.reversed_transaction_ids = to_reverse
    modification.save()
    versions.record_event(
        loan=loan,
        command="activate_modification",
        actor=actor,
        as_of=as_of,
        changes={
            "setup": (previous_setup.pk, draft.pk),
            "modTotal": (loan.mod_total - 1, loan.mod_total),
            "modificationInProgress": (True, False),
            "modification.status": (ModificationStatus.DRAFT, ModificationStatus.ACTIVE),
            **({"status": (status_before, loan.status)} if status_before != loan.status else {}),
        },
        result={
            "modificationId": modification.pk,
            "scheduleVersion": schedule.version,
            "reversedTransactionIds": to_reverse,
            "persistentTransactionIds": sorted(persistent),
        },
    )
    return ActivationResult(activated=True, loan=loan)


@transaction.atomic
def replace_modification(
    *,
    loan: Loan,
    modification_date: date,
    persistent_transactions: dict | None = None,
    actor,
    note: str = "",
    as_of: date | None = None,
) -> Modification:
    """Start a modification, replacing the loan's draft when it has one (the wizard's step back
    to another date or other kept transactions): a draft with the same date and the same kept
    transactions is returned as it is; another is cancelled and a new one created, in one
    transaction (a failure of the new one keeps the old draft)."""
    locked = versions.lock_loan(loan)
    draft = selectors.draft_modification(locked)
    if draft is not None:
        wanted = sorted(int(i) for ids in (persistent_transactions or {}).values() for i in ids)
        if draft.modification_date == modification_date and sorted(draft.persistent_ids) == wanted:
            return draft
        cancel_modification(loan=locked, actor=actor, note="Replaced in the wizard")
    return create_modification(
        loan=locked,
        modification_date=modification_date,
        persistent_transactions=persistent_transactions,
        actor=actor,
        note=note,
        as_of=as_of,
    )


@transaction.atomic
def cancel_modification(*, loan: Loan, actor, note: str = "") -> Modification:
    """Cancel the newest modification (a draft, or an activated one): restore the previous
    setup and schedule and reinstate the transactions it reversed."""
    as_of = get_business_date()
    loan = versions.lock_loan(loan)
    modification = (
        Modification.objects.select_for_update()
        .filter(loan=loan)
        .exclude(status=ModificationStatus.CANCELLED)
        .order_by("-id")
        .first()
    )
    if modification is None:
        raise NoModificationError("This loan has no modification to cancel.")
    if modification.status == ModificationStatus.ACTIVE:
        if loan.is_terminated:
            raise LoanStateError(
                "The contract was terminated after the modification; undo the termination first.",
                code="loan_terminated",
            )
        if loan.setup_id != modification.setup_id:  # pragma: no cover - defensive
            raise ConflictError(
                "The modification's setup is not the one in force.", code="not_newest_modification"
            )
    now = timezone.now()
    status_before = modification.status
    changes: dict = {"modification.status": (status_before, ModificationStatus.CANCELLED)}
    if status_before == ModificationStatus.DRAFT:
        draft = modification.setup
        if draft is not None:
            modification.draft_terms = versions.jsonable(terms.setup_terms(draft))
            modification.setup = None
            modification.save(update_fields=["draft_terms", "setup"])
            draft.delete()
        loan.modification_in_progress = False
        loan.save(update_fields=["modification_in_progress", "updated_at"])
        changes["modificationInProgress"] = (True, False)
    else:
        reinstated = list(modification.reversed_transaction_ids)
        Transaction.objects.filter(
            loan=loan, pk__in=reinstated, reversed_by_modification_id=modification.pk
        ).update(
            reversed=False,
            reversed_on=None,
            reversed_at=None,
            reversed_by=None,
            reversal_note="",
            reversed_by_modification_id=None,
        )
        previous_setup = modification.previous_setup
        frozen = (
            list(modification.previous_schedule.periods.filter(frozen=True).order_by("period"))
            if modification.previous_schedule
            else []
        )
        loan.setup = previous_setup
        loan.mod_total -= 1
        loan.save(update_fields=["setup", "mod_total", "updated_at"])
        schedule = versions.new_schedule_version(
            loan=loan,
            reason=ScheduleReason.MODIFICATION_CANCELLED,
            actor=actor,
            note=f"Modification {modification.pk} cancelled",
            setup=previous_setup,
            frozen_periods=frozen,
        )
        loan_status = loan.status
        # From a stored state dated before the modification date only: the transactions after
        # it were allocated by the modification's replay since, so a later state of the
        # previous setup no longer holds their portions.
        versions.rebuild_schedule(loan, schedule=schedule, since=modification.modification_date)
        changes.update(
            {
                "setup": (modification.setup_id, previous_setup.pk),
                "modTotal": (loan.mod_total + 1, loan.mod_total),
                "reinstatedTransactionIds": ([], reinstated),
            }
        )
        if loan_status != loan.status:
            changes["status"] = (loan_status, loan.status)
    modification.status = ModificationStatus.CANCELLED
    modification.cancelled_at = now
    modification.cancelled_by = versions.actor_or_none(actor)
    if note:
        modification.note = note[:500]
    modification.save()
    versions.record_event(
        loan=loan,
        command="cancel_modification",
        actor=actor,
        as_of=as_of,
        reason=note,
        input={"note": note},
        changes=changes,
        result={"modificationId": modification.pk},
    )
    return modification


# --------------------------------------------------------------------------------------------
# Reads for the wizard: a step's own check, and a dry run of the activation
# --------------------------------------------------------------------------------------------


def check_modification_date(*, loan: Loan, on, as_of: date | None = None) -> None:
    """The checks ``create_modification`` makes on its date, alone: the wizard's first step
    refuses a bad date where it is entered (nothing is written)."""
    _check_date(loan, on, as_of or get_business_date())


class _DryRun(Exception):
    pass


def preview_activation(*, loan: Loan, actor, inspect):
    """Run ``activate_modification`` in a transaction that is rolled back, and return what
    ``inspect(loan)`` read before the rollback: the review shows what the activation will do as
    computed by the command itself, never a second way. Raises the command's ``DomainError``."""
    try:
        with transaction.atomic():
            activate_modification(loan=loan, actor=actor)
            raise _DryRun(inspect(Loan.objects.get(pk=loan.pk)))
    except _DryRun as done:
        return done.args[0]
