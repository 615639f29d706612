"""Commands of the loan core, and only commands. Each is one function with keyword-only
arguments and a required actor: it validates first (changing nothing on failure), runs in one
transaction, locks the loan row, writes, and records one audit row (``LoanEvent``).

What the commands (and the other apps' commands) build on lives in ``loans.versions`` (lock,
audit record, schedule versions, rebuild), the terms in ``loans.terms``, and the refusal checks
and previews in ``loans.selectors``.

Why this module is long: it holds every command of the loan core (business date, loans and
setups, the four postable transactions and their undo, contract termination and its undo,
charge-off and its undo, the payoff and the credit balance refund), one function each, as the codebase's rule asks; each
command reads top to bottom on its own, and splitting them by size alone would scatter them.
"""

from __future__ import annotations

import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from loans import charge_off as charge_offs
from loans import ledger, selectors, terms, versions
from loans.exceptions import (
    ConflictError,
    DomainError,
    DuplicateExternalIdError,
    FutureDateError,
    InvalidRequestError,
    LoanStateError,
    NotFoundError,
    SetupLockedError,
    field_error,
)
from loans.formatting import article, words
from loans.models import (
    USER_REVERSIBLE_TYPES,
    Borrower,
    BusinessDate,
    Loan,
    LoanSetup,
    LoanStatus,
    LoanSubStatus,
    ScheduleEngine,
    ScheduleReason,
    Transaction,
    TransactionType,
)
from loans.statements import Bound, bound_insert, run_together

ZERO = Decimal("0.00")


# --------------------------------------------------------------------------------------------
# Business date
# --------------------------------------------------------------------------------------------


@transaction.atomic
def set_business_date(*, new_date: date, actor, reason: str = "") -> BusinessDate:
    if not isinstance(new_date, date):
        raise InvalidRequestError("date must be a date.", errors=[field_error("date", "Invalid.")])
    problem = terms.business_date_problem(new_date)
    if problem:
        raise InvalidRequestError(
            f"The business date {new_date} is out of range. {problem}",
            code="out_of_range",
            errors=[field_error("date", problem, "out_of_range")],
        )
    before = BusinessDate.objects.select_for_update().filter(pk=1).first()
    old = before.date if before else None
    row, _ = BusinessDate.objects.update_or_create(
        pk=1, defaults={"date": new_date, "updated_by": versions.actor_or_none(actor)}
    )
    versions.record_event(
        loan=None,
        command="set_business_date",
        actor=actor,
        as_of=new_date,
        reason=reason,
        input={"date": new_date},
        changes={"date": (old, new_date)},
    )
    return row


# --------------------------------------------------------------------------------------------
# Loans and setups
# --------------------------------------------------------------------------------------------


def check_path_key(value: str | None, field: str) -> None:
    """400 ``invalid_external_id`` for an externalId no path can carry (terms.path_key_problem)."""
    problem = terms.path_key_problem(value)
    if problem:
        raise InvalidRequestError(
            f"{field} {value!r} cannot be used: {problem}",
            code="invalid_external_id",
            errors=[field_error(field, problem, "invalid_external_id")],
        )


def _validate_borrower(data: dict) -> dict:
    errors = []
    for name in ("first_name", "last_name"):
        if not str(data.get(name) or "").strip():
            errors.append(
                field_error(
                    f"borrower.{'firstName' if name == 'first_name' else 'lastName'}",
                    "This field is required.",
                    "required",
                )
            )
    tz = data.get("timezone") or "UTC"
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors.append(field_error("borrower.timezone", f"Unknown time zone {tz!r}.", "invalid"))
    if errors:
        raise InvalidRequestError(
            "The borrower is invalid.", code="invalid_borrower", errors=errors
        )
    return {**data, "timezone": tz}


def create_loan(
    *,
    actor,
    setup: dict,
    borrower: Borrower | None = None,
    borrower_data: dict | None = None,
    borrower_id: int | None = None,
    external_id: str | None = None,
    schedule_engine: str = ScheduleEngine.DYNAMIC,
) -> Loan:
    """Create a PENDING loan with its (editable) setup, and its borrower when given as data."""
    if schedule_engine not in ScheduleEngine.values:
        raise InvalidRequestError(
            f"scheduleEngine must be one of {', '.join(ScheduleEngine.values)}.",
            errors=[field_error("scheduleEngine", "Unknown value.", "invalid_choice")],
        )
    cleaned = terms.validate_terms({**terms.SETUP_DEFAULTS, **setup})
    terms.check_recalculation_engine(cleaned, schedule_engine)
    check_path_key(external_id, "externalId")
    if borrower is None and borrower_id is not None:
        borrower = Borrower.objects.filter(pk=borrower_id).first()
        if borrower is None:
            raise NotFoundError(f"Borrower {borrower_id} was not found.", code="borrower_not_found")
    if borrower is None:
        if not borrower_data:
            raise InvalidRequestError(
                "A borrower or a borrowerId is required.",
                errors=[field_error("borrower", "This field is required.", "required")],
            )
        borrower_data = _validate_borrower(borrower_data)
        borrower_external_id = borrower_data.get("external_id") or None
        check_path_key(borrower_external_id, "borrower.externalId")
        borrower_data = {**borrower_data, "external_id": borrower_external_id}
        if (
            borrower_external_id
            and Borrower.objects.filter(external_id=borrower_external_id).exists()
        ):
            raise DuplicateExternalIdError(
                f"A borrower with external id {borrower_external_id!r} already exists.",
                errors=[
                    field_error("borrower.externalId", "Already used.", "duplicate_external_id")
                ],
            )
    if external_id and Loan.objects.filter(external_id=external_id).exists():
        raise DuplicateExternalIdError(
            f"A loan with external id {external_id!r} already exists.",
            errors=[field_error("externalId", "Already used.", "duplicate_external_id")],
        )
    try:
        with transaction.atomic():
            if borrower is None:
                borrower = Borrower.objects.create(**borrower_data)
            loan = Loan.objects.create(
                external_id=external_id or f"tmp-{uuid.uuid4().hex}",
                borrower=borrower,
                schedule_engine=schedule_engine,
                created_by=versions.actor_or_none(actor),
            )
            loan.display_id = f"LN-{loan.pk:06d}"
            if not external_id:
                loan.external_id = f"L-{uuid.uuid4().hex[:12].upper()}"
            loan_setup = LoanSetup.objects.create(loan=loan, **cleaned)
            loan.setup = loan_setup
            loan.save(update_fields=["display_id", "external_id", "setup"])
            versions.record_event(
                loan=loan,
                command="create_loan",
                actor=actor,
                input={"externalId": external_id, "scheduleEngine": schedule_engine, **cleaned},
                changes={"status": (None, loan.status)},
            )
    except IntegrityError as exc:
        error = _creation_error(exc, external_id=external_id)
        if error is None:
            raise
        raise error
    return loan


# What a constraint refused at loan creation, when a concurrent request or a defect got past
# the validation: (field, detail, code) by constraint name.
CREATION_CONSTRAINTS = {
    "setup_amount_positive": ("loanAmount", "Must be positive.", "min_value"),
    "setup_rate_not_negative": ("loanRate", "Must not be negative.", "min_value"),
    "setup_term_positive": ("loanTerm", "Must be positive.", "min_value"),
    "setup_payment_positive": ("payment", "Must be positive.", "payment_rounds_to_zero"),
    "setup_late_fee_positive": ("lateFeeAmount", "Must be positive.", "min_value"),
}


def constraint_name(exc: IntegrityError) -> str:
    """The violated constraint's name (PostgreSQL's diagnostics) or, on SQLite, the message
    naming it ("CHECK constraint failed: <name>", "UNIQUE constraint failed: <table.column>")."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) or str(exc)


def _creation_error(exc: IntegrityError, *, external_id: str | None) -> DomainError | None:
    name = constraint_name(exc)
    if "borrower" in name and "external_id" in name:  # a concurrent request took it
        return DuplicateExternalIdError(
            "The borrower's external id is already used.",
            errors=[field_error("borrower.externalId", "Already used.", "duplicate_external_id")],
        )
    if "external_id" in name:
        return DuplicateExternalIdError(
            f"A loan with external id {external_id!r} already exists."
            if external_id
            else "The generated external id is already used; retry the request.",
            errors=[field_error("externalId", "Already used.", "duplicate_external_id")],
        )
    for constraint, (field, detail, code) in CREATION_CONSTRAINTS.items():
        if constraint in name:
            return InvalidRequestError(
                "The loan terms are invalid.",
                code="invalid_terms",
                errors=[field_error(field, detail, code)],
            )
    return None


@transaction.atomic
def update_setup(*, setup: LoanSetup, changes: dict, actor) -> LoanSetup:
    """Change the terms of a setup that is not active yet (a PENDING loan's, or a
    modification's draft). A computed payment is recomputed; a given one is kept."""
    versions.lock_loan(setup.loan_id)
    setup = LoanSetup.objects.select_for_update().get(pk=setup.pk)
    if setup.active:
        raise SetupLockedError(
            f"Setup {setup.pk} is active and locked; change an active loan through a modification."
        )
    unknown = set(changes) - set(terms.SETUP_FIELDS)
    if unknown:
        raise InvalidRequestError(f"Unknown setup fields: {', '.join(sorted(unknown))}.")
    cleaned = terms.validate_terms({**terms.setup_values(setup), **changes})
    terms.check_recalculation_engine(cleaned, setup.loan.schedule_engine)
    before = terms.setup_terms(setup)
    for name, value in cleaned.items():
        setattr(setup, name, value)
    setup.save()
    versions.record_event(
        loan=setup.loan,
        command="update_setup",
        actor=actor,
        as_of=selectors.get_business_date(),
        input={terms.API_NAMES.get(k, k): v for k, v in changes.items()},
        changes={
            k: (before[k], cleaned[k]) for k in before if k in cleaned and before[k] != cleaned[k]
        },
        result={"setupId": setup.pk},
    )
    return setup


@dataclass(frozen=True)
class ActivationResult:
    activated: bool
    loan: Loan


@transaction.atomic
def activate_loan(*, loan: Loan, actor, as_of: date | None = None) -> ActivationResult:
    """Activate a PENDING loan: lock its setup, disburse on the contract date and generate the
    schedule. Activating an ACTIVE loan with nothing pending returns ``activated=False``.

    A loan whose modification is in progress is refused (409 ``modification_in_progress``):
    the draft is activated by the modifications app's ``activate_modification``.
    """
    as_of = as_of or selectors.get_business_date()
    loan = versions.lock_loan(loan)
    if loan.status != LoanStatus.PENDING:
        if loan.modification_in_progress:
            raise ConflictError(
                "This loan has a modification in progress; activate it as a modification.",
                code="modification_in_progress",
            )
        return ActivationResult(activated=False, loan=loan)
    setup = LoanSetup.objects.select_for_update().get(pk=loan.setup_id)
    if setup.contract_date > as_of:
        raise FutureDateError(
            f"The contract date {setup.contract_date} is after the business date {as_of}; "
            "a loan is disbursed on its contract date.",
            errors=[field_error("contractDate", "After the business date.", "future_date")],
        )
    setup.active = True
    setup.activated_at = timezone.now()
    setup.save(update_fields=["active", "activated_at"])
    Transaction.objects.create(
        loan=loan,
        type=TransactionType.DISBURSEMENT,
        date=setup.contract_date,
        amount=setup.loan_amount,
        principal_portion=setup.loan_amount,
        note="Disbursement on activation",
        created_by=versions.actor_or_none(actor),
    )
    loan.status = LoanStatus.ACTIVE
    loan.save(update_fields=["status", "updated_at"])
    schedule = versions.new_schedule_version(
        loan=loan, reason=ScheduleReason.ACTIVATION, actor=actor, setup=setup, frozen_periods=[]
    )
    versions.rebuild_schedule(loan, schedule=schedule)
    versions.record_event(
        loan=loan,
        command="activate_loan",
        actor=actor,
        as_of=as_of,
        changes={"status": (LoanStatus.PENDING, LoanStatus.ACTIVE), "setup.active": (False, True)},
        result={"scheduleVersion": schedule.version},
    )
    return ActivationResult(activated=True, loan=loan)


# --------------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------------

POSTABLE_TYPES = (
    TransactionType.REPAYMENT,
    TransactionType.CHARGE,
    TransactionType.ADVANCEMENT,
    TransactionType.CREDIT,
)


def _check_transaction_date(
    loan: Loan, on: date, as_of: date, posting: versions.PostingState | None = None
) -> None:
    if on > as_of:
        raise FutureDateError(
            f"The transaction date {on} is after the business date {as_of}.",
            errors=[field_error("transactionDate", "After the business date.", "future_date")],
        )
    contract = versions.original_contract_date(loan, posting)
    if contract and on < contract:
        raise InvalidRequestError(
            f"The transaction date {on} is before the loan's contract date {contract}.",
            code="date_before_contract",
            errors=[
                field_error("transactionDate", "Before the contract date.", "date_before_contract")
            ],
        )
    if loan.setup.mod_id is not None and on <= loan.setup.contract_date:
        raise InvalidRequestError(
            f"The transaction date {on} is on or before the latest modification date "
            f"{loan.setup.contract_date}.",
            code="date_before_modification",
            errors=[
                field_error(
                    "transactionDate", "Before the modification.", "date_before_modification"
                )
            ],
        )


def _check_not_settled(loan: Loan) -> None:
    if loan.status == LoanStatus.CLOSED:
        raise LoanStateError("The loan is closed (paid off).", code="loan_closed")
    if loan.status == LoanStatus.OVERPAID:
        raise LoanStateError(
            "Nothing is owed: the loan is overpaid (refund its credit balance instead).",
            code="loan_overpaid",
        )


def _create_transaction(
    loan: Loan,
    *,
    type: str,
    on: date,
    amount: Decimal,
    actor,
    external_id: str | None,
    note: str,
    **portions: Decimal,
) -> Transaction:
    """Write the command's transaction row; an external id taken in the meantime (the unique
    constraint, after ``check_external_id``) is the same refusal as one taken before."""
    tx = _new_transaction(
        loan, type=type, on=on, amount=amount, actor=actor, external_id=external_id, note=note
    )
    for name, value in portions.items():
        setattr(tx, name, value)
    try:
        with transaction.atomic():
            tx.save(force_insert=True)
    except IntegrityError:
        raise _external_id_used(external_id)
    return tx


def _new_transaction(loan: Loan, *, type, on, amount, actor, external_id, note) -> Transaction:
    """The command's transaction row, not written yet."""
    return Transaction(
        loan=loan,
        type=type,
        date=on,
        amount=amount,
        external_id=external_id or None,
        note=(note or "")[:500],
        created_by=versions.actor_or_none(actor),
    )


def _insert_transaction(tx: Transaction) -> None:
    """``tx.save(force_insert=True)`` as an INSERT bound once (``loans.statements``): the same
    row (``created_at`` now, as ``auto_now_add`` sets it), its id set on ``tx``."""
    (tx.pk,) = run_together(_bind_insert(tx))
    tx._state.adding, tx._state.db = False, "default"


def _bind_insert(tx: Transaction) -> Bound:
    """``_insert_transaction``'s INSERT as a statement (its result: the new id)."""
    tx.created_at = timezone.now()
    values = {f.attname: getattr(tx, f.attname) for f in _TRANSACTION_FIELDS}
    return bound_insert(Transaction, returning=True, **values)


_TRANSACTION_FIELDS = [f for f in Transaction._meta.concrete_fields if not f.primary_key]


def _external_id_used(external_id: str | None) -> DuplicateExternalIdError:
    """The refusal of an external id the unique constraint found taken at the insert."""
    return DuplicateExternalIdError(
        f"The external id {external_id!r} is already used.",
        errors=[field_error("externalId", "Already used.", "duplicate_external_id")],
    )


def _check_money_command(loan: Loan, amount, *, field: str) -> Loan:
    """The first checks of a money command: a positive amount, then (under the loan's lock) a
    loan that is active. Returns the locked loan."""
    _check_positive(amount, field=field)
    loan = versions.lock_loan(loan)
    _check_active(loan)
    return loan


def _check_positive(amount, *, field: str) -> None:
    if not isinstance(amount, Decimal) or amount <= 0:
        raise InvalidRequestError(
            "The amount must be positive.",
            errors=[field_error(field, "Must be positive.", "min_value")],
        )


def _check_active(loan: Loan) -> None:
    if loan.status == LoanStatus.PENDING:
        raise LoanStateError(
            "The loan is not active yet: activate it first.", code="loan_not_active"
        )


def post_transaction(
    *,
    loan: Loan,
    type: str,
    on: date,
    amount: Decimal,
    actor,
    external_id: str | None = None,
    note: str = "",
    as_of: date | None = None,
    locked: tuple[Bound, ...] = (),
    guard=None,
    then=None,
    savepoint: bool = True,
) -> Transaction:
    """Post a repayment, charge, advancement or credit, then re-derive the schedule.

    For a caller that records something with the posting (the dispatcher), in the command's
    own round trips on PostgreSQL: ``locked``, statements run right after the command's read
    under the loan lock, their results given to ``guard`` before any check (it may raise to
    refuse: nothing was written by the command); ``then(tx)``, statements run with the
    command's last write (its audit row). ``savepoint=False``: the caller's transaction is
    dedicated to the command (a refusal must leave it by the exception, rolling it all
    back), so no savepoint is taken."""
    with transaction.atomic(savepoint=savepoint):
        return _post_transaction(
            loan=loan,
            type=type,
            on=on,
            amount=amount,
            actor=actor,
            external_id=external_id,
            note=note,
            as_of=as_of,
            locked=locked,
            guard=guard,
            then=then,
        )


def _post_transaction(
    *, loan, type, on, amount, actor, external_id, note, as_of, locked, guard, then
) -> Transaction:
    as_of = as_of or selectors.get_business_date()
    if type not in POSTABLE_TYPES:
        raise InvalidRequestError(f"Transactions of type {type} cannot be posted here.")
    _check_positive(amount, field="amount")
    # One round trip (on PostgreSQL): the loan row lock, then what the command reads under it
    # (the schedule and its periods for the overpayment check and the rebuild, the latest
    # transaction's date, the original contract date: ``versions.PostingState``) and whether
    # the external id is taken; each statement compiled once.
    pk = loan.pk if isinstance(loan, Loan) else loan
    found, rows, *used = run_together(
        versions.bind_loan_lock(pk),
        versions.PostingState.bind(pk),
        *([versions.bind_external_id_check(external_id)] if external_id else []),
        *locked,
    )
    if locked:
        used, also = used[: len(used) - len(locked)], used[len(used) - len(locked) :]
        guard(also)
    loan = versions.locked_loan(pk, found)
    _check_active(loan)
    if type != TransactionType.CHARGE:
        _check_not_settled(loan)
    if loan.modification_in_progress:
        raise ConflictError(
            "A modification is in progress: activate or cancel it first.",
            code="modification_in_progress",
        )
    if type == TransactionType.ADVANCEMENT and loan.is_terminated:
        raise LoanStateError(
            "No principal can be advanced on a terminated contract.", code="loan_terminated"
        )
    if type == TransactionType.ADVANCEMENT and loan.charged_off:
        raise LoanStateError(
            "No principal can be advanced on a charged-off loan.", code="loan_charged_off"
        )
    posting = versions.PostingState.from_rows(loan, rows)
    _check_transaction_date(loan, on, as_of, posting)
    if used and used[0]:
        raise versions.external_id_refusal(external_id)
    if type in (TransactionType.REPAYMENT, TransactionType.CREDIT):
        if posting is not None:
            outstanding = posting.stored.live_outstanding()
        else:
            outstanding = versions.live_outstanding(loan)
        if amount > outstanding:
            raise InvalidRequestError(
                f"The amount {amount} is more than the {outstanding} outstanding.",
                code="overpayment",
                # The request field: a repayment's is transactionAmount, a credit's amount.
                errors=[
                    field_error(
                        "transactionAmount" if type == TransactionType.REPAYMENT else "amount",
                        f"At most {outstanding}.",
                        "overpayment",
                    )
                ],
            )
    status_before = loan.status
    tx = _new_transaction(
        loan, type=type, on=on, amount=amount, actor=actor, external_id=external_id, note=note
    )
    # Dated after the history: replayed from the stored periods before it is written, so it
    # is written once, with its portions, and nothing is read again.
    derived = versions.resume_appended(loan, posting, tx) if posting is not None else None
    # No savepoint: a refusal here leaves this command's own transaction (or savepoint) by
    # the exception, which rolls it back. The INSERT bound once (loans.statements).
    if derived is not None:  # the INSERT in the round trip of the schedule's first write
        try:
            versions.rebuild_schedule(
                loan, appended=tx, derived=derived, posting=posting, insert=_bind_insert(tx)
            )
        except IntegrityError as exc:
            if "external_id" not in str(exc):
                raise
            raise _external_id_used(external_id)
        # Opening a new period: the replay's state before it is stored (a backdated command
        # then replays from there, not from the latest rebuild's states).
        versions.store_appended_state(loan, posting, tx)
    else:
        try:
            _insert_transaction(tx)
        except IntegrityError:
            raise _external_id_used(external_id)
        versions.rebuild_schedule(loan, appended=tx, posting=posting)  # sets tx's portions
    versions.record_event(
        loan=loan,
        command=f"post_{type.lower()}",
        actor=actor,
        as_of=as_of,
        reason=note,
        input={"type": type, "date": on, "amount": amount, "externalId": external_id},
        changes={"status": (status_before, loan.status)} if status_before != loan.status else {},
        result={
            "transactionId": tx.pk,
            "principalPortion": tx.principal_portion,
            "interestPortion": tx.interest_portion,
            "feesPortion": tx.fees_portion,
        },
        also=then(tx) if then else (),
    )
    return tx


@transaction.atomic
def reverse_transaction(
    *,
    loan: Loan,
    transaction_id: int,
    actor,
    note: str = "",
    reversal_external_id: str | None = None,
    as_of: date | None = None,
) -> Transaction:
    """Undo a repayment, charge, advancement or credit: it is kept, marked reversed, and the
    schedule is re-derived without it."""
    as_of = as_of or selectors.get_business_date()
    loan = versions.lock_loan(loan)
    tx = Transaction.objects.select_for_update().filter(pk=transaction_id, loan=loan).first()
    if tx is None:
        raise NotFoundError(
            f"Transaction {transaction_id} of loan {loan.pk} was not found.",
            code="transaction_not_found",
        )
    if tx.type not in USER_REVERSIBLE_TYPES:
        raise ConflictError(
            f"{article(words(tx.type)).capitalize()} transaction cannot be undone with command=undo.",
            code="transaction_not_reversible",
        )
    if tx.reversed:
        raise ConflictError("The transaction is already reversed.", code="already_reversed")
    if loan.modification_in_progress:
        raise ConflictError(
            "A modification is in progress: activate or cancel it first.",
            code="modification_in_progress",
        )
    if loan.setup.mod_id is not None and tx.date <= loan.setup.contract_date:
        raise ConflictError(
            "The transaction is dated before the latest modification; cancel the modification "
            "first.",
            code="transaction_before_modification",
        )
    versions.check_external_id(reversal_external_id, field="reversalExternalId")
    versions.mark_reversed(
        tx, actor=actor, as_of=as_of, note=note, reversal_external_id=reversal_external_id
    )
    status_before = loan.status
    versions.rebuild_schedule(loan, since=tx.date)
    versions.record_event(
        loan=loan,
        command="reverse_transaction",
        actor=actor,
        as_of=as_of,
        reason=note,
        input={"transactionId": tx.pk, "reversalExternalId": reversal_external_id},
        changes={
            "transaction.reversed": (False, True),
            **({"status": (status_before, loan.status)} if status_before != loan.status else {}),
        },
    )
    return tx


# --------------------------------------------------------------------------------------------
# Contract termination and its undo (seed 002, DESIGN §3)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TerminationResult:
    loan: Loan
    transaction: Transaction


def _summary_changes(before: ledger.Summary | None, after: ledger.Summary | None) -> dict:
    def pick(s):
        if s is None:
            return {"nextDueDate": None, "outstanding": None}
        return {"nextDueDate": s.next_due_date, "outstanding": s.total_outstanding}

    b, a = pick(before), pick(after)
    return {k: (b[k], a[k]) for k in b}


@transaction.atomic
def terminate_contract(
    *,
    loan: Loan,
    actor,
    note: str = "",
    external_id: str | None = None,
    as_of: date | None = None,
) -> TerminationResult:
    """Terminate a DYNAMIC loan's contract on the business date (seed 002).

    Records a non-cash CONTRACT_TERMINATION transaction carrying everything outstanding on the
    rewritten schedule, tags the loan ``CONTRACT_TERMINATION`` (it stays ACTIVE) and starts a
    new schedule version in which every installment due on or after the date is collapsed into
    one due on the date (kept as is on or after maturity).
    """
    as_of = as_of or selectors.get_business_date()
    loan = versions.lock_loan(loan)
    refusals = selectors.termination_refusals(loan, as_of=as_of)
    if refusals:
        raise ConflictError(
            "The contract cannot be terminated: " + " ".join(r["detail"] for r in refusals),
            code="contract_termination_not_allowed",
            errors=refusals,
        )
    versions.check_external_id(external_id)
    preview = selectors.termination_preview(loan, as_of, ())
    if not preview.allowed:  # DESIGN §1: never with nothing outstanding
        raise ConflictError(
            "The contract cannot be terminated: " + " ".join(r["detail"] for r in preview.refusals),
            code="nothing_outstanding",
            errors=list(preview.refusals),
        )
    tx = _create_transaction(
        loan,
        type=TransactionType.CONTRACT_TERMINATION,
        on=as_of,
        amount=preview.total,
        actor=actor,
        external_id=external_id,
        note=note,
        principal_portion=preview.principal,
        interest_portion=preview.interest,
        fees_portion=preview.fees,
    )
    sub_status_before = loan.sub_status
    loan.sub_status = LoanSubStatus.CONTRACT_TERMINATION
    loan.save(update_fields=["sub_status", "updated_at"])
    schedule = versions.new_schedule_version(
        loan=loan, reason=ScheduleReason.CONTRACT_TERMINATION, actor=actor, note=note
    )
    versions.rebuild_schedule(loan, schedule=schedule, derived=preview.replay)
    versions.record_event(
        loan=loan,
        command="terminate_contract",
        actor=actor,
        as_of=as_of,
        reason=note,
        input={"externalId": external_id, "note": note},
        changes={
            "subStatus": (sub_status_before, loan.sub_status),
            **_summary_changes(preview.before, preview.after),
        },
        result={
            "transactionId": tx.pk,
            "amount": tx.amount,
            "principalPortion": tx.principal_portion,
            "interestPortion": tx.interest_portion,
            "feesPortion": tx.fees_portion,
            "scheduleVersion": schedule.version,
        },
    )
    return TerminationResult(loan=loan, transaction=tx)


@transaction.atomic
def undo_contract_termination(
    *,
    loan: Loan,
    actor,
    note: str = "",
    reversal_external_id: str | None = None,
    as_of: date | None = None,
) -> TerminationResult:
    """Undo a contract termination: the termination transaction is reversed (kept), the
    sub-status cleared and a new schedule version re-derived from the setup and the remaining
    transactions."""
    as_of = as_of or selectors.get_business_date()
    loan = versions.lock_loan(loan)
    tx, refusals = selectors.undo_termination_state(loan)
    _undo_flagging_transaction(
        loan,
        tx,
        refusals,
        what="The contract termination",
        command="undo_contract_termination",
        schedule_reason=ScheduleReason.UNDO_CONTRACT_TERMINATION,
        flag=("sub_status", "subStatus", None),
        actor=actor,
        as_of=as_of,
        note=note,
        reversal_external_id=reversal_external_id,
    )
    return TerminationResult(loan=loan, transaction=tx)


def _undo_flagging_transaction(
    loan: Loan,
    tx: Transaction,
    refusals: list[dict],
    *,
    what: str,
    command: str,
    schedule_reason: str,
    flag: tuple[str, str, object],
    actor,
    as_of: date,
    note: str,
    reversal_external_id: str | None,
) -> None:
    """The undo of a non-monetary command that set a flag on the loan (termination: the
    sub-status; charge-off: ``charged_off``): refused with every check at once, else its
    transaction reversed, the flag (field, API name, cleared value) cleared, the schedule
    rebuilt in a new version and the audit event recorded."""
    if refusals:
        raise ConflictError(
            f"{what} cannot be undone: " + " ".join(r["detail"] for r in refusals),
            code=refusals[0]["code"],
            errors=refusals,
        )
    field, api_name, cleared = flag
    versions.check_external_id(reversal_external_id, field="reversalExternalId")
    before = selectors.loan_summary(loan, as_of=as_of)
    versions.mark_reversed(
        tx, actor=actor, as_of=as_of, note=note, reversal_external_id=reversal_external_id
    )
    previous = getattr(loan, field)
    setattr(loan, field, cleared)
    loan.save(update_fields=[field, "updated_at"])
    schedule = versions.new_schedule_version(
        loan=loan, reason=schedule_reason, actor=actor, note=note
    )
    result = versions.rebuild_schedule(loan, schedule=schedule, since=tx.date)
    versions.record_event(
        loan=loan,
        command=command,
        actor=actor,
        as_of=as_of,
        reason=note,
        input={"reversalExternalId": reversal_external_id, "note": note},
        changes={
            api_name: (previous, cleared),
            "transaction.reversed": (False, True),
            **_summary_changes(before, ledger.summarize(result.periods, as_of=as_of)),
        },
        result={"transactionId": tx.pk, "scheduleVersion": schedule.version},
    )


# --------------------------------------------------------------------------------------------
# Charge-off and its undo (DESIGN §12; checks and previews in loans.charge_off)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeOffResult:
    loan: Loan
    transaction: Transaction


@transaction.atomic
def charge_off(
    loan: Loan | int | None = None,
    *,
    actor,
    note: str = "",
    external_id: str | None = None,
    reason: str = "",
    as_of: date | None = None,
) -> ChargeOffResult:
    """Charge the loan off on the business date (Fineract's charge-off): a non-cash CHARGE_OFF
    transaction carrying everything outstanding on the date, ``chargedOff=true``, and a new
    schedule version in which interest stops accruing (``loans.ledger.charge_off``; a
    recalculating loan's daily accrual stops). Later repayments are recoveries."""
    as_of = as_of or selectors.get_business_date()
    loan = versions.lock_loan(loan)
    refusals = charge_offs.charge_off_refusals(loan, as_of=as_of)
    if refusals:
        raise ConflictError(
            "The loan cannot be charged off: " + " ".join(r["detail"] for r in refusals),
            code="charge_off_not_allowed",
            errors=refusals,
        )
    versions.check_external_id(external_id)
    preview = charge_offs.charge_off_preview(loan, as_of)
    try:
        with transaction.atomic():
            tx = Transaction.objects.create(
                loan=loan,
                type=TransactionType.CHARGE_OFF,
                date=as_of,
                amount=preview.total,
                principal_portion=preview.principal,
                interest_portion=preview.interest,
                fees_portion=preview.fees,
                external_id=external_id or None,
                note=(note or "")[:500],
                created_by=versions.actor_or_none(actor),
            )
    except IntegrityError:
        raise DuplicateExternalIdError(
            f"The external id {external_id!r} is already used.",
            errors=[field_error("externalId", "Already used.", "duplicate_external_id")],
        )
    loan.charged_off = True
    loan.save(update_fields=["charged_off", "updated_at"])
    schedule = versions.new_schedule_version(
        loan=loan, reason=ScheduleReason.CHARGE_OFF, actor=actor, note=note
    )
    versions.rebuild_schedule(loan, schedule=schedule)
    tx.refresh_from_db()
    versions.record_event(
        loan=loan,
        command="charge_off",
        actor=actor,
        as_of=as_of,
        reason=reason or note,
        input={"externalId": external_id, "note": note, "reason": reason},
        changes={
            "chargedOff": (False, True),
            **_summary_changes(preview.before, preview.after),
        },
        result={
            "transactionId": tx.pk,
            "amount": tx.amount,
            "principalPortion": tx.principal_portion,
            "interestPortion": tx.interest_portion,
            "feesPortion": tx.fees_portion,
            "scheduleVersion": schedule.version,
        },
    )
    return ChargeOffResult(loan=loan, transaction=tx)


@transaction.atomic
def undo_charge_off(
    loan: Loan | int | None = None,
    *,
    actor,
    note: str = "",
    reversal_external_id: str | None = None,
    as_of: date | None = None,
) -> ChargeOffResult:
    """Undo the charge-off while it is the loan's latest user transaction: it is reversed
    (kept), ``chargedOff`` cleared and a schedule version re-derived without it."""
    as_of = as_of or selectors.get_business_date()
    loan = versions.lock_loan(loan)
    tx, refusals = charge_offs.undo_charge_off_state(loan)
    _undo_flagging_transaction(
        loan,
        tx,
        refusals,
        what="The charge-off",
        command="undo_charge_off",
        schedule_reason=ScheduleReason.UNDO_CHARGE_OFF,
        flag=("charged_off", "chargedOff", False),
        actor=actor,
        as_of=as_of,
        note=note,
        reversal_external_id=reversal_external_id,
    )
    return ChargeOffResult(loan=loan, transaction=tx)


# --------------------------------------------------------------------------------------------
# Payoff and credit balance refund (DESIGN §9)
# --------------------------------------------------------------------------------------------


@transaction.atomic
def post_payoff(
    *,
    loan: Loan,
    on: date,
    amount: Decimal,
    actor,
    external_id: str | None = None,
    note: str = "",
    as_of: date | None = None,
) -> Transaction:
    """Settle the loan on ``on``: a PAYOFF repayment of exactly the payoff total for that date
    (``selectors.payoff``), after which the schedule is rewritten so that interest not yet
    earned is dropped and the loan is CLOSED with nothing left (a new schedule version)."""
    as_of = as_of or selectors.get_business_date()
    loan = _check_money_command(loan, amount, field="transactionAmount")
    _check_not_settled(loan)
    if loan.modification_in_progress:
        raise ConflictError(
            "A modification is in progress: activate or cancel it first.",
            code="modification_in_progress",
        )
    _check_transaction_date(loan, on, as_of)
    versions.check_external_id(external_id)
    quote = selectors.payoff(loan, on=on)
    if quote.total <= 0:
        raise LoanStateError(f"Nothing is outstanding on {on}.", code="nothing_outstanding")
    if amount != quote.total:
        raise InvalidRequestError(
            f"The payoff on {on} is {quote.total}, not {amount}.",
            code="payoff_amount_mismatch",
            errors=[
                field_error(
                    "transactionAmount", f"Must be {quote.total}.", "payoff_amount_mismatch"
                )
            ],
        )
    tx = _create_transaction(
        loan,
        type=TransactionType.PAYOFF,
        on=on,
        amount=amount,
        actor=actor,
        external_id=external_id,
        note=note,
    )
    status_before = loan.status
    schedule = versions.new_schedule_version(
        loan=loan, reason=ScheduleReason.PAYOFF, actor=actor, note=note or f"Payoff on {on}"
    )
    versions.rebuild_schedule(loan, schedule=schedule)
    tx.refresh_from_db()
    versions.record_event(
        loan=loan,
        command="post_payoff",
        actor=actor,
        as_of=as_of,
        reason=note,
        input={"date": on, "amount": amount, "externalId": external_id},
        changes={"status": (status_before, loan.status)},
        result={
            "transactionId": tx.pk,
            "principalPortion": tx.principal_portion,
            "interestPortion": tx.interest_portion,
            "feesPortion": tx.fees_portion,
            "scheduleVersion": schedule.version,
        },
    )
    return tx


@transaction.atomic
def post_credit_balance_refund(
    *,
    loan: Loan,
    on: date,
    amount: Decimal,
    actor,
    external_id: str | None = None,
    note: str = "",
    as_of: date | None = None,
) -> Transaction:
    """Pay back (part of) the loan's credit balance. Refunding all of it leaves the loan
    CLOSED. The transaction's overpayment portion is its amount: it draws on the credit."""
    as_of = as_of or selectors.get_business_date()
    loan = _check_money_command(loan, amount, field="transactionAmount")
    credit = selectors.credit_balance(loan)
    if amount > credit:
        raise InvalidRequestError(
            f"The refund {amount} is more than the credit balance {credit}.",
            code="refund_above_credit_balance",
            errors=[
                field_error(
                    "transactionAmount", f"At most {credit}.", "refund_above_credit_balance"
                )
            ],
        )
    _check_transaction_date(loan, on, as_of)
    versions.check_external_id(external_id)
    tx = _create_transaction(
        loan,
        type=TransactionType.CREDIT_BALANCE_REFUND,
        on=on,
        amount=amount,
        actor=actor,
        external_id=external_id,
        note=note,
        overpayment_portion=amount,
    )
    status_before = loan.status
    versions.rebuild_schedule(loan)
    versions.record_event(
        loan=loan,
        command="post_credit_balance_refund",
        actor=actor,
        as_of=as_of,
        reason=note,
        input={"date": on, "amount": amount, "externalId": external_id},
        changes={
            "creditBalance": (credit, credit - amount),
            **({"status": (status_before, loan.status)} if status_before != loan.status else {}),
        },
        result={"transactionId": tx.pk},
    )
    return tx
