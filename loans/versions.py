"""What every app's commands build on: the loan row lock, the audit record, schedule versions
and their re-derivation from the setup and the transactions (replay, derive, rebuild).

These are the public names other apps import from ``loans``; nothing here is a command.

Why this module is long: the rebuild, the replay it starts from (the whole history or the
stored schedule state) and the writing back of only what changed share the row formats and
invariants of one schedule version; split, each part would import the others' private names.
"""

from __future__ import annotations

import bisect
from dataclasses import replace
from datetime import date
from decimal import Decimal
from operator import attrgetter
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Q, Subquery, Sum
from django.db.models.functions import Mod
from django.utils import timezone

from loans import hooks, ledger, progressive, recalculation
from loans.exceptions import ConflictError, DuplicateExternalIdError, NotFoundError, field_error
from loans.models import (
    PAYING_TYPES,
    BusinessDate,
    EngineState,
    Loan,
    LoanEvent,
    LoanSetup,
    LoanStatus,
    LoanSubStatus,
    Schedule,
    ScheduleEngine,
    SchedulePeriod,
    ScheduleReason,
    Transaction,
    TransactionType,
)
from loans.schedules import generate_schedule
from loans.statements import Bound, CompiledRead, bound_insert, bound_update, run_together
from loans.terms import terms_for

ZERO = Decimal("0.00")

# The columns a schedule period carries, the same on a ``SchedulePeriod`` row and on a
# ``ledger.PeriodState`` (apart from ``frozen``, set by the caller).
PERIOD_FIELDS = (
    "period",
    "from_date",
    "due_date",
    "principal_due",
    "interest_due",
    "fees_due",
    "principal_paid",
    "interest_paid",
    "fees_paid",
    "balance_after",
    "complete",
    "obligations_met_on_date",
    "advanced_within",
    "unearned_principal",
)


_SENTINEL_LOAN = -918_273_640
_SENTINEL_TEXT = "~918273640~"
_LOCK = CompiledRead(
    lambda *, loan_id: (
        Loan.objects.select_for_update(of=("self",)).select_related("setup").filter(pk=loan_id)
    ),
    loan_id=_SENTINEL_LOAN,
)


def bind_loan_lock(loan_id: int) -> Bound:
    """``lock_loan`` as a statement for ``run_together`` (compiled once; its result: a list of
    the loan with its setup, or empty), to send in one round trip with what follows it."""
    return _LOCK.bind(into="instances", loan_id=loan_id)


def locked_loan(pk: int, found: list) -> Loan:
    """The loan ``bind_loan_lock`` found, or the 404 ``lock_loan`` raises."""
    if not found:
        raise NotFoundError(f"Loan {pk} was not found.", code="loan_not_found")
    return found[0]


def lock_loan(loan: Loan | int) -> Loan:
    """Lock the loan row for the rest of the transaction and return it fresh from the database
    (with its setup), from a statement compiled once.

    Must be called inside ``transaction.atomic``. On SQLite ``select_for_update`` is a no-op and
    SQLite serialises writers itself.
    """
    pk = loan.pk if isinstance(loan, Loan) else loan
    return locked_loan(pk, run_together(bind_loan_lock(pk))[0])


def actor_or_none(actor):
    """The user to store in a ``created_by``-style column: None for an anonymous actor."""
    return actor if getattr(actor, "pk", None) else None


def jsonable(value: Any) -> Any:
    """Decimals and dates as strings, recursively (audit rows and JSON columns)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
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
    also: tuple[Bound, ...] | list[Bound] = (),
) -> LoanEvent:
    """Append one audit row. ``changes`` maps a field to ``(before, after)``. The INSERT is
    bound once (``loans.statements``), not compiled by the ORM per call; the row is the one
    ``LoanEvent.objects.create`` writes. ``also``: statements of the caller's to run after it,
    in its round trip on PostgreSQL."""
    event = LoanEvent(
        loan_id=loan.pk if loan is not None else None,
        command=command,
        actor=actor_or_none(actor),
        created_at=timezone.now(),
        business_date=as_of,
        reason=(reason or "")[:500],
        input=jsonable(input or {}),
        changes=jsonable({k: list(v) for k, v in (changes or {}).items()}),
        result=jsonable(result or {}),
    )
    values = {f.attname: getattr(event, f.attname) for f in _EVENT_FIELDS}
    event.pk, *_ = run_together(bound_insert(LoanEvent, returning=True, **values), *also)
    event._state.adding, event._state.db = False, "default"
    return event


_EVENT_FIELDS = [f for f in LoanEvent._meta.concrete_fields if not f.primary_key]


def bind_external_id_check(external_id: str) -> Bound:
    """Whether a transaction (or a reversal) uses ``external_id``, as a statement for
    ``run_together`` (compiled once; its result: a list, empty when the id is free)."""
    return _EXTERNAL_ID_USED.bind(external_id=external_id)


_EXTERNAL_ID_USED = CompiledRead(
    lambda *, external_id: Transaction.objects.filter(
        Q(external_id=external_id) | Q(reversal_external_id=external_id)
    ).values_list("pk")[:1],
    external_id=_SENTINEL_TEXT,
)


def external_id_refusal(external_id: str, *, field: str = "externalId"):
    return DuplicateExternalIdError(
        f"The external id {external_id!r} is already used by another transaction.",
        errors=[field_error(field, "Already used.", "duplicate_external_id")],
    )


def check_external_id(external_id: str | None, *, field: str = "externalId") -> None:
    """409 when a transaction (or a reversal) already uses ``external_id``."""
    if not external_id:
        return
    if run_together(bind_external_id_check(external_id))[0]:
        raise external_id_refusal(external_id, field=field)


def original_contract_date(loan: Loan, posting: PostingState | None = None) -> date:
    if posting is not None:
        return posting.contract_date
    first = (
        LoanSetup.objects.filter(loan=loan).order_by("id").values_list("contract_date", flat=True)
    )
    return first.first()


def mark_reversed(
    tx: Transaction, *, actor, as_of: date, note: str = "", reversal_external_id=None
) -> None:
    """Mark a transaction reversed (kept, never deleted): on the business date, by whom, why,
    with its optional unique reversal external id."""
    tx.reversed = True
    tx.reversed_on = as_of
    tx.reversed_at = timezone.now()
    tx.reversed_by = actor_or_none(actor)
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


# --------------------------------------------------------------------------------------------
# Schedule versions
# --------------------------------------------------------------------------------------------


def period_row(schedule: Schedule, period, *, frozen: bool) -> SchedulePeriod:
    """A ``SchedulePeriod`` of ``schedule`` copied from a row or a ``ledger.PeriodState``."""
    return SchedulePeriod(
        schedule=schedule, frozen=frozen, **{name: getattr(period, name) for name in PERIOD_FIELDS}
    )


def period_state(row: SchedulePeriod) -> ledger.PeriodState:
    return ledger.PeriodState(
        frozen=row.frozen, **{name: getattr(row, name) for name in PERIOD_FIELDS}
    )


def frozen_rows(schedule: Schedule) -> list[SchedulePeriod]:
    return list(schedule.periods.filter(frozen=True).order_by("period"))


class StoredPeriods:
    """A schedule version's periods as stored, read as plain values (one query, no model
    instances): ``frozen`` and ``live`` as ``ledger.PeriodState`` (fresh objects each call), and
    the row id and values of each live period, for writing back only what changed."""

    def __init__(self, schedule: Schedule | None, *, rows: list | None = None):
        if rows is None:
            periods = SchedulePeriod.objects.filter(schedule=schedule).order_by("period")
            rows = list(periods.values_list("id", "frozen", *PERIOD_FIELDS))
        self.rows = rows

    def live_outstanding(self) -> Decimal:
        """``live_outstanding`` of these rows (no query)."""
        total = ZERO
        for row in self.rows:
            if not row[1]:
                values = dict(zip(PERIOD_FIELDS, row[2:], strict=True))
                total += values["principal_due"] + values["interest_due"] + values["fees_due"]
                total -= values["principal_paid"] + values["interest_paid"] + values["fees_paid"]
        return money_value(total)

    def _states(self, frozen: bool) -> list[ledger.PeriodState]:
        return [
            ledger.PeriodState(frozen=frozen, **dict(zip(PERIOD_FIELDS, row[2:], strict=True)))
            for row in self.rows
            if bool(row[1]) == frozen
        ]

    def frozen(self) -> list[ledger.PeriodState]:
        return self._states(True)

    def live(self) -> list[ledger.PeriodState]:
        return self._states(False)

    def live_rows(self) -> dict[int, tuple]:
        """``{period number: (row id, values in PERIOD_FIELDS order)}`` of the live periods."""
        return {row[2]: (row[0], tuple(row[2:])) for row in self.rows if not row[1]}


class PostingState:
    """What a transaction command reads once, after the loan's row lock, in one statement: the
    current schedule version (``schedule``, its setup the loan's when it is), its periods
    (``stored``, a ``StoredPeriods``), the date of the latest non-reversed transaction
    (``latest_on``), the loan's original contract date (``contract_date``), and of the
    version's setup's stored engine states the latest one's date (``state_on``) and the latest
    lasting one's count of events (``lasting_events``), for ``store_appended_state``. None from
    ``read`` when the version has no period rows (the caller reads them the usual way)."""

    __slots__ = ("schedule", "stored", "latest_on", "contract_date", "state_on", "lasting_events")

    @classmethod
    def bind(cls, loan_id: int) -> Bound:
        """The read as a statement for ``run_together`` (compiled once), to send in one round
        trip after the loan's lock; ``from_rows`` turns its rows into the state."""
        return _POSTING.bind(loan_id=loan_id)

    @classmethod
    def from_rows(cls, loan: Loan, rows: list) -> PostingState | None:
        if not rows:
            return None
        state = cls()
        head = rows[0]
        state.latest_on, state.contract_date = head[0], head[1]
        state.state_on, state.lasting_events = head[2], head[3]
        width = 4 + len(_SCHEDULE_FIELDS)
        state.schedule = Schedule.from_db("default", _SCHEDULE_FIELDS, head[4:width])
        if state.schedule.setup_id == loan.setup_id:
            state.schedule.setup = loan.setup
        state.stored = StoredPeriods(None, rows=[row[width:] for row in rows])
        return state

    @classmethod
    def read(cls, loan: Loan) -> PostingState | None:
        return cls.from_rows(loan, run_together(cls.bind(loan.pk))[0])


# The version's columns the command uses (repeated on each period's row, so not its note,
# reason and creation: the instance defers them, a read if ever touched).
_SCHEDULE_FIELDS = ["id", "loan_id", "version", "setup_id", "is_current"]


def _posting_query(*, loan_id: int):
    latest = (
        Transaction.objects.filter(loan=loan_id, reversed=False)
        .order_by("-date")
        .values("date")[:1]
    )
    first = LoanSetup.objects.filter(loan=loan_id).order_by("id").values("contract_date")[:1]
    # The current version's setup, as a subquery of its own (not correlated: run once).
    setup = Schedule.objects.filter(loan=loan_id, is_current=True).values("setup")[:1]
    states = EngineState.objects.filter(setup=Subquery(setup)).order_by("-on")
    periods = SchedulePeriod.objects.filter(schedule__loan=loan_id, schedule__is_current=True)
    return (
        periods.annotate(
            latest_on=Subquery(latest),
            first_contract=Subquery(first),
            state_on=Subquery(states.values("on")[:1]),
            lasting_events=Subquery(states.filter(lasting=True).values("events")[:1]),
        )
        .order_by("period")
        .values_list(
            "latest_on",
            "first_contract",
            "state_on",
            "lasting_events",
            *(f"schedule__{name.removesuffix('_id')}" for name in _SCHEDULE_FIELDS),
            "id",
            "frozen",
            *PERIOD_FIELDS,
        )
    )


_POSTING = CompiledRead(_posting_query, loan_id=_SENTINEL_LOAN)


def live_outstanding(loan: Loan) -> Decimal:
    """Everything outstanding on the current schedule version's live periods (one aggregate)."""
    owed = F("principal_due") + F("interest_due") + F("fees_due")
    paid = F("principal_paid") + F("interest_paid") + F("fees_paid")
    total = SchedulePeriod.objects.filter(
        schedule__loan=loan, schedule__is_current=True, frozen=False
    ).aggregate(total=Sum(owed - paid))["total"]
    return ZERO if total is None else money_value(total)


def money_value(value) -> Decimal:
    """A database sum as cents (SQLite may return a float-typed or longer Decimal)."""
    return Decimal(value).quantize(Decimal("0.01"))


_period_values = attrgetter(*PERIOD_FIELDS)  # a period's values, in PERIOD_FIELDS order


def write_live_periods(
    schedule: Schedule,
    periods: list[ledger.PeriodState],
    stored: dict[int, tuple],
    *,
    first: Bound | None = None,
):
    """Make the version's live rows equal ``periods``, writing only the difference from
    ``stored`` (``StoredPeriods.live_rows``): changed rows updated in one statement, missing
    ones inserted, extra ones deleted. At most three statements, whatever the number of rows.
    ``first``: a statement of the caller's to run before them (in the round trip of the usual
    payment's one UPDATE on PostgreSQL); its result is returned."""
    changed, fields, created, kept = [], set(), [], set()
    for p in ledger.live(periods):
        values = _period_values(p)
        row = stored.get(p.period)
        if row is None:
            created.append(period_row(schedule, p, frozen=False))
            continue
        row_id, before = row
        kept.add(p.period)
        if values == before:
            continue
        differ = [name for name, a, b in zip(PERIOD_FIELDS, values, before, strict=True) if a != b]
        if differ:
            fields.update(differ)
            changed.append((row_id, values))
    extra = [row_id for number, (row_id, _) in stored.items() if number not in kept]
    names = [name for name in PERIOD_FIELDS if name in fields]
    single = None
    if len(changed) == 1:  # the usual payment: one period, its changed columns (bound once)
        ((row_id, values),) = changed
        update = dict(zip(PERIOD_FIELDS, values, strict=True))
        single = bound_update(SchedulePeriod, {"pk": row_id}, **{n: update[n] for n in names})
    head = None
    if first is not None:  # with the single UPDATE unless rows are deleted before it
        together = [first] if single is None or extra else [first, single]
        head = run_together(*together)[0]
        single = None if len(together) == 2 else single
    if extra:
        SchedulePeriod.objects.filter(pk__in=extra).delete()
    if single is not None:
        run_together(single)
    elif len(changed) > 1:
        SchedulePeriod.objects.bulk_update(
            [
                SchedulePeriod(pk=row_id, **dict(zip(PERIOD_FIELDS, values, strict=True)))
                for row_id, values in changed
            ],
            names,
            batch_size=1000,
        )
    if created:
        SchedulePeriod.objects.bulk_create(created, batch_size=2000)
    return head


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
        created_by=actor_or_none(actor),
    )
    SchedulePeriod.objects.bulk_create(period_row(schedule, p, frozen=True) for p in frozen_periods)
    return schedule


REPLAYED_TYPES = (
    TransactionType.CHARGE,
    TransactionType.REPAYMENT,
    TransactionType.CREDIT,
    TransactionType.PAYOFF,
    TransactionType.CHARGE_OFF,
)


# Transactions that move no cash and carry what was outstanding at their place in the replay.
NON_MONETARY_TYPES = (TransactionType.CONTRACT_TERMINATION, TransactionType.CHARGE_OFF)


def accrual_for(setup: LoanSetup) -> ledger.ProratedAccrual:
    """How the setup earns interest between due dates: the seam of the payoff and the replay.
    A non-recalculating loan prorates its installment's scheduled interest by days (§9); the
    interest recalculation engine (§11) returns its daily accrual here."""
    return ledger.PRORATED


def credit_balance(loan: Loan) -> Decimal:
    """What the borrower paid beyond everything owed and was not refunded (DESIGN §9)."""
    figures = Transaction.objects.filter(loan=loan, reversed=False).aggregate(
        overpaid=Sum("overpayment_portion", filter=Q(type__in=PAYING_TYPES)),
        refunded=Sum("amount", filter=Q(type=TransactionType.CREDIT_BALANCE_REFUND)),
    )
    return (figures["overpaid"] or ZERO) - (figures["refunded"] or ZERO)


class HistoryRow:
    """What the replay reads (and the rebuild writes back) of a transaction: plain values, not
    a model instance (loading a long history as model instances costs ten times as much)."""

    __slots__ = (
        "pk",
        "type",
        "date",
        "amount",
        "principal_portion",
        "interest_portion",
        "fees_portion",
        "overpayment_portion",
    )

    def __init__(self, pk, type, date, amount, principal, interest, fees, overpayment):
        self.pk, self.type, self.date, self.amount = pk, type, date, amount
        self.principal_portion, self.interest_portion = principal, interest
        self.fees_portion, self.overpayment_portion = fees, overpayment

    def portions(self) -> tuple:
        return (
            self.principal_portion,
            self.interest_portion,
            self.fees_portion,
            self.overpayment_portion,
        )


def _replayed_rows(loan: Loan, schedule: Schedule):
    rows = Transaction.objects.filter(loan=loan, reversed=False).exclude(
        type=TransactionType.DISBURSEMENT
    )
    if schedule.setup.mod_id is not None:
        rows = rows.filter(date__gt=schedule.setup.contract_date)
    return rows


def replay_transactions(loan: Loan, schedule: Schedule, *, since: date | None = None) -> list:
    """The non-reversed transactions a schedule version replays, in (date, entry) order, as
    ``HistoryRow`` values (``since``: only those dated on or after it).

    A version generated from a modification's setup replays only what is dated after the
    modification date: what came before is carried in the setup's ``loanAmount``.
    """
    rows = _replayed_rows(loan, schedule)
    if since is not None:
        rows = rows.filter(date__gte=since)
    return [
        HistoryRow(*values)
        for values in rows.order_by("date", "id").values_list("id", *HistoryRow.__slots__[1:])
    ]


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
        frozen = [period_state(p) for p in frozen_rows(schedule)]
    dynamic = loan.schedule_engine == ScheduleEngine.DYNAMIC
    if setup.interest_recalculation and dynamic:  # DESIGN §11: daily accrual
        from loans.selectors import get_business_date  # selectors imports this module

        return recalculation.derive(
            terms=terms,
            transactions=transactions,
            frozen=frozen,
            horizon=get_business_date(),
            termination_interest=setup.termination_interest,
        )
    base = generate_schedule(terms, first_number=len(frozen) + 1)
    periods = frozen + ledger.periods_from_schedule(base)
    for tx in transactions:
        if tx.type == TransactionType.ADVANCEMENT:
            periods = ledger.apply_advancement(
                periods, on=tx.date, amount=tx.amount, terms=terms, dynamic=dynamic
            )
    return _replay(setup, periods, transactions, dynamic=dynamic, resume=False)


def derive_with(
    loan: Loan,
    schedule: Schedule,
    transactions: list,
    extra,
    *,
    frozen: list[ledger.PeriodState],
    from_state: bool = False,
) -> tuple[ledger.ReplayResult, ledger.ReplayResult]:
    """``derive_periods`` without and with ``extra`` (a command's preview: the loan before and
    after it). When ``extra`` is dated on or after every transaction the history is replayed
    once (a recalculating loan: its engine is copied before ``extra``; else ``extra`` resumes
    from the first result's periods). ``from_state``: ``transactions`` are every one the
    version replays, so a recalculating loan replays from its latest stored engine state that
    stands (the results then allocate only what follows it, and ``extra``)."""
    setup = schedule.setup
    after_all = all(t.date <= extra.date for t in transactions)
    if after_all and recalculates(loan, setup):
        from loans.selectors import get_business_date  # selectors imports this module

        horizon = get_business_date()
        start = None
        everything = transactions
        if from_state:
            state = _standing_state(loan, schedule, before=extra.date, inclusive=True)
            if state is not None:
                key = state.key or 0
                follows = [
                    t
                    for t in transactions
                    if t.date > state.on or (t.date == state.on and t.pk > key)
                ]
                if follows or state.key is not None or state.on <= horizon:
                    start = progressive.Checkpoint(state.on, state.key, bytes(state.state))
                    transactions = follows
        arguments = {
            "terms": terms_for(setup),
            "extra": extra,
            "frozen": frozen,
            "horizon": horizon,
            "termination_interest": setup.termination_interest,
        }
        try:
            return recalculation.derive_with(transactions=transactions, start=start, **arguments)
        except progressive.HistoryNeeded:  # a charge paid from an overpayment before the state
            return recalculation.derive_with(transactions=everything, **arguments)
    before = derive_periods(loan, schedule, transactions, frozen=frozen)
    copies = [replace(p) for p in before.periods]
    after = resume_periods(loan, schedule, copies, [extra]) if after_all else None
    if after is None:
        frozen_copies = [replace(p) for p in frozen]
        after = derive_periods(loan, schedule, [*transactions, extra], frozen=frozen_copies)
    return before, after


def _replay(
    setup, periods, transactions, *, dynamic: bool, resume: bool, start=None, keep=()
) -> ledger.ReplayResult:
    # Charges, repayments, credits and payoffs are replayed in (date, entry) order; a DYNAMIC
    # loan's termination collapses the schedule at its own place in that order, so what was
    # paid before it is never re-split (DESIGN §1, ledger integrity).
    entries = [
        ledger.Entry(key=t.pk, type=t.type, date=t.date, amount=t.amount)
        for t in transactions
        if t.type in REPLAYED_TYPES
        or t.type == TransactionType.CREDIT_BALANCE_REFUND  # what stands of the credit (ledger)
        or (t.type == TransactionType.CONTRACT_TERMINATION and dynamic)
    ]
    return ledger.replay(
        periods,
        entries,
        termination_interest=setup.termination_interest,
        rounding_mode=setup.rounding_mode,
        accrual=accrual_for(setup),
        resume=resume,
        start=start,
        keep=keep,
    )


def _void_terminations(loan: Loan, schedule: Schedule, keys: list) -> Schedule:
    """A replay left a termination with nothing outstanding on its date: the system reverses it
    (kept, marked reversed on the business date), clears the sub-status and starts a schedule
    version without it (Fineract S12). Returns the new version."""
    row = BusinessDate.objects.filter(pk=1).only("date").first()
    as_of = row.date if row else timezone.localdate()  # selectors.get_business_date's rule
    note = "Reversed by the system: nothing was outstanding on its date after a replay."
    Transaction.objects.filter(pk__in=keys).update(
        reversed=True, reversed_on=as_of, reversed_at=timezone.now(), reversal_note=note
    )
    sub_status_before = loan.sub_status
    loan.sub_status = None
    Loan.objects.filter(pk=loan.pk).update(sub_status=None)
    version = new_schedule_version(
        loan=loan,
        reason=ScheduleReason.UNDO_CONTRACT_TERMINATION,
        actor=None,
        note=note,
        setup=schedule.setup,
    )
    record_event(
        loan=loan,
        command="system_reverse_termination",
        actor=None,
        as_of=as_of,
        reason=note,
        changes={
            "subStatus": (sub_status_before, None),
            "transaction.reversed": (False, True),
        },
        result={"transactionIds": keys, "scheduleVersion": version.version},
    )
    return version


def recalculates(loan: Loan, setup: LoanSetup) -> bool:
    """Whether the setup's interest is recalculated daily (DESIGN §11)."""
    return bool(setup.interest_recalculation) and loan.schedule_engine == ScheduleEngine.DYNAMIC


# The types whose replay can start from the stored schedule state (``ledger.replay(resume=
# True)``): an advancement re-amortizes the base installments, so it replays everything.
RESUMABLE_TYPES = (
    TransactionType.CHARGE,
    TransactionType.REPAYMENT,
    TransactionType.CREDIT,
    TransactionType.CONTRACT_TERMINATION,
)


def resume_periods(
    loan: Loan, schedule: Schedule, periods: list[ledger.PeriodState], entries: list
) -> ledger.ReplayResult | None:
    """The replay of ``entries`` (transactions, or anything with pk, type, date and amount,
    dated on or after every transaction the stored ``periods`` reflect) from the stored state:
    what the whole replay would give, at a cost independent of the history. None where that
    cannot be guaranteed (a recalculating loan: its daily accrual is not stored per period; a
    type that regenerates the base installments; ``ledger.can_resume``): the caller replays
    everything."""
    setup = schedule.setup
    dynamic = loan.schedule_engine == ScheduleEngine.DYNAMIC
    if recalculates(loan, setup) or loan.charged_off or not ledger.can_resume(periods):
        return None
    if loan.status == LoanStatus.OVERPAID:  # its credit balance pays a charge (ledger.replay)
        return None
    if not ledger.live(periods) or any(t.type not in RESUMABLE_TYPES for t in entries):
        return None
    settles = any(t.type == TransactionType.CONTRACT_TERMINATION for t in entries)
    if settles and not ledger.balances_follow(periods):  # stored rows after an advancement
        return None
    return _replay(setup, periods, entries, dynamic=dynamic, resume=True)


def resume_appended(
    loan: Loan, posting: PostingState, tx: Transaction
) -> tuple[ledger.ReplayResult, list] | None:
    """A transaction about to be written (``tx``, no id yet), dated on or after every other
    one, replayed from the stored periods (``posting``, read after the row lock): ``(result,
    rows)`` for ``rebuild_schedule(derived=...)``, with ``tx``'s portions set, so that it is
    written once, with them. None where ``rebuild_schedule`` must replay after the insert (a
    recalculating loan, a type that reshapes the installments, a backdated one, a loan that
    is not active, ``resume_periods``)."""
    if (
        loan.status != LoanStatus.ACTIVE
        or tx.type not in RESUMABLE_TYPES
        or recalculates(loan, posting.schedule.setup)
        or (posting.latest_on is not None and posting.latest_on > tx.date)
    ):
        return None
    row = HistoryRow(None, tx.type, tx.date, tx.amount, ZERO, ZERO, ZERO, ZERO)
    stored = posting.stored
    result = resume_periods(loan, posting.schedule, stored.frozen() + stored.live(), [row])
    if result is None:
        return None
    _changed_portions([row], result)
    (tx.principal_portion, tx.interest_portion, tx.fees_portion, tx.overpayment_portion) = (
        row.portions()
    )
    return result, [row]


def keyed(derived: tuple[ledger.ReplayResult, list], tx: Transaction) -> tuple:
    """``resume_appended``'s answer once ``tx`` was written: its row and allocation under its
    id."""
    result, rows = derived
    result.allocations[tx.pk] = result.allocations.pop(None)
    for row in rows:
        row.pk = tx.pk
    return result, rows


# An appended transaction stores a ledger state when it opens a period and at least this many
# due dates passed since the latest stored state: a backdated command then replays at most about
# this many periods' transactions (a constant, whatever the history), and a monthly payer's
# dispatched repayments pay the state's three statements once in this many payments, not each.
APPENDED_STATE_PERIODS = 6


def store_appended_state(loan: Loan, posting: PostingState, tx: Transaction) -> EngineState | None:
    """Store the ledger replay's state before ``tx`` (a transaction ``resume_appended``
    replayed from the stored periods, ``posting``) when ``tx`` opens a new period: so that a
    loan whose history is written one appended transaction at a time (the API's, the
    dispatcher's) has a state in its recent periods, as one rebuilt from its history
    has, and a backdated command replays only from there (``_ledger_replayed``).

    The rule: ``tx`` is dated after the latest transaction (``posting.latest_on``, L) and a
    live due date lies in ``(L, tx.date]``, and the latest stored state of the setup is dated
    before L with at least ``APPENDED_STATE_PERIODS`` due dates in ``(its date, tx.date]``, or
    the setup has no stored state yet and at most ``APPENDED_STATE_PERIODS`` due dates passed (a
    loan the commands activated: its first period opens; a loan loaded without derived state,
    in bulk, many periods in, gets its states from its first rebuild as before, not here, so
    its first dispatched repayment costs what the others do). The state is then dated L,
    reflecting every transaction dated on or before it (``key``: the last replayed one of that
    date), i.e. the stored periods as ``posting`` read them: exactly what the whole replay holds after those transactions, when

    * ``ledger.can_resume`` holds (no installment complete without a date) and, after an
      advancement, ``ledger.balances_follow`` (the unstored ``advanced_later`` is then zero
      everywhere: each balance is the principal scheduled after it);
    * no termination, charge-off or credit balance stands (not stored: the settlement's
      ``interest_credit``, the stopped accrual; a credit balance takes no state in the replay
      either, ``ledger.replay``);

    its cursor is the first installment not complete (where the resumed replay starts, the
    same figures: ``ledger.replay``), its refunds and overpayments the transactions'
    (``credit_balance``'s sums), its meta as ``_ledger_replayed`` writes it. Otherwise nothing
    is stored. It is lasting when ``progressive.EVENTS_PER_STATE`` events followed the latest
    lasting state; the other (recent) states but the latest ``progressive.RECENT`` are dropped.

    Within a period nothing is read or written (the Python checks above); when a period opens:
    the figures' aggregate (and the advancements' ids, when there are some), the INSERT, the
    DELETE of the old recent states: three statements (four), whatever the history."""
    latest = posting.latest_on
    if latest is None or tx.date <= latest:
        return None
    if posting.state_on is not None and posting.state_on >= latest:
        return None
    periods = posting.stored.live()
    if not any(latest < p.due_date <= tx.date for p in periods):
        return None
    since = posting.state_on
    passed = sum(p.due_date <= tx.date and (since is None or since < p.due_date) for p in periods)
    if (passed > APPENDED_STATE_PERIODS) if since is None else (passed <= APPENDED_STATE_PERIODS):
        return None
    if loan.charged_off or loan.is_terminated or not ledger.can_resume(periods):
        return None
    schedule = posting.schedule
    rows = _replayed_rows(loan, schedule).filter(date__lte=latest)
    modulus = Mod("pk", _FINGERPRINT_MODULUS)
    figures = rows.aggregate(
        events=Count("pk"),
        key_sum=Sum("pk"),
        squares=Sum(modulus * modulus),
        key=Max("pk", filter=Q(date=latest)),
        overpaid=Sum("overpayment_portion", filter=Q(type__in=PAYING_TYPES)),
        refunded=Sum("amount", filter=Q(type=TransactionType.CREDIT_BALANCE_REFUND)),
        advancements=Count("pk", filter=Q(type=TransactionType.ADVANCEMENT)),
        unsettling=Count(
            "pk",
            filter=Q(type__in=[TransactionType.CONTRACT_TERMINATION, TransactionType.CHARGE_OFF]),
        ),
    )
    if not figures["events"] or figures["unsettling"]:
        return None
    overpaid = money_value(figures["overpaid"] or ZERO)
    refunded = money_value(figures["refunded"] or ZERO)
    if overpaid > refunded:
        return None
    advancements = ()
    if figures["advancements"]:
        if not ledger.balances_follow(periods):
            return None
        advanced = rows.filter(type=TransactionType.ADVANCEMENT).order_by("date", "pk")
        advancements = tuple((pk, on.toordinal()) for pk, on in advanced.values_list("pk", "date"))
    events = figures["events"]
    mark = posting.lasting_events or 0
    lasting = events - mark >= progressive.EVENTS_PER_STATE
    if lasting:
        mark = events
    cursor = next((i for i, p in enumerate(periods) if not p.complete), len(periods))
    dynamic = loan.schedule_engine == ScheduleEngine.DYNAMIC
    meta = (len(posting.stored.frozen()), dynamic, False, events, mark, advancements)
    blob = ledger.dumps(ledger.ReplayState(periods, cursor, False, refunded, overpaid), meta)
    setup = schedule.setup
    state = EngineState.objects.create(
        setup=setup,
        on=latest,
        key=figures["key"],
        events=events,
        key_sum=figures["key_sum"],
        squares=figures["squares"],
        state=blob,
        lasting=lasting,
    )
    states = EngineState.objects.filter(setup=setup)
    recent = states.order_by("-on").values("on")[progressive.RECENT - 1 : progressive.RECENT]
    states.filter(lasting=False, on__lt=Subquery(recent)).delete()
    return state


def _later_than(loan: Loan, tx: Transaction) -> bool:
    """Whether a non-reversed transaction other than ``tx`` is dated after it."""
    return (
        Transaction.objects.filter(loan=loan, reversed=False, date__gt=tx.date)
        .exclude(pk=tx.pk)
        .exists()
    )


PORTION_FIELDS = [
    "amount",
    "principal_portion",
    "interest_portion",
    "fees_portion",
    "overpayment_portion",
]


def _changed_portions(rows: list, result: ledger.ReplayResult) -> list:
    """The rows whose amount or portions the replay changed, updated in place
    (``_portion_rows`` makes the instances to write)."""
    changed = []
    for tx in rows:
        amount = tx.amount
        if tx.type == TransactionType.ADVANCEMENT:
            portions = (tx.amount, ZERO, ZERO, ZERO)
        elif tx.pk in result.allocations:
            a = result.allocations[tx.pk]
            portions = (a.principal, a.interest, a.fees, a.overpayment)
            if tx.type in NON_MONETARY_TYPES:  # they move no cash: the amount is the portions
                amount = a.total
        else:
            continue
        current = (
            tx.principal_portion,
            tx.interest_portion,
            tx.fees_portion,
            tx.overpayment_portion,
        )
        if current != portions or amount != tx.amount:
            (
                tx.principal_portion,
                tx.interest_portion,
                tx.fees_portion,
                tx.overpayment_portion,
            ) = portions
            tx.amount = amount
            changed.append(tx)
    return changed


def _portion_rows(changed: list) -> list[Transaction]:
    """``_changed_portions``' rows as instances to ``bulk_update``."""
    return [
        Transaction(pk=tx.pk, **{name: getattr(tx, name) for name in PORTION_FIELDS})
        for tx in changed
    ]


# --------------------------------------------------------------------------------------------
# Stored engine states (a recalculating setup's replay starts from the last one that stands)
# --------------------------------------------------------------------------------------------

_FINGERPRINT_MODULUS = 65521


def _fingerprint(rows) -> dict:
    """What identifies a set of transactions (count, sum of ids, sum of squared residues):
    a reversal lowers it, a new transaction (a higher id) raises it."""
    return rows.aggregate(
        events=Count("pk"),
        key_sum=Sum("pk"),
        squares=Sum(Mod("pk", _FINGERPRINT_MODULUS) * Mod("pk", _FINGERPRINT_MODULUS)),
    )


def _squares(pks) -> int:
    return sum((pk % _FINGERPRINT_MODULUS) ** 2 for pk in pks)


def _standing_state(
    loan: Loan, schedule: Schedule, *, before: date | None, inclusive: bool, plain: bool = False
):
    """The latest stored state of the setup's replay dated before ``before`` (on it too when
    ``inclusive``: a transaction just entered sorts after every other of its date; None: the
    latest), if the transactions it reflects are still exactly the non-reversed ones
    (``EngineState.events``/``key_sum``) and it is the engine's own (``plain``: the ledger
    replay's, ``ledger.STATE_TAG``; else the daily-accrual engine's). Two queries, whatever
    the history."""
    states = EngineState.objects.filter(setup=schedule.setup)
    if before is not None:
        states = states.filter(on__lte=before) if inclusive else states.filter(on__lt=before)
    state = states.order_by("-on").first()
    if state is None:
        return None
    state.state = bytes(state.state)
    if state.state.startswith(ledger.STATE_TAG) != plain:  # the other engine's
        return None
    reflected = Q(date__lt=state.on)
    if state.key is not None:
        reflected |= Q(date=state.on, pk__lte=state.key)
    found = _fingerprint(_replayed_rows(loan, schedule).filter(reflected))
    expected = {"events": state.events, "key_sum": state.key_sum, "squares": state.squares}
    if found["events"] == 0:
        found = {"events": 0, "key_sum": 0, "squares": 0}
    return state if found == expected else None


def _recalculated(
    loan: Loan,
    schedule: Schedule,
    frozen: list[ledger.PeriodState],
    *,
    before: date | None = None,
    inclusive: bool = False,
    scratch: bool = False,
) -> tuple[ledger.ReplayResult, list, bool]:
    """A recalculating setup's replay (DESIGN §11), from the latest stored engine state that
    stands (``_standing_state``; ``scratch``: from the loan's start), and the states it passed
    stored in their place: ``(result, the rows it allocates, whether a termination stands)``.
    What it replays is the transactions after the state; the query count is constant."""
    from loans.selectors import get_business_date  # selectors imports this module

    setup = schedule.setup
    state = None if scratch else _standing_state(loan, schedule, before=before, inclusive=inclusive)
    start = None
    if state is not None:
        start = progressive.Checkpoint(on=state.on, key=state.key, state=bytes(state.state))
        loaded = replay_transactions(loan, schedule, since=state.on)
        inside = [t for t in loaded if _reflected(state, t.pk, t.date)]
        rows = loaded[len(inside) :]  # (date, id) order: the state's come first
        base = (state.events, state.key_sum, state.squares)
    else:
        rows, inside, base = replay_transactions(loan, schedule), [], (0, 0, 0)
    derived = recalculation.resume(
        terms=terms_for(setup),
        transactions=rows,
        start=start,
        frozen=frozen,
        horizon=get_business_date(),
        termination_interest=setup.termination_interest,
    )
    if derived is None:  # the state lies beyond where the replay stops now
        return _recalculated(loan, schedule, frozen, scratch=True)
    result, resumed = derived
    if not result.void_terminations:
        _store_states(setup, state, resumed.checkpoints, resumed.recent, rows, inside, base)
    return result, rows, resumed.result.terminated_on is not None


def _store_states(setup, state, checkpoints, recent, rows, inside, base) -> None:
    """Replace the states the replay passed (``checkpoints``, those after the one it started
    from) and drop the recent ones no longer ``recent`` (``progressive.RECENT``; None: nothing
    replayed). Two statements."""
    states = EngineState.objects.filter(setup=setup)
    if state is None:
        stale = Q()  # a replay from the start: every state is replaced
    elif recent is None:  # nothing replayed: the states up to the start stand
        stale = Q(on__gt=state.on)
    else:
        stale = Q(on__gt=state.on) | Q(on__in=[c.on for c in checkpoints])
        stale |= Q(lasting=False) & ~Q(on__in=recent)
    states.filter(stale).delete()
    created, position = [], 0
    events, key_sum, squares = base
    last_inside = inside[-1] if inside else None
    for checkpoint in checkpoints:
        while position < len(rows) and rows[position].date <= checkpoint.on:
            pk = rows[position].pk
            events, key_sum, squares = events + 1, key_sum + pk, squares + _squares([pk])
            position += 1
        # (date, id) order: the last row so far is the last one of its date.
        last = rows[position - 1] if position else last_inside
        created.append(
            EngineState(
                setup=setup,
                on=checkpoint.on,
                key=last.pk if last is not None and last.date == checkpoint.on else None,
                events=events,
                key_sum=key_sum,
                squares=squares,
                state=checkpoint.state,
                lasting=checkpoint.lasting,
            )
        )
    EngineState.objects.bulk_create(created)


def _ledger_replayed(
    loan: Loan,
    schedule: Schedule,
    frozen: list[ledger.PeriodState],
    *,
    before: date | None = None,
    inclusive: bool = False,
    scratch: bool = False,
) -> tuple[ledger.ReplayResult, list, bool]:
    """A non-recalculating setup's replay (``derive_periods``) from the latest stored ledger
    state that stands (``_standing_state(plain=True)``, see ``_ledger_start``; ``scratch``:
    from the loan's start), storing the states it passes in their place, as the daily-accrual
    engine's (``_recalculated``: the last ``progressive.RECENT`` period boundaries before the
    latest transaction, after it, and one after every ``progressive.EVENTS_PER_STATE``
    transactions): ``(result, the rows it allocates, whether a termination stands)``. The
    figures are the whole replay's; the query count is constant."""
    setup = schedule.setup
    dynamic = loan.schedule_engine == ScheduleEngine.DYNAMIC
    start = None
    if not scratch:
        state = _standing_state(loan, schedule, before=before, inclusive=inclusive, plain=True)
        start = state and _ledger_start(loan, schedule, frozen, state, dynamic=dynamic)
    if start is not None:
        state, replay_state, meta, rows, inside = start
        periods = frozen + replay_state.periods
        base = (state.events, state.key_sum, state.squares)
        _, _, terminated_before, applied, mark, stored_advancements = meta
        advancements = [
            a for a in stored_advancements if _reflected(state, a[0], date.fromordinal(a[1]))
        ]
    else:
        state, replay_state, inside, base = None, None, [], (0, 0, 0)
        rows = replay_transactions(loan, schedule)
        terms = terms_for(setup)
        periods = frozen + ledger.periods_from_schedule(
            generate_schedule(terms, first_number=len(frozen) + 1)
        )
        for tx in rows:
            if tx.type == TransactionType.ADVANCEMENT:
                periods = ledger.apply_advancement(
                    periods, on=tx.date, amount=tx.amount, terms=terms, dynamic=dynamic
                )
        terminated_before, applied, mark, advancements = False, 0, 0, []
    advancing = TransactionType.ADVANCEMENT
    advancements += [(t.pk, t.date.toordinal()) for t in rows if t.type == advancing]
    keep, recent = _ledger_checkpoints(
        periods, rows, after=state and state.on, applied=applied, mark=mark
    )
    result = _replay(
        setup,
        periods,
        rows,
        dynamic=dynamic,
        resume=False,
        start=replay_state,
        keep=[on for on, _, _, _ in keep],
    )
    ending = TransactionType.CONTRACT_TERMINATION
    if not result.void_terminations:
        taken = dict(result.states)
        checkpoints, position, terminated = [], 0, terminated_before
        for on, lasting, count, marked in keep:
            while position < len(rows) and rows[position].date <= on:
                terminated |= rows[position].type == ending
                position += 1
            if on not in taken:  # a credit balance stood there (``ledger.replay``)
                continue
            facts = (len(frozen), dynamic, terminated, count, marked, tuple(advancements))
            blob = ledger.dumps(taken[on], facts)
            checkpoints.append(progressive.Checkpoint(on=on, key=None, state=blob, lasting=lasting))
        _store_states(setup, state, checkpoints, recent, rows, inside, base)
    result.states = []
    return result, rows, terminated_before or any(t.type == ending for t in rows)


def _reflected(state: EngineState, pk: int, on: date) -> bool:
    """Whether a transaction (its id and date) is one of those ``state`` reflects."""
    return on < state.on or (on == state.on and state.key is not None and pk <= state.key)


def _ledger_start(loan, schedule, frozen, state: EngineState, *, dynamic: bool):
    """``(state, ledger.ReplayState, its meta, the rows after it, those of its date in it)``
    to resume ``_ledger_replayed`` from; None where it cannot stand for the history: stored
    for another engine (STANDARD/DYNAMIC) or another count of frozen periods, or the
    advancements after its date are not those it was replayed with (every advancement
    reshapes the base installments the replay starts from: ``derive_periods``)."""
    loaded = ledger.loads(state.state)
    if loaded is None:
        return None
    replay_state, meta = loaded
    frozen_count, was_dynamic, _terminated, _applied, _mark, advancements = meta
    if frozen_count != len(frozen) or was_dynamic != dynamic:
        return None
    rows = replay_transactions(loan, schedule, since=state.on)
    inside = [t for t in rows if _reflected(state, t.pk, t.date)]
    rows = rows[len(inside) :]  # (date, id) order: the state's come first
    later = {pk for pk, day in advancements if not _reflected(state, pk, date.fromordinal(day))}
    if later != {t.pk for t in rows if t.type == TransactionType.ADVANCEMENT}:
        return None
    return state, replay_state, meta, rows, inside


def _ledger_checkpoints(periods, rows, *, after: date | None, applied: int, mark: int):
    """Where ``_ledger_replayed`` takes states: ``([(date, lasting, transactions replayed by
    then, the count at the last lasting state)], the recent dates)``, at the live periods' due
    dates after ``after`` up to the latest transaction and on its date, as ``progressive.resume``
    chooses them (the recent ones: None when nothing is replayed)."""
    if not rows:
        return [], None
    head = rows[-1].date
    boundaries = sorted({p.due_date for p in ledger.live(periods)})
    passed = boundaries[: bisect.bisect_right(boundaries, head)]
    recent = frozenset([*passed[-progressive.RECENT :], head])
    pending = passed[0 if after is None else bisect.bisect_right(passed, after) :]
    if not pending or pending[-1] != head:
        pending.append(head)
    chosen, position = [], 0
    for on in pending:
        while position < len(rows) and rows[position].date <= on:
            position += 1
        count = applied + position
        lasting = count - mark >= progressive.EVENTS_PER_STATE and on != head
        if not lasting and on not in recent:
            continue
        if lasting:
            mark = count
        chosen.append((on, lasting, count, mark))
    return chosen, recent


def rebuild_schedule(
    loan: Loan,
    *,
    schedule: Schedule | None = None,
    appended: Transaction | None = None,
    derived: tuple[ledger.ReplayResult, list] | None = None,
    since: date | None = None,
    posting: PostingState | None = None,
    insert: Bound | None = None,
) -> ledger.ReplayResult:
    """Re-derive the current schedule version's live periods and the transactions' portions
    from the setup and the non-reversed transactions, and write what changed (the periods and
    portions a command changes, not all of them). Constant query count.

    ``appended``: the transaction the command just created; when it is dated on or after every
    other one the replay starts from the stored schedule state (``resume_periods``) instead of
    replaying the history, and its portions are set on it. ``derived``: the command already
    derived the result with the transaction it created (a termination's preview): ``(result,
    rows)``, the rows whose portions the result allocates; it is written as is. ``posting``:
    the schedule and periods the command read after the lock (``PostingState``), not read
    again (nothing else wrote them since). ``insert``: with ``derived``, ``appended`` is not
    written yet and this is its INSERT (its result the new id): it goes in the round trip of
    the schedule's first write, then ``derived`` is keyed under the id (``keyed``).

    A termination's portions (and amount: it moves no cash) are what is outstanding at its
    place after the replay; one left with nothing is reversed by the system. What a payment
    brought beyond everything owed is its overpayment portion, the loan's credit balance. The
    status follows: something outstanding -> ACTIVE, else a credit balance -> OVERPAID, else
    CLOSED. A replay that would leave less credit than was already refunded is refused (409
    ``credit_balance_refunded``; the caller's transaction rolls back).
    """
    if posting is not None:
        schedule, stored = posting.schedule, posting.stored
    else:
        schedule = schedule or Schedule.objects.select_related("setup").get(
            loan=loan, is_current=True
        )
        stored = StoredPeriods(schedule)
    result, rows = derived if derived is not None else (None, [])
    resumable = (
        result is None
        and appended is not None
        and loan.status == LoanStatus.ACTIVE
        and appended.type in RESUMABLE_TYPES
        and not recalculates(loan, schedule.setup)
        and not _later_than(loan, appended)
    )
    if resumable:
        rows = [HistoryRow(appended.pk, *(getattr(appended, n) for n in HistoryRow.__slots__[1:]))]
        result = resume_periods(loan, schedule, stored.frozen() + stored.live(), rows)
    # A resumed replay only adds to what was paid (the credit balance cannot drop) and leaves
    # the terminations as they were (the loan's sub-status says whether one stands).
    full = result is None
    terminated = None
    if full and recalculates(loan, schedule.setup):
        # The daily-accrual engine starts from its latest stored state that stands (before
        # what changed: ``appended``'s date, or ``since``) and replays what follows.
        before = appended.date if appended is not None else since
        result, rows, terminated = _recalculated(
            loan, schedule, stored.frozen(), before=before, inclusive=appended is not None
        )
        if result.void_terminations:
            schedule = _void_terminations(loan, schedule, list(result.void_terminations))
            stored = StoredPeriods(schedule)
            result, rows, terminated = _recalculated(loan, schedule, stored.frozen(), scratch=True)
    elif full:  # the history from the latest stored ledger state before what changed
        before = appended.date if appended is not None else since
        result, rows, terminated = _ledger_replayed(
            loan, schedule, stored.frozen(), before=before, inclusive=appended is not None
        )
        if result.void_terminations:
            schedule = _void_terminations(loan, schedule, list(result.void_terminations))
            stored = StoredPeriods(schedule)
            result, rows, terminated = _ledger_replayed(
                loan, schedule, stored.frozen(), scratch=True
            )
    if insert is not None:
        appended.pk = write_live_periods(schedule, result.periods, stored.live_rows(), first=insert)
        appended._state.adding, appended._state.db = False, "default"
        result, rows = keyed((result, rows), appended)
    else:
        write_live_periods(schedule, result.periods, stored.live_rows())
    changed = _changed_portions(rows, result)
    if changed:
        Transaction.objects.bulk_update(_portion_rows(changed), PORTION_FIELDS, batch_size=2000)
    if appended is not None:
        for row in rows:
            if row.pk == appended.pk:
                for name in PORTION_FIELDS:
                    setattr(appended, name, getattr(row, name))
    outstanding = sum((p.total_outstanding for p in ledger.live(result.periods)), ZERO)
    credit = None
    if full or outstanding <= 0:
        credit = credit_balance(loan)
        if credit < 0:
            raise ConflictError(
                f"This would leave {-credit} more refunded than the borrower overpaid; undo the "
                "credit balance refund first.",
                code="credit_balance_refunded",
            )
    if loan.status != LoanStatus.PENDING:
        if outstanding > 0:
            new_status = LoanStatus.ACTIVE
        elif credit > 0:
            new_status = LoanStatus.OVERPAID
        else:
            new_status = LoanStatus.CLOSED
        # The sub-status exists only on an ACTIVE loan (a database constraint): paying off a
        # terminated loan closes it and clears the sub-status; reopening it (its last
        # repayment undone) restores the sub-status while its termination stands.
        if terminated is None:  # else the engine's own answer (its rows may be the last few)
            terminated = (
                any(t.type == TransactionType.CONTRACT_TERMINATION for t in rows)
                if full
                else loan.sub_status == LoanSubStatus.CONTRACT_TERMINATION
            )
        sub_status = (
            LoanSubStatus.CONTRACT_TERMINATION
            if new_status == LoanStatus.ACTIVE and terminated
            else None
        )
        if (new_status, sub_status) != (loan.status, loan.sub_status):
            loan.status, loan.sub_status = new_status, sub_status
            run_together(
                bound_update(Loan, {"pk": loan.pk}, status=new_status, sub_status=sub_status)
            )
    # Apps built on the core follow the new schedule in this transaction (loans.hooks).
    hooks.schedule_changed(loan)
    return result
