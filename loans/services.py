"""Commands of the loan core. Each is one function with keyword-only arguments and a required
actor: it validates first (changing nothing on failure), runs in one transaction, locks the loan
row, writes, and records one audit row (``LoanEvent``).

Other apps' commands build on the helpers here: ``lock_loan``, ``rebuild_schedule``,
``new_schedule_version``, ``record_event``, ``terms_for``.
"""

from __future__ import annotations

import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from loans import ledger, selectors
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
from loans.models import (
    USER_REVERSIBLE_TYPES,
    Borrower,
    BusinessDate,
    CalcType,
    DaysInYear,
    Loan,
    LoanEvent,
    LoanSetup,
    LoanStatus,
    LoanSubStatus,
    PaymentFrequency,
    RoundingMode,
    Schedule,
    ScheduleEngine,
    SchedulePeriod,
    ScheduleReason,
    TerminationInterest,
    Transaction,
    TransactionType,
)
from loans.schedules import PERIODS_PER_YEAR, PaymentTooSmallError, Terms, generate_schedule
from loans.selectors import get_business_date

ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal("999999999999.99")
MAX_TERM = Decimal("1200")
MAX_RATE = Decimal("1000")
MAX_YEARS = 50  # the longest tenor accepted: beyond it a cent-rounded payment can fall below
# the interest of some periods and the balance compounds for centuries.

SETUP_FIELDS = (
    "loan_amount",
    "loan_rate",
    "loan_term",
    "payment_frequency",
    "contract_date",
    "first_payment_date",
    "payment",
    "calc_type",
    "days_in_year",
    "rounding_mode",
    "termination_interest",
)
# API (camelCase) names, used in field errors so API consumers can map them to their input.
API_NAMES = {
    "loan_amount": "loanAmount",
    "loan_rate": "loanRate",
    "loan_term": "loanTerm",
    "payment_frequency": "paymentFrequency",
    "contract_date": "contractDate",
    "first_payment_date": "firstPaymentDate",
    "payment": "payment",
    "calc_type": "calcType",
    "days_in_year": "daysInYear",
    "rounding_mode": "roundingMode",
    "termination_interest": "terminationInterest",
}
CHOICES = {
    "payment_frequency": PaymentFrequency,
    "calc_type": CalcType,
    "days_in_year": DaysInYear,
    "rounding_mode": RoundingMode,
    "termination_interest": TerminationInterest,
}


# --------------------------------------------------------------------------------------------
# Helpers shared by every app's commands
# --------------------------------------------------------------------------------------------


def lock_loan(loan: Loan | int) -> Loan:
    """Lock the loan row for the rest of the transaction and return it fresh from the database.

    Must be called inside ``transaction.atomic``. On SQLite ``select_for_update`` is a no-op and
    SQLite serialises writers itself.
    """
    pk = loan.pk if isinstance(loan, Loan) else loan
    try:
        return Loan.objects.select_for_update(of=("self",)).select_related("setup").get(pk=pk)
    except Loan.DoesNotExist:
        raise NotFoundError(f"Loan {pk} was not found.", code="loan_not_found")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def record_event(
    *,
    loan: Loan | None,
    command: str,
    actor,
    as_of: date | None = None,
    reason: str = "",
    input: dict | None = None,
    changes: dict | None = None,
    result: dict | None = None,
) -> LoanEvent:
    """Append one audit row. ``changes`` maps a field to ``(before, after)``."""
    return LoanEvent.objects.create(
        loan=loan,
        command=command,
        actor=actor if getattr(actor, "pk", None) else None,
        business_date=as_of,
        reason=(reason or "")[:500],
        input=_jsonable(input or {}),
        changes=_jsonable({k: list(v) for k, v in (changes or {}).items()}),
        result=_jsonable(result or {}),
    )


def terms_for(setup: LoanSetup) -> Terms:
    return Terms(
        loan_amount=setup.loan_amount,
        annual_rate_percent=setup.loan_rate,
        term=setup.loan_term,
        frequency=setup.payment_frequency,
        contract_date=setup.contract_date,
        first_payment_date=setup.first_payment_date,
        payment=setup.payment if setup.payment_is_given else None,
        calc_type=setup.calc_type,
        days_in_year=setup.days_in_year,
        rounding_mode=setup.rounding_mode,
    )


def _actor(actor):
    return actor if getattr(actor, "pk", None) else None


def new_schedule_version(
    *,
    loan: Loan,
    reason: str,
    actor,
    note: str = "",
    setup: LoanSetup | None = None,
    frozen_periods: list | None = None,
) -> Schedule:
    """Retire the current schedule version (its rows stay readable) and start a new one.

    ``frozen_periods`` (history kept from before a modification date) are copied into the new
    version; by default the current version's frozen periods are carried over. The new
    version's live periods are written by ``rebuild_schedule``.
    """
    current = Schedule.objects.filter(loan=loan, is_current=True).first()
    if frozen_periods is None:
        frozen_periods = list(current.periods.filter(frozen=True)) if current else []
    version = 1
    if current:
        version = current.version + 1
        Schedule.objects.filter(pk=current.pk).update(is_current=False)
    schedule = Schedule.objects.create(
        loan=loan,
        version=version,
        setup=setup or loan.setup,
        reason=reason,
        note=note[:500],
        created_by=_actor(actor),
    )
    SchedulePeriod.objects.bulk_create(
        SchedulePeriod(
            schedule=schedule,
            period=p.period,
            from_date=p.from_date,
            due_date=p.due_date,
            principal_due=p.principal_due,
            interest_due=p.interest_due,
            fees_due=p.fees_due,
            principal_paid=p.principal_paid,
            interest_paid=p.interest_paid,
            fees_paid=p.fees_paid,
            balance_after=p.balance_after,
            complete=p.complete,
            obligations_met_on_date=p.obligations_met_on_date,
            frozen=True,
        )
        for p in frozen_periods
    )
    return schedule


def _to_state(row: SchedulePeriod) -> ledger.PeriodState:
    return ledger.PeriodState(
        period=row.period,
        from_date=row.from_date,
        due_date=row.due_date,
        principal_due=row.principal_due,
        interest_due=row.interest_due,
        fees_due=row.fees_due,
        principal_paid=row.principal_paid,
        interest_paid=row.interest_paid,
        fees_paid=row.fees_paid,
        balance_after=row.balance_after,
        complete=row.complete,
        obligations_met_on_date=row.obligations_met_on_date,
        frozen=row.frozen,
    )


def replay_transactions(loan: Loan, schedule: Schedule) -> list[Transaction]:
    """The non-reversed transactions a schedule version replays, in (date, entry) order.

    A version generated from a modification's setup replays only what is dated after the
    modification date: what came before is carried in the setup's ``loanAmount``.
    """
    rows = list(
        Transaction.objects.filter(loan=loan, reversed=False)
        .exclude(type=TransactionType.DISBURSEMENT)
        .order_by("date", "id")
    )
    if schedule.setup.mod_id is not None:
        rows = [t for t in rows if t.date > schedule.setup.contract_date]
    return rows


def derive_periods(
    loan: Loan,
    schedule: Schedule,
    transactions: list[Transaction],
    *,
    frozen: list[ledger.PeriodState] | None = None,
) -> ledger.ReplayResult:
    """Pure part of the rebuild: base installments from the setup, advancements, termination,
    then the chronological replay of charges, repayments and credits."""
    setup = schedule.setup
    terms = terms_for(setup)
    if frozen is None:
        frozen = [_to_state(p) for p in schedule.periods.filter(frozen=True).order_by("period")]
    base = generate_schedule(terms, first_number=len(frozen) + 1)
    periods = frozen + ledger.periods_from_schedule(base)
    dynamic = loan.schedule_engine == ScheduleEngine.DYNAMIC
    for tx in transactions:
        if tx.type == TransactionType.ADVANCEMENT:
            periods = ledger.apply_advancement(
                periods, on=tx.date, amount=tx.amount, terms=terms, dynamic=dynamic
            )
    termination = next(
        (t for t in transactions if t.type == TransactionType.CONTRACT_TERMINATION), None
    )
    if termination is not None and dynamic:
        periods = ledger.collapse_for_termination(
            periods,
            on=termination.date,
            policy=setup.termination_interest,
            rounding_mode=setup.rounding_mode,
        )
    entries = [
        ledger.Entry(key=t.pk, type=t.type, date=t.date, amount=t.amount)
        for t in transactions
        if t.type in (TransactionType.CHARGE, TransactionType.REPAYMENT, TransactionType.CREDIT)
    ]
    return ledger.replay(periods, entries)


def rebuild_schedule(loan: Loan, *, schedule: Schedule | None = None) -> ledger.ReplayResult:
    """Re-derive the current schedule version's live periods and the transactions' portions
    from the setup and the non-reversed transactions, and write them. Constant query count."""
    schedule = schedule or Schedule.objects.select_related("setup").get(loan=loan, is_current=True)
    transactions = replay_transactions(loan, schedule)
    result = derive_periods(loan, schedule, transactions)
    SchedulePeriod.objects.filter(schedule=schedule, frozen=False).delete()
    SchedulePeriod.objects.bulk_create(
        [
            SchedulePeriod(
                schedule=schedule,
                period=p.period,
                from_date=p.from_date,
                due_date=p.due_date,
                principal_due=p.principal_due,
                interest_due=p.interest_due,
                fees_due=p.fees_due,
                principal_paid=p.principal_paid,
                interest_paid=p.interest_paid,
                fees_paid=p.fees_paid,
                balance_after=p.balance_after,
                complete=p.complete,
                obligations_met_on_date=p.obligations_met_on_date,
                frozen=False,
            )
            for p in ledger.live(result.periods)
        ],
        batch_size=2000,
    )
    changed = []
    for tx in transactions:
        if tx.type == TransactionType.ADVANCEMENT:
            portions = (tx.amount, ZERO, ZERO)
        elif tx.pk in result.allocations:
            a = result.allocations[tx.pk]
            portions = (a.principal, a.interest, a.fees)
        else:
            continue
        if (tx.principal_portion, tx.interest_portion, tx.fees_portion) != portions:
            tx.principal_portion, tx.interest_portion, tx.fees_portion = portions
            changed.append(tx)
    if changed:
        Transaction.objects.bulk_update(
            changed, ["principal_portion", "interest_portion", "fees_portion"], batch_size=2000
        )
    outstanding = sum((p.total_outstanding for p in ledger.live(result.periods)), ZERO)
    new_status = None
    if loan.status == LoanStatus.ACTIVE and outstanding == 0:
        new_status = LoanStatus.CLOSED
    elif loan.status == LoanStatus.CLOSED and outstanding > 0:
        new_status = LoanStatus.ACTIVE
    if new_status:
        # The sub-status exists only on an ACTIVE loan (a database constraint): paying off a
        # terminated loan closes it and clears the sub-status; reopening it (its last
        # repayment undone) restores the sub-status while its termination stands.
        terminated = any(t.type == TransactionType.CONTRACT_TERMINATION for t in transactions)
        sub_status = (
            LoanSubStatus.CONTRACT_TERMINATION
            if new_status == LoanStatus.ACTIVE and terminated
            else None
        )
        loan.status, loan.sub_status = new_status, sub_status
        Loan.objects.filter(pk=loan.pk).update(status=new_status, sub_status=sub_status)
    return result


def _check_external_id(external_id: str | None, *, field: str = "externalId") -> None:
    if not external_id:
        return
    taken = Transaction.objects.filter(external_id=external_id).exists() or (
        Transaction.objects.filter(reversal_external_id=external_id).exists()
    )
    if taken:
        raise DuplicateExternalIdError(
            f"The external id {external_id!r} is already used by another transaction.",
            errors=[field_error(field, "Already used.", "duplicate_external_id")],
        )


# --------------------------------------------------------------------------------------------
# Business date
# --------------------------------------------------------------------------------------------


@transaction.atomic
def set_business_date(*, new_date: date, actor, reason: str = "") -> BusinessDate:
    if not isinstance(new_date, date):
        raise InvalidRequestError("date must be a date.", errors=[field_error("date", "Invalid.")])
    before = BusinessDate.objects.select_for_update().filter(pk=1).first()
    old = before.date if before else None
    row, _ = BusinessDate.objects.update_or_create(
        pk=1, defaults={"date": new_date, "updated_by": _actor(actor)}
    )
    record_event(
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


def validate_terms(values: dict) -> dict:
    """Validate a complete set of setup terms (model field names). Returns the cleaned values
    including the computed payment; raises InvalidRequestError listing every problem."""
    errors = []
    cleaned = dict(values)
    for name in SETUP_FIELDS:
        if name == "payment":
            continue
        if cleaned.get(name) in (None, ""):
            errors.append(field_error(API_NAMES[name], "This field is required.", "required"))
    for name, choices in CHOICES.items():
        value = cleaned.get(name)
        if value not in (None, "") and value not in choices.values:
            errors.append(
                field_error(
                    API_NAMES[name],
                    f"{value!r} is not one of {', '.join(choices.values)}.",
                    "invalid_choice",
                )
            )
    for name in ("loan_amount", "loan_rate", "loan_term", "payment"):
        value = cleaned.get(name)
        if value is None:
            continue
        try:
            value = Decimal(str(value))
            if not value.is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            errors.append(field_error(API_NAMES[name], "A number is required.", "invalid"))
            continue
        cleaned[name] = value
    amount, rate = cleaned.get("loan_amount"), cleaned.get("loan_rate")
    term, payment = cleaned.get("loan_term"), cleaned.get("payment")
    if isinstance(amount, Decimal) and not (0 < amount <= MAX_AMOUNT):
        errors.append(field_error("loanAmount", "Must be positive.", "min_value"))
    elif isinstance(amount, Decimal) and amount != amount.quantize(Decimal("0.01")):
        errors.append(
            field_error("loanAmount", "At most two decimal places.", "max_decimal_places")
        )
    if isinstance(rate, Decimal) and not (0 <= rate <= MAX_RATE):
        errors.append(field_error("loanRate", f"Must be between 0 and {MAX_RATE}.", "out_of_range"))
    if isinstance(term, Decimal):
        if not (0 < term <= MAX_TERM):
            errors.append(
                field_error("loanTerm", f"Must be above 0 and at most {MAX_TERM}.", "out_of_range")
            )
        elif cleaned.get("payment_frequency") in PERIODS_PER_YEAR and term > (
            MAX_YEARS * PERIODS_PER_YEAR[cleaned["payment_frequency"]]
        ):
            errors.append(
                field_error(
                    "loanTerm",
                    f"At most {MAX_YEARS} years of installments.",
                    "term_too_long",
                )
            )
        elif term != term.to_integral_value() and payment is None:
            errors.append(
                field_error(
                    "loanTerm",
                    "A fractional term needs a given payment (roll the payment with termExact).",
                    "fractional_term_requires_payment",
                )
            )
    if isinstance(payment, Decimal) and not (0 < payment <= MAX_AMOUNT):
        errors.append(field_error("payment", "Must be positive.", "min_value"))
    contract, first = cleaned.get("contract_date"), cleaned.get("first_payment_date")
    if isinstance(contract, date) and isinstance(first, date) and first <= contract:
        errors.append(
            field_error(
                "firstPaymentDate", "Must be after the contract date.", "before_contract_date"
            )
        )
    if errors:
        raise InvalidRequestError(
            "The loan terms are invalid.", code="invalid_terms", errors=errors
        )
    try:
        schedule = generate_schedule(
            Terms(
                loan_amount=cleaned["loan_amount"],
                annual_rate_percent=cleaned["loan_rate"],
                term=cleaned["loan_term"],
                frequency=cleaned["payment_frequency"],
                contract_date=cleaned["contract_date"],
                first_payment_date=cleaned["first_payment_date"],
                payment=payment,
                calc_type=cleaned["calc_type"],
                days_in_year=cleaned["days_in_year"],
                rounding_mode=cleaned["rounding_mode"],
            )
        )
    except PaymentTooSmallError:
        raise InvalidRequestError(
            "The payment does not cover one period's interest.",
            code="payment_too_small",
            errors=[field_error("payment", "Too small to cover interest.", "payment_too_small")],
        )
    except (ArithmeticError, OverflowError, ValueError) as exc:
        raise InvalidRequestError(
            f"The loan terms cannot be amortized: {exc}.", code="invalid_terms"
        )
    check_installments_not_zero(schedule)
    cleaned["payment_is_given"] = payment is not None
    cleaned["payment"] = payment if payment is not None else schedule.payment
    return cleaned


def check_installments_not_zero(schedule) -> None:
    """Issue 16: terms whose installment rounds to 0.00 (0.05 over 360 periods, or at rate 0)
    cannot be amortized: the setup's payment must be positive."""
    if schedule.payment > 0 and all(period.total > 0 for period in schedule.periods):
        return
    detail = "An installment rounds to 0.00: raise the amount or shorten the term."
    raise InvalidRequestError(
        f"The loan terms are invalid. {detail}",
        code="payment_rounds_to_zero",
        errors=[
            field_error("loanAmount", detail, "payment_rounds_to_zero"),
            field_error("loanTerm", detail, "payment_rounds_to_zero"),
        ],
    )


# What a constraint refused at loan creation, when a concurrent request or a defect got past
# the validation: (field, detail, code) by constraint name.
CREATION_CONSTRAINTS = {
    "setup_amount_positive": ("loanAmount", "Must be positive.", "min_value"),
    "setup_rate_not_negative": ("loanRate", "Must not be negative.", "min_value"),
    "setup_term_positive": ("loanTerm", "Must be positive.", "min_value"),
    "setup_payment_positive": ("payment", "Must be positive.", "payment_rounds_to_zero"),
}


def constraint_name(exc: IntegrityError) -> str:
    """The violated constraint's name (PostgreSQL's diagnostics) or, on SQLite, the message
    naming it ("CHECK constraint failed: <name>", "UNIQUE constraint failed: <table.column>")."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) or str(exc)


def _creation_error(exc: IntegrityError, *, external_id: str | None) -> DomainError | None:
    name = constraint_name(exc)
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


SETUP_DEFAULTS = {
    "payment_frequency": PaymentFrequency.MONTHLY,
    "calc_type": CalcType.EQUAL_INSTALLMENTS,
    "days_in_year": DaysInYear.FREQUENCY,
    "rounding_mode": RoundingMode.HALF_UP,
    "termination_interest": TerminationInterest.ALL_OUTSTANDING,
}


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
    terms = validate_terms({**SETUP_DEFAULTS, **setup})
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
                created_by=_actor(actor),
            )
            loan.display_id = f"LN-{loan.pk:06d}"
            if not external_id:
                loan.external_id = f"L-{uuid.uuid4().hex[:12].upper()}"
            loan_setup = LoanSetup.objects.create(loan=loan, **terms)
            loan.setup = loan_setup
            loan.save(update_fields=["display_id", "external_id", "setup"])
            record_event(
                loan=loan,
                command="create_loan",
                actor=actor,
                input={"externalId": external_id, "scheduleEngine": schedule_engine, **terms},
                changes={"status": (None, loan.status)},
            )
    except IntegrityError as exc:
        error = _creation_error(exc, external_id=external_id)
        if error is None:
            raise
        raise error
    return loan


@transaction.atomic
def update_setup(*, setup: LoanSetup, changes: dict, actor) -> LoanSetup:
    """Change the terms of a setup that is not active yet (a PENDING loan's, or a
    modification's draft). A computed payment is recomputed; a given one is kept."""
    lock_loan(setup.loan_id)
    setup = LoanSetup.objects.select_for_update().get(pk=setup.pk)
    if setup.active:
        raise SetupLockedError(
            f"Setup {setup.pk} is active and locked; change an active loan through a modification."
        )
    unknown = set(changes) - set(SETUP_FIELDS)
    if unknown:
        raise InvalidRequestError(f"Unknown setup fields: {', '.join(sorted(unknown))}.")
    current = {name: getattr(setup, name) for name in SETUP_FIELDS}
    if not setup.payment_is_given:
        current["payment"] = None
    merged = {**current, **changes}
    cleaned = validate_terms(merged)
    before = {name: getattr(setup, name) for name in (*SETUP_FIELDS, "payment_is_given")}
    for name, value in cleaned.items():
        setattr(setup, name, value)
    setup.save()
    record_event(
        loan=setup.loan,
        command="update_setup",
        actor=actor,
        as_of=get_business_date(),
        input={API_NAMES.get(k, k): v for k, v in changes.items()},
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

    (A modification in progress is activated by ``modifications.services.activate_loan``.)
    """
    as_of = as_of or get_business_date()
    loan = lock_loan(loan)
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
        created_by=_actor(actor),
    )
    loan.status = LoanStatus.ACTIVE
    loan.save(update_fields=["status", "updated_at"])
    schedule = new_schedule_version(
        loan=loan, reason=ScheduleReason.ACTIVATION, actor=actor, setup=setup, frozen_periods=[]
    )
    rebuild_schedule(loan, schedule=schedule)
    record_event(
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


def original_contract_date(loan: Loan) -> date:
    first = (
        LoanSetup.objects.filter(loan=loan).order_by("id").values_list("contract_date", flat=True)
    )
    return first.first()


def _check_transaction_date(loan: Loan, on: date, as_of: date) -> None:
    if on > as_of:
        raise FutureDateError(
            f"The transaction date {on} is after the business date {as_of}.",
            errors=[field_error("transactionDate", "After the business date.", "future_date")],
        )
    contract = original_contract_date(loan)
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


@transaction.atomic
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
) -> Transaction:
    """Post a repayment, charge, advancement or credit, then re-derive the schedule."""
    as_of = as_of or get_business_date()
    if type not in POSTABLE_TYPES:
        raise InvalidRequestError(f"Transactions of type {type} cannot be posted here.")
    if not isinstance(amount, Decimal) or amount <= 0:
        raise InvalidRequestError(
            "The amount must be positive.",
            errors=[field_error("amount", "Must be positive.", "min_value")],
        )
    loan = lock_loan(loan)
    if loan.status == LoanStatus.PENDING:
        raise LoanStateError(
            "The loan is not active yet: activate it first.", code="loan_not_active"
        )
    if loan.status == LoanStatus.CLOSED and type != TransactionType.CHARGE:
        raise LoanStateError("The loan is closed (paid off).", code="loan_closed")
    if loan.modification_in_progress:
        raise ConflictError(
            "A modification is in progress: activate or cancel it first.",
            code="modification_in_progress",
        )
    if type == TransactionType.ADVANCEMENT and loan.is_terminated:
        raise LoanStateError(
            "No principal can be advanced on a terminated contract.", code="loan_terminated"
        )
    _check_transaction_date(loan, on, as_of)
    _check_external_id(external_id)
    if type in (TransactionType.REPAYMENT, TransactionType.CREDIT):
        schedule = Schedule.objects.get(loan=loan, is_current=True)
        outstanding = sum(
            (p.total_outstanding for p in schedule.periods.filter(frozen=False)), ZERO
        )
        if amount > outstanding:
            raise InvalidRequestError(
                f"The amount {amount} is more than the {outstanding} outstanding.",
                code="overpayment",
                errors=[field_error("amount", f"At most {outstanding}.", "overpayment")],
            )
    try:
        with transaction.atomic():
            tx = Transaction.objects.create(
                loan=loan,
                type=type,
                date=on,
                amount=amount,
                external_id=external_id or None,
                note=(note or "")[:500],
                created_by=_actor(actor),
            )
    except IntegrityError:
        raise DuplicateExternalIdError(f"The external id {external_id!r} is already used.")
    status_before = loan.status
    rebuild_schedule(loan)
    tx.refresh_from_db()
    record_event(
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
    )
    return tx


def mark_reversed(
    tx: Transaction, *, actor, as_of: date, note: str = "", reversal_external_id=None
) -> None:
    """Mark a transaction reversed (kept, never deleted): on the business date, by whom, why,
    with its optional unique reversal external id."""
    tx.reversed = True
    tx.reversed_on = as_of
    tx.reversed_at = timezone.now()
    tx.reversed_by = _actor(actor)
    tx.reversal_note = (note or "")[:500]
    tx.reversal_external_id = reversal_external_id or None
    try:
        with transaction.atomic():
            tx.save(
                update_fields=[
                    "reversed",
                    "reversed_on",
                    "reversed_at",
                    "reversed_by",
                    "reversal_note",
                    "reversal_external_id",
                ]
            )
    except IntegrityError:
        raise DuplicateExternalIdError(
            f"The external id {reversal_external_id!r} is already used.",
            errors=[field_error("reversalExternalId", "Already used.", "duplicate_external_id")],
        )


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
    as_of = as_of or get_business_date()
    loan = lock_loan(loan)
    tx = Transaction.objects.select_for_update().filter(pk=transaction_id, loan=loan).first()
    if tx is None:
        raise NotFoundError(
            f"Transaction {transaction_id} of loan {loan.pk} was not found.",
            code="transaction_not_found",
        )
    if tx.type not in USER_REVERSIBLE_TYPES:
        raise ConflictError(
            f"A {tx.type} transaction cannot be undone with command=undo.",
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
    _check_external_id(reversal_external_id, field="reversalExternalId")
    mark_reversed(
        tx, actor=actor, as_of=as_of, note=note, reversal_external_id=reversal_external_id
    )
    status_before = loan.status
    rebuild_schedule(loan)
    record_event(
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


@dataclass(frozen=True)
class TerminationPreview:
    """What terminating a loan on ``on`` would do, computed without writing anything.

    ``principal``/``interest``/``fees`` are everything outstanding on the rewritten schedule
    (overdue installments included): the portions of the CONTRACT_TERMINATION transaction.
    ``accelerated`` is the installment due on ``on`` that the later installments collapse
    into; it is None when ``on`` is on or after maturity (the periods are kept).
    ``refusals`` lists the failed checks (empty when the termination is allowed).
    """

    loan: Loan
    on: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    accelerated: ledger.PeriodState | None
    periods: tuple[ledger.PeriodState, ...]
    before: ledger.Summary | None
    after: ledger.Summary | None
    refusals: tuple[dict, ...] = ()

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees

    @property
    def live_periods(self) -> list[ledger.PeriodState]:
        return ledger.live(list(self.periods))

    @property
    def allowed(self) -> bool:
        return not self.refusals


@dataclass(frozen=True)
class UndoTerminationPreview:
    """What undoing a loan's contract termination would restore (nothing is written)."""

    loan: Loan
    termination: Transaction | None
    periods: tuple[ledger.PeriodState, ...]
    after: ledger.Summary | None
    refusals: tuple[dict, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.refusals

    @property
    def live_periods(self) -> list[ledger.PeriodState]:
        return ledger.live(list(self.periods))


def _refusal(code: str, detail: str) -> dict:
    return {"field": None, "detail": detail, "code": code}


def termination_refusals(loan: Loan, *, as_of: date) -> list[dict]:
    """Every check ``terminate_contract`` makes, collected (DESIGN §3). Read-only."""
    refusals = []
    if loan.status != LoanStatus.ACTIVE:
        refusals.append(
            _refusal("loan_not_active", f"The loan is {loan.status}; only an ACTIVE loan can be.")
        )
    if loan.schedule_engine != ScheduleEngine.DYNAMIC:
        refusals.append(
            _refusal(
                "engine_not_dynamic",
                f"The loan uses the {loan.schedule_engine} schedule engine; contract "
                "termination needs the DYNAMIC engine.",
            )
        )
    if loan.charged_off:
        refusals.append(_refusal("loan_charged_off", "The loan is charged off."))
    if loan.is_terminated:
        refusals.append(
            _refusal("already_terminated", "The loan's contract is already terminated.")
        )
    if loan.modification_in_progress:
        refusals.append(
            _refusal(
                "modification_in_progress",
                "A modification is in progress: activate or cancel it first.",
            )
        )
    # Choices where the spec is silent (as Fineract does for any transaction): the termination
    # is dated on the business date, which may not precede the contract or the latest
    # modification, and it must be the loan's latest transaction (so that it can be undone).
    setup = loan.setup
    if loan.status == LoanStatus.ACTIVE and setup is not None:
        if setup.mod_id is None and as_of < setup.contract_date:
            refusals.append(
                _refusal(
                    "date_before_contract",
                    f"The business date {as_of} is before the contract date {setup.contract_date}.",
                )
            )
        elif setup.mod_id is not None and as_of <= setup.contract_date:
            refusals.append(
                _refusal(
                    "date_before_modification",
                    f"The business date {as_of} is on or before the latest modification date "
                    f"{setup.contract_date}.",
                )
            )
        later = (
            Transaction.objects.filter(loan=loan, reversed=False, date__gt=as_of)
            .exclude(type=TransactionType.DISBURSEMENT)
            .exists()
        )
        if later:
            refusals.append(
                _refusal(
                    "transactions_after_business_date",
                    f"The loan has transactions dated after the business date {as_of}.",
                )
            )
    return refusals


def _frozen_rows(schedule: Schedule) -> list[SchedulePeriod]:
    return list(schedule.periods.filter(frozen=True).order_by("period"))


def _live_totals(periods: list[ledger.PeriodState]) -> tuple[Decimal, Decimal, Decimal]:
    current = ledger.live(periods)
    return (
        sum((p.principal_outstanding for p in current), ZERO),
        sum((p.interest_outstanding for p in current), ZERO),
        sum((p.fees_outstanding for p in current), ZERO),
    )


def preview_contract_termination(loan: Loan, *, as_of: date | None = None) -> TerminationPreview:
    """Compute what ``terminate_contract`` would write, writing nothing.

    The same computation gives the transaction's portions inside ``terminate_contract``, so
    the admin's preview and the result cannot disagree. Constant query count.
    """
    as_of = as_of or get_business_date()
    return _termination_preview(loan, as_of, tuple(termination_refusals(loan, as_of=as_of)))


def _termination_preview(loan: Loan, as_of: date, refusals: tuple) -> TerminationPreview:
    schedule = (
        Schedule.objects.select_related("setup").filter(loan=loan, is_current=True).first()
        if loan.status != LoanStatus.PENDING
        else None
    )
    if schedule is None:
        return TerminationPreview(
            loan=loan,
            on=as_of,
            principal=ZERO,
            interest=ZERO,
            fees=ZERO,
            accelerated=None,
            periods=(),
            before=None,
            after=None,
            refusals=refusals,
        )
    transactions = [
        t
        for t in replay_transactions(loan, schedule)
        if t.type != TransactionType.CONTRACT_TERMINATION
    ]
    frozen_rows = _frozen_rows(schedule)
    before = derive_periods(
        loan, schedule, transactions, frozen=[_to_state(r) for r in frozen_rows]
    )
    pending = Transaction(
        loan=loan, type=TransactionType.CONTRACT_TERMINATION, date=as_of, amount=ZERO
    )
    after = derive_periods(
        loan, schedule, [*transactions, pending], frozen=[_to_state(r) for r in frozen_rows]
    )
    live_before = ledger.live(before.periods)
    collapsed = (
        loan.schedule_engine == ScheduleEngine.DYNAMIC
        and bool(live_before)
        and as_of < live_before[-1].due_date
    )
    principal, interest, fees = _live_totals(after.periods)
    return TerminationPreview(
        loan=loan,
        on=as_of,
        principal=principal,
        interest=interest,
        fees=fees,
        accelerated=ledger.live(after.periods)[-1] if collapsed else None,
        periods=tuple(after.periods),
        before=ledger.summarize(before.periods, as_of=as_of),
        after=ledger.summarize(after.periods, as_of=as_of),
        refusals=refusals,
    )


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
    as_of = as_of or get_business_date()
    loan = lock_loan(loan)
    refusals = termination_refusals(loan, as_of=as_of)
    if refusals:
        raise ConflictError(
            "The contract cannot be terminated: " + " ".join(r["detail"] for r in refusals),
            code="contract_termination_not_allowed",
            errors=refusals,
        )
    _check_external_id(external_id)
    preview = _termination_preview(loan, as_of, ())
    try:
        with transaction.atomic():
            tx = Transaction.objects.create(
                loan=loan,
                type=TransactionType.CONTRACT_TERMINATION,
                date=as_of,
                amount=preview.total,
                principal_portion=preview.principal,
                interest_portion=preview.interest,
                fees_portion=preview.fees,
                external_id=external_id or None,
                note=(note or "")[:500],
                created_by=_actor(actor),
            )
    except IntegrityError:
        raise DuplicateExternalIdError(
            f"The external id {external_id!r} is already used.",
            errors=[field_error("externalId", "Already used.", "duplicate_external_id")],
        )
    sub_status_before = loan.sub_status
    loan.sub_status = LoanSubStatus.CONTRACT_TERMINATION
    loan.save(update_fields=["sub_status", "updated_at"])
    schedule = new_schedule_version(
        loan=loan, reason=ScheduleReason.CONTRACT_TERMINATION, actor=actor, note=note
    )
    rebuild_schedule(loan, schedule=schedule)
    record_event(
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


def _undo_state(loan: Loan) -> tuple[Transaction | None, list[dict]]:
    """The termination to undo and every failed check of ``undo_contract_termination``."""
    refusals = []
    if loan.status != LoanStatus.ACTIVE:
        refusals.append(
            _refusal("loan_not_active", f"The loan is {loan.status}; only an ACTIVE loan can be.")
        )
    user_transactions = (
        Transaction.objects.filter(loan=loan, reversed=False)
        .exclude(type=TransactionType.DISBURSEMENT)
        .order_by("-date", "-id")
    )
    termination = user_transactions.filter(type=TransactionType.CONTRACT_TERMINATION).first()
    if not loan.is_terminated or termination is None:
        refusals.append(
            _refusal("not_terminated", "The loan is not in CONTRACT_TERMINATION sub-status.")
        )
    else:
        latest = user_transactions.first()
        if latest.pk != termination.pk:
            refusals.append(
                _refusal(
                    "termination_not_latest",
                    f"The contract termination is not the loan's latest transaction: a "
                    f"{latest.type} dated {latest.date} (id {latest.pk}) came after it; "
                    "undo that first.",
                )
            )
    return termination, refusals


def preview_undo_contract_termination(
    loan: Loan, *, as_of: date | None = None
) -> UndoTerminationPreview:
    """The schedule ``undo_contract_termination`` would restore, writing nothing."""
    as_of = as_of or get_business_date()
    termination, refusals = _undo_state(loan)
    schedule = Schedule.objects.select_related("setup").filter(loan=loan, is_current=True).first()
    if schedule is None:
        return UndoTerminationPreview(
            loan=loan, termination=termination, periods=(), after=None, refusals=tuple(refusals)
        )
    transactions = [
        t
        for t in replay_transactions(loan, schedule)
        if t.type != TransactionType.CONTRACT_TERMINATION
    ]
    restored = derive_periods(loan, schedule, transactions)
    return UndoTerminationPreview(
        loan=loan,
        termination=termination,
        periods=tuple(restored.periods),
        after=ledger.summarize(restored.periods, as_of=as_of),
        refusals=tuple(refusals),
    )


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
    as_of = as_of or get_business_date()
    loan = lock_loan(loan)
    tx, refusals = _undo_state(loan)
    if refusals:
        raise ConflictError(
            "The contract termination cannot be undone: " + " ".join(r["detail"] for r in refusals),
            code=refusals[0]["code"],
            errors=refusals,
        )
    _check_external_id(reversal_external_id, field="reversalExternalId")
    before = selectors.loan_summary(loan, as_of=as_of)
    mark_reversed(
        tx, actor=actor, as_of=as_of, note=note, reversal_external_id=reversal_external_id
    )
    sub_status_before = loan.sub_status
    loan.sub_status = None
    loan.save(update_fields=["sub_status", "updated_at"])
    schedule = new_schedule_version(
        loan=loan, reason=ScheduleReason.UNDO_CONTRACT_TERMINATION, actor=actor, note=note
    )
    result = rebuild_schedule(loan, schedule=schedule)
    record_event(
        loan=loan,
        command="undo_contract_termination",
        actor=actor,
        as_of=as_of,
        reason=note,
        input={"reversalExternalId": reversal_external_id, "note": note},
        changes={
            "subStatus": (sub_status_before, loan.sub_status),
            "transaction.reversed": (False, True),
            **_summary_changes(before, ledger.summarize(result.periods, as_of=as_of)),
        },
        result={"transactionId": tx.pk, "scheduleVersion": schedule.version},
    )
    return TerminationResult(loan=loan, transaction=tx)
