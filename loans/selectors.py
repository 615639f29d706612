"""Reads worth naming: the business date, a loan's current schedule, summaries, annotated
querysets for lists (no query per row), and the refusal checks and previews of the core's
commands (the command asks the same function, so a page and the command cannot disagree).

Why this module is long: it holds the named reads of the whole loan core and the refusal
checks and previews of its commands, each beside the reads it uses (the charge-off's are in
``loans.charge_off``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import (
    DecimalField,
    ExpressionWrapper,
    F,
    Min,
    Prefetch,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from loans import ledger, recalculation, versions
from loans.exceptions import InvalidRequestError, LoanStateError, NotFoundError, field_error
from loans.formatting import article, words
from loans.models import (
    Borrower,
    BusinessDate,
    Loan,
    LoanSetup,
    LoanStatus,
    Schedule,
    ScheduleEngine,
    SchedulePeriod,
    Transaction,
    TransactionType,
)
from loans.terms import terms_for

ZERO = Decimal("0.00")
MONEY_FIELD = DecimalField(max_digits=14, decimal_places=2)


def get_business_date() -> date:
    """The business date; until an operator sets one it is today's date (DESIGN §1)."""
    row = BusinessDate.objects.filter(pk=1).only("date").first()
    return row.date if row else timezone.localdate()


def get_loan(*, loan_id: int | str | None = None, external_id: str | None = None) -> Loan:
    queryset = Loan.objects.select_related("borrower", "setup")
    try:
        if external_id is not None:
            return queryset.get(external_id=external_id)
        return queryset.get(pk=int(loan_id))
    except (Loan.DoesNotExist, ValueError, TypeError):
        ident = external_id if external_id is not None else loan_id
        raise NotFoundError(f"Loan {ident} was not found.", code="loan_not_found")


def get_borrower(*, borrower_id: int | str | None = None, external_id: str | None = None):
    """A borrower by id or by its (Finosu customer) external id; 404 ``borrower_not_found``."""
    try:
        if external_id is not None:
            return Borrower.objects.get(external_id=external_id)
        return Borrower.objects.get(pk=int(borrower_id))
    except (Borrower.DoesNotExist, ValueError, TypeError, OverflowError):
        ident = external_id if external_id is not None else borrower_id
        raise NotFoundError(f"Borrower {ident} was not found.", code="borrower_not_found")


def current_schedule(loan: Loan, *, with_periods: bool = True) -> Schedule | None:
    queryset = Schedule.objects.filter(loan=loan, is_current=True).select_related("setup")
    if with_periods:
        queryset = queryset.prefetch_related(
            Prefetch("periods", queryset=SchedulePeriod.objects.order_by("period"))
        )
    return queryset.first()


def loan_summary(
    loan: Loan,
    *,
    as_of: date,
    schedule: Schedule | None = None,
    periods: list[ledger.PeriodState] | None = None,
) -> ledger.Summary:
    """The summary figures, with the credit balance and the payoff on ``as_of`` (§9).
    ``periods`` (``period_states(schedule)``, with ``schedule``) saves reading them again."""
    if periods is None:
        schedule = schedule if schedule is not None else current_schedule(loan)
        periods = list(schedule.periods.all()) if schedule else []
    summary = ledger.summarize(periods, as_of=as_of)
    if schedule is None:
        return summary
    credit = credit_balance(loan)
    try:
        today = payoff(loan, on=as_of).total
    except (InvalidRequestError, LoanStateError):  # dated before the latest transaction
        today = None
    return replace(summary, credit_balance=credit, payoff_today=today)


# ------------------------------------------------------------------ payoff and credit (§9)


credit_balance = versions.credit_balance  # what was overpaid and not refunded (§9)
accrual_for = versions.accrual_for  # the interest-earned seam of the payoff (§9, §11)


def derived_periods(loan: Loan) -> list[ledger.PeriodState]:
    """The current schedule version re-derived in memory (with what the database does not keep,
    e.g. the interest a settlement credited)."""
    schedule = Schedule.objects.select_related("setup").get(loan=loan, is_current=True)
    transactions = versions.replay_transactions(loan, schedule)
    return versions.derive_periods(loan, schedule, transactions).periods


def _payoff_state(loan: Loan, on: date, schedule: Schedule | None = None):
    if loan.status == LoanStatus.PENDING:
        raise LoanStateError("The loan is not active yet.", code="loan_not_active")
    if schedule is None:
        schedule = Schedule.objects.select_related("setup").get(loan=loan, is_current=True)
    latest = (
        Transaction.objects.filter(loan=loan, reversed=False)
        .order_by("-date")
        .values_list("date", flat=True)
        .first()
    )
    if latest is not None and on < latest:
        raise InvalidRequestError(
            f"The payoff date {on} is before the latest transaction, dated {latest}.",
            code="date_before_last_transaction",
            errors=[field_error("date", f"On or after {latest}.", "date_before_last_transaction")],
        )
    transactions = versions.replay_transactions(loan, schedule)
    result = versions.derive_periods(loan, schedule, transactions)
    return schedule.setup, result


def _daily_payoffs(loan: Loan, setup: LoanSetup, *, on: date, days: int, credit: Decimal):
    """A recalculating loan's payoffs (DESIGN §11): the daily accrual to each date, overdue
    principal included; None for a loan that does not recalculate."""
    if not (setup.interest_recalculation and loan.schedule_engine == ScheduleEngine.DYNAMIC):
        return None
    schedule = Schedule.objects.select_related("setup").get(loan=loan, is_current=True)
    quotes = recalculation.payoffs(
        terms=terms_for(setup),
        transactions=versions.replay_transactions(loan, schedule),
        on=on,
        days=days,
        termination_interest=setup.termination_interest,
    )
    return tuple(
        ledger.Payoff(
            on=q.on,
            principal=q.principal,
            interest=q.interest,
            fees=q.fees,
            per_diem=q.per_diem,
            credit=credit,
        )
        for q in quotes
    )


def payoff(loan: Loan, *, on: date, schedule: Schedule | None = None) -> ledger.Payoff:
    """What settles the loan on ``on`` (DESIGN §9): ``ledger.payoff`` over the current schedule
    re-derived from every transaction (a recalculating loan: its daily accrual). ``on`` may be
    after the business date (a quote assuming no payment in between), not before the latest
    transaction (400). ``schedule``: the current version, read with its ``setup`` under the
    caller's loan lock (the close of business has it), saves reading it again."""
    setup, result = _payoff_state(loan, on, schedule)
    credit = credit_balance(loan)
    daily = _daily_payoffs(loan, setup, on=on, days=0, credit=credit)
    if daily is not None:
        return daily[0]
    return ledger.payoff(
        result.periods,
        on=on,
        rounding_mode=setup.rounding_mode,
        credit=credit,
        accrual=accrual_for(setup),
    )


@dataclass(frozen=True)
class PayoffQuote:
    per_diem: Decimal
    credit_balance: Decimal
    quotes: tuple[ledger.Payoff, ...]


MAX_QUOTE_DAYS = 366


def payoff_quotes(loan: Loan, *, on: date, days: int = 10) -> PayoffQuote:
    """The payoff on ``on`` and each of the ``days`` following days (one derivation)."""
    if not 0 <= days <= MAX_QUOTE_DAYS or on > date.max - timedelta(days=days):
        raise InvalidRequestError(
            f"days must be between 0 and {MAX_QUOTE_DAYS}, and the last date quoted a date.",
            errors=[field_error("days", "Out of range.", "out_of_range")],
        )
    setup, result = _payoff_state(loan, on)
    credit = credit_balance(loan)
    daily = _daily_payoffs(loan, setup, on=on, days=days, credit=credit)
    if daily is not None:
        return PayoffQuote(per_diem=daily[0].per_diem, credit_balance=credit, quotes=daily)
    accrual = accrual_for(setup)
    quotes = tuple(
        ledger.payoff(
            result.periods,
            on=on + timedelta(days=n),
            rounding_mode=setup.rounding_mode,
            credit=credit,
            accrual=accrual,
        )
        for n in range(days + 1)
    )
    return PayoffQuote(per_diem=quotes[0].per_diem, credit_balance=credit, quotes=quotes)


_PERIOD_COLUMNS = [
    f.name
    for f in dataclasses.fields(ledger.PeriodState)
    if f.name in {field.name for field in SchedulePeriod._meta.concrete_fields}
]


def period_states(schedule: Schedule | None) -> list[ledger.PeriodState]:
    """A schedule version's periods, in order, as ``ledger.PeriodState`` read with
    ``values_list`` (a tenth of the cost of model instances for a 360-period schedule)."""
    if schedule is None:
        return []
    rows = (
        SchedulePeriod.objects.filter(schedule=schedule)
        .order_by("period")
        .values_list(*_PERIOD_COLUMNS)
    )
    return [ledger.PeriodState(**dict(zip(_PERIOD_COLUMNS, row, strict=True))) for row in rows]


# The columns of ``serializers.transaction_json``, in its order.
TRANSACTION_ROW = (
    "id",
    "loan_id",
    "external_id",
    "type",
    "date",
    "amount",
    "principal_portion",
    "interest_portion",
    "fees_portion",
    "note",
    "reversed",
    "reversed_on",
    "reversal_external_id",
    "reversal_note",
    "reversed_by_modification_id",
    "created_by__username",
    "created_at",
    "overpayment_portion",
)


def transaction_rows(loan: Loan) -> list[tuple]:
    """The loan's transactions in (date, id) order as ``TRANSACTION_ROW`` tuples: no model
    instances, no user instance per row (a tenth of the cost for thousands of rows)."""
    return list(
        Transaction.objects.filter(loan=loan).order_by("date", "id").values_list(*TRANSACTION_ROW)
    )


def loan_transactions(loan: Loan) -> QuerySet[Transaction]:
    return loan.transactions.select_related("created_by", "reversed_by").order_by("date", "id")


def page_summaries(loan_ids: list[int], *, as_of: date) -> dict[int, dict]:
    """Outstanding, past-due and oldest past-due date for a page of loans, in ONE grouped
    query over their current schedules' live installments. Run after pagination, so a deep
    page costs what the first one does (no correlated subquery evaluated for skipped rows)."""
    outstanding = ExpressionWrapper(
        F("principal_due")
        + F("interest_due")
        + F("fees_due")
        - F("principal_paid")
        - F("interest_paid")
        - F("fees_paid"),
        output_field=MONEY_FIELD,
    )
    past_due = Q(complete=False, due_date__lt=as_of)
    rows = (
        SchedulePeriod.objects.filter(
            schedule__loan_id__in=loan_ids, schedule__is_current=True, frozen=False
        )
        .values("schedule__loan_id")
        .annotate(
            total_outstanding=Sum(outstanding),
            principal_outstanding=Sum(
                ExpressionWrapper(
                    F("principal_due") - F("principal_paid"), output_field=MONEY_FIELD
                )
            ),
            amount_past_due=Coalesce(
                Sum(outstanding, filter=past_due), ZERO, output_field=MONEY_FIELD
            ),
            oldest_past_due_date=Min("due_date", filter=past_due),
        )
        .order_by()
    )
    return {row.pop("schedule__loan_id"): row for row in rows}


# --------------------------------------------------------------------------------------------
# Contract termination and its undo: refusal checks and previews (seed 002, DESIGN §3)
# --------------------------------------------------------------------------------------------


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
    # (the replay with the termination, the rows it allocates): what ``terminate_contract``
    # writes, so that the command derives once (``versions.rebuild_schedule(derived=...)``).
    replay: tuple | None = field(default=None, repr=False, compare=False)

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


def refusal(code: str, detail: str) -> dict:
    """One refused check, in the error body's ``errors`` shape."""
    return {"field": None, "detail": detail, "code": code}


_refusal = refusal


def not_active_refusal(loan: Loan, what: str) -> dict:
    """``loan_not_active``: "The loan is closed; only an active loan {what}."."""
    return refusal(
        "loan_not_active", f"The loan is {words(loan.status)}; only an active loan {what}."
    )


def dating_refusals(loan: Loan, *, as_of: date) -> list[dict]:
    """The checks of a non-monetary command dated on the business date ``as_of`` (termination,
    charge-off): not before the contract, not on or before the latest modification, and no
    transaction dated after it (the command must be the loan's latest, so it can be undone)."""
    refusals = []
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


def termination_refusals(loan: Loan, *, as_of: date) -> list[dict]:
    """Every check ``terminate_contract`` makes, collected (DESIGN §3). Read-only."""
    refusals = []
    if loan.status != LoanStatus.ACTIVE:
        refusals.append(not_active_refusal(loan, "can be terminated"))
    if loan.schedule_engine != ScheduleEngine.DYNAMIC:
        refusals.append(
            _refusal(
                "engine_not_dynamic",
                f"The loan uses the {words(loan.schedule_engine)} schedule engine; contract "
                "termination needs the dynamic engine.",
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
    refusals.extend(dating_refusals(loan, as_of=as_of))
    return refusals


def preview_contract_termination(loan: Loan, *, as_of: date | None = None) -> TerminationPreview:
    """Compute what ``terminate_contract`` would write, writing nothing.

    The same computation gives the transaction's portions inside ``terminate_contract``, so
    the admin's preview and the result cannot disagree. Constant query count.
    """
    as_of = as_of or get_business_date()
    return termination_preview(loan, as_of, tuple(termination_refusals(loan, as_of=as_of)))


def termination_preview(loan: Loan, as_of: date, refusals: tuple) -> TerminationPreview:
    """The computation behind ``preview_contract_termination`` and ``terminate_contract``:
    the loan with a CONTRACT_TERMINATION dated ``as_of`` replayed in memory."""
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
    pending = Transaction(
        loan=loan, type=TransactionType.CONTRACT_TERMINATION, date=as_of, amount=ZERO
    )
    stored = versions.StoredPeriods(schedule)
    after, transactions = None, []
    if not refusals:
        # Allowed: the loan is not terminated and the termination, on the business date, comes
        # after every transaction, so the stored schedule is the state before it and the
        # replay starts there (the cost does not grow with the history).
        before_periods = stored.frozen() + stored.live()
        after = versions.resume_periods(loan, schedule, stored.frozen() + stored.live(), [pending])
    if after is None:  # refused (a preview only), or a recalculating loan: replay the history
        transactions = [
            t
            for t in versions.replay_transactions(loan, schedule)
            if t.type != TransactionType.CONTRACT_TERMINATION
        ]
        before, after = versions.derive_with(
            loan, schedule, transactions, pending, frozen=stored.frozen(), from_state=not refusals
        )
        before_periods = before.periods
    if after.void_terminations and loan.status == LoanStatus.ACTIVE:
        # DESIGN §1: a termination never stands with nothing outstanding.
        refusals = (
            *refusals,
            _refusal(
                "nothing_outstanding",
                f"Nothing is outstanding on {as_of} once unearned interest is dropped.",
            ),
        )
    live_before = ledger.live(before_periods)
    collapsed = (
        loan.schedule_engine == ScheduleEngine.DYNAMIC
        and bool(live_before)
        and as_of < live_before[-1].due_date
    )
    owed = after.allocations.get(None, ledger.Allocation())
    principal, interest, fees = owed.principal, owed.interest, owed.fees
    return TerminationPreview(
        loan=loan,
        on=as_of,
        principal=principal,
        interest=interest,
        fees=fees,
        accelerated=ledger.live(after.periods)[-1] if collapsed else None,
        periods=tuple(after.periods),
        before=ledger.summarize(before_periods, as_of=as_of),
        after=ledger.summarize(after.periods, as_of=as_of),
        refusals=refusals,
        replay=(after, transactions),
    )


def undo_termination_state(loan: Loan) -> tuple[Transaction | None, list[dict]]:
    """The termination to undo and every failed check of ``undo_contract_termination``."""
    refusals = []
    if loan.status != LoanStatus.ACTIVE:
        refusals.append(not_active_refusal(loan, "can have its termination undone"))
    user_transactions = (
        Transaction.objects.filter(loan=loan, reversed=False)
        .exclude(type=TransactionType.DISBURSEMENT)
        .order_by("-date", "-id")
    )
    termination = user_transactions.filter(type=TransactionType.CONTRACT_TERMINATION).first()
    if not loan.is_terminated or termination is None:
        refusals.append(_refusal("not_terminated", "The loan is not in contract termination."))
    else:
        latest = user_transactions.first()
        if latest.pk != termination.pk:
            refusals.append(
                _refusal(
                    "termination_not_latest",
                    "The contract termination is not the loan's latest transaction: "
                    f"{article(words(latest.type))} dated {latest.date} (id {latest.pk}) came "
                    "after it; "
                    "undo that first.",
                )
            )
    return termination, refusals


def preview_undo_contract_termination(
    loan: Loan, *, as_of: date | None = None
) -> UndoTerminationPreview:
    """The schedule ``undo_contract_termination`` would restore, writing nothing."""
    as_of = as_of or get_business_date()
    termination, refusals = undo_termination_state(loan)
    schedule = Schedule.objects.select_related("setup").filter(loan=loan, is_current=True).first()
    if schedule is None:
        return UndoTerminationPreview(
            loan=loan, termination=termination, periods=(), after=None, refusals=tuple(refusals)
        )
    transactions = [
        t
        for t in versions.replay_transactions(loan, schedule)
        if t.type != TransactionType.CONTRACT_TERMINATION
    ]
    restored = versions.derive_periods(loan, schedule, transactions)
    return UndoTerminationPreview(
        loan=loan,
        termination=termination,
        periods=tuple(restored.periods),
        after=ledger.summarize(restored.periods, as_of=as_of),
        refusals=tuple(refusals),
    )


# --------------------------------------------------------------------------------------------
# Posting transactions: the state checks of ``post_transaction`` (the loan page asks them too)
# --------------------------------------------------------------------------------------------


def transaction_refusals(loan: Loan, *, type: str) -> list[dict]:
    """The state checks ``post_transaction`` makes for a transaction of ``type`` (asked by the
    loan page's buttons). Read-only, no query."""
    refusals = []
    if loan.status == LoanStatus.PENDING:
        refusals.append(
            _refusal("loan_not_active", "The loan is not active yet: activate it first.")
        )
    elif loan.status == LoanStatus.CLOSED and type != TransactionType.CHARGE:
        refusals.append(_refusal("loan_closed", "The loan is closed (paid off)."))
    elif loan.status == LoanStatus.OVERPAID and type != TransactionType.CHARGE:
        refusals.append(_refusal("loan_overpaid", "Nothing is owed: the loan is overpaid."))
    if loan.modification_in_progress:
        refusals.append(
            _refusal(
                "modification_in_progress",
                "A modification is in progress: activate or cancel it first.",
            )
        )
    if type == TransactionType.ADVANCEMENT and loan.is_terminated:
        refusals.append(
            _refusal("loan_terminated", "No principal can be advanced on a terminated contract.")
        )
    if type == TransactionType.ADVANCEMENT and loan.charged_off:
        refusals.append(
            _refusal("loan_charged_off", "No principal can be advanced on a charged-off loan.")
        )
    return refusals
