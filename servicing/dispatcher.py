"""The dispatcher (DESIGN §11): executes the scheduled payments and communications that are due.

``dispatch_due(now=...)`` first reconciles attempts left ``IN_FLIGHT`` by a dead worker, then
claims due items in batches and executes each one. The database is the queue:

* **Claim** (one short transaction per batch): ``PENDING`` payments dated on or before the
  business date and ``PENDING`` communications with ``scheduledAt <= now``, not deferred
  (``not_before``) and not claimed by another dispatcher (``claimed_until``), oldest first,
  ``select_for_update(skip_locked=True)`` on PostgreSQL; the batch gets a lease
  (``DISPATCH_CLAIM_SECONDS``) so concurrent dispatchers take different items.
* **Check and mark** (a payment batch's in one transaction, a constant number of statements:
  the batch's loan row locks in id order, the lock ``cancel_servicing`` takes, then its items;
  a loan's second item in the batch is checked after its first is recorded; a communication's
  in one transaction each, under the loan row lock): the loan is serviced and the item still ``PENDING`` (else it is
  cancelled or skipped); a communication's channel is not do-not-contact (cancelled, with the
  reason); the borrower-local time is within 08:00-21:00 (else deferred to the next 08:00,
  staying ``PENDING``); at most 7 calls per loan in 7 days (Reg F; else deferred until the
  oldest of them is 7 days old); a payment's loan is open and the amount is capped at the
  payoff (nothing to pay: cancelled). Then a numbered ``DispatchAttempt`` (unique per item) and
  the item ``IN_FLIGHT``; commit. So no attempt starts after ``cancel_servicing`` committed.
* **Call** the provider with no lock held, the attempt id as idempotency key
  (``servicing.providers``). A timeout or an exception is a failed attempt.
* **Record** (a new transaction): a payment succeeds as a ``REPAYMENT`` posted through the
  repayment command (``post_transaction``, actor: the system user, external id
  ``dispatch-attempt-<id>``; the attempt's outcome and the item ``PROCESSED`` with its
  transaction go in the command's own round trips, and the transaction is the command's
  alone: no savepoint; a refusal rolls it back and is recorded in a new one); a communication
  ``SENT`` with the provider's reference. A failed communication is retried twice (5 and 30
  minutes later), then ``FAILED``; a failed payment is ``FAILED`` with the return code (an
  operator may schedule it again). A schedule with nothing left to send is ``COMPLETED``.

Reconciliation: an attempt ``IN_FLIGHT`` for longer than ``DISPATCH_IN_FLIGHT_TIMEOUT_SECONDS``
is looked up at its provider by its idempotency key: an outcome found is recorded as above (a
payment that went through is posted once); nothing found means the call never reached the
provider, so the attempt is ``FAILED`` ("worker lost") and the item goes back to ``PENDING``
(a communication that used its three attempts is ``FAILED``). Nothing is executed twice.

Why this module is long: it is the one dispatcher -- claim, check and mark, call, record and
the reconciliation, for payments and communications -- whose steps share the private
check-and-mark and record functions; the hot per-item statements are bound once
(``servicing.statements``) so that they go in few round trips.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from loans import ledger
from loans.exceptions import DomainError
from loans.formatting import words
from loans.models import Borrower, Loan, ServicingStatus, TransactionType
from loans.selectors import get_business_date
from loans.services import post_transaction
from loans.versions import lock_loan
from servicing.close_of_business import (
    OPEN_STATUSES,
    CompiledRead,
    lock_with_books,
    outstanding_total,
    stored_payoff_total,
)
from servicing.models import (
    AttemptStatus,
    AutopayAmountType,
    Channel,
    CommunicationSchedule,
    CommunicationScheduleStatus,
    CommunicationStatus,
    DispatchAttempt,
    ItemKind,
    ScheduledCommunication,
    ScheduledPayment,
    ScheduledPaymentStatus,
)
from servicing.providers import (
    Message,
    Outcome,
    ProviderTimeout,
    get_provider,
    provider_for_channel,
    provider_name,
)
from servicing.statements import bound_insert, bound_update, run_together
from servicing.system import system_user

ZERO = Decimal("0.00")
WINDOW_START = time(8, 0)
WINDOW_END = time(21, 0)
REG_F_CALLS = 7
REG_F_DAYS = 7
RETRY_DELAYS = (timedelta(minutes=5), timedelta(minutes=30))  # then FAILED
MAX_COMMUNICATION_ATTEMPTS = len(RETRY_DELAYS) + 1

DO_NOT_CONTACT_FLAG = {
    Channel.CALL: "do_not_call",
    Channel.EMAIL: "do_not_email",
    Channel.SMS: "do_not_sms",
}
ADDRESS = {Channel.CALL: "phone", Channel.EMAIL: "email", Channel.SMS: "phone"}


@dataclass
class DispatchResult:
    claimed: int = 0
    executed: int = 0
    deferred: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    reconciled: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


# --------------------------------------------------------------------------------------------
# Pure rules
# --------------------------------------------------------------------------------------------


def zone_of(borrower: Borrower) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(borrower.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def next_window_start(now: datetime, zone: zoneinfo.ZoneInfo) -> datetime | None:
    """None when ``now`` is inside 08:00-21:00 in ``zone``; else the next 08:00 there."""
    local = now.astimezone(zone)
    if WINDOW_START <= local.time() < WINDOW_END:
        return None
    day = local.date() if local.time() < WINDOW_START else local.date() + timedelta(days=1)
    return datetime.combine(day, WINDOW_START, tzinfo=zone)


# --------------------------------------------------------------------------------------------
# Claim
# --------------------------------------------------------------------------------------------


def _claim(queryset, *, now: datetime, size: int) -> list[tuple[int, int]]:
    """``(item id, loan id)`` of up to ``size`` due items, leased to this dispatcher."""
    with transaction.atomic():
        queryset = queryset.filter(Q(not_before__isnull=True) | Q(not_before__lte=now)).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
        )
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True)
        ids = list(queryset.values_list("id", "loan_id")[:size])
        if ids:
            queryset.model.objects.filter(pk__in=[pk for pk, _ in ids]).update(
                claimed_until=now + timedelta(seconds=settings.DISPATCH_CLAIM_SECONDS)
            )
    return ids


def claim_payments(*, now: datetime, as_of: date, size: int) -> list[tuple[int, int]]:
    return _claim(
        ScheduledPayment.objects.filter(
            status=ScheduledPaymentStatus.PENDING, scheduled_date__lte=as_of
        ).order_by("scheduled_date", "id"),
        now=now,
        size=size,
    )


def claim_communications(*, now: datetime, size: int) -> list[tuple[int, int]]:
    return _claim(
        ScheduledCommunication.objects.filter(
            status=CommunicationStatus.PENDING, scheduled_at__lte=now
        ).order_by("scheduled_at", "id"),
        now=now,
        size=size,
    )


def dispatch_due(
    *, now: datetime | None = None, limit: int | None = None, reconcile: bool = True
) -> DispatchResult:
    """Run the dispatcher once (Celery beat every minute; ``POST /dispatch``): claim batches
    until nothing is due. Several run at once (``tasks.dispatch_due`` fans out to
    ``DISPATCH_PARALLEL`` workers): each claims its own items (SKIP LOCKED and the lease), so
    they share the queue. ``reconcile``: first reconcile attempts left IN_FLIGHT."""
    now = now or timezone.now()
    result = DispatchResult(reconciled=reconcile_in_flight(now=now) if reconcile else 0)
    as_of = get_business_date()
    actor = system_user()
    size = settings.DISPATCH_BATCH_SIZE
    while limit is None or result.claimed < limit:
        batch = size if limit is None else min(size, limit - result.claimed)
        payments = claim_payments(now=now, as_of=as_of, size=batch)
        communications = claim_communications(now=now, size=batch)
        if not payments and not communications:
            break
        result.claimed += len(payments) + len(communications)
        for outcome in dispatch_payments(payments, now=now, as_of=as_of, actor=actor):
            result.add(outcome)
        for pk, loan_id in communications:
            result.add(dispatch_communication(communication_id=pk, now=now, loan_id=loan_id))
    return result


# --------------------------------------------------------------------------------------------
# Payments
# --------------------------------------------------------------------------------------------


def _cancel(item, *, now: datetime, reason: str) -> str:
    run_together(
        bound_update(
            type(item),
            {"pk": item.pk},
            status="CANCELLED",
            cancelled_at=now,
            cancel_reason=reason[:500],
            claimed_until=None,
        )
    )
    return "cancelled"


def _payment_amount(item: ScheduledPayment, loan: Loan, as_of: date, book) -> Decimal:
    """The item's amount (an autopay's SCHEDULED_PAYMENT: its installment's outstanding),
    capped at the payoff on ``as_of``, from the stored schedule ``book`` (read with the loan
    lock, no replay: the close of business's snapshot figure)."""
    periods = ledger.live(book.periods)
    amount = item.amount
    if item.autopay_id and item.autopay.amount_type == AutopayAmountType.SCHEDULED_PAYMENT:
        period = next((p for p in periods if p.due_date == item.due_date), None)
        amount = period.total_outstanding if period else ZERO
    if not periods:
        return ZERO
    payoff = stored_payoff_total(loan, book, on=as_of)
    cap = min(outstanding_total(periods), payoff)
    return max(min(amount, cap), ZERO)


def _attempts_made(item_field: str):
    """The number of attempts of the item, as an annotation of the item's own query."""
    counted = (
        DispatchAttempt.objects.filter(**{item_field: OuterRef("pk")})
        .order_by()
        .values(item_field)
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counted), 0)


# The loan row lock alone (the repayment command reads the loan under its own lock next).
_ROW_LOCK = CompiledRead(
    lambda *, loan_id: (
        Loan.objects.select_for_update(of=("self",)).filter(pk=loan_id).values_list("pk")
    ),
    loan_id=-918_273_638,
)


def _new_attempt(
    *, loan_id: int, item, kind: str, channel: str, now, amount=None, provider, number: int
) -> DispatchAttempt:
    """The numbered attempt IN_FLIGHT, not written yet."""
    return DispatchAttempt(
        loan_id=loan_id,
        kind=kind,
        scheduled_payment_id=item.pk if kind == ItemKind.PAYMENT else None,
        scheduled_communication_id=item.pk if kind == ItemKind.COMMUNICATION else None,
        channel=channel,
        number=number,
        status=AttemptStatus.IN_FLIGHT,
        amount=amount,
        provider=provider_name(provider),
        provider_reference="",
        return_code="",
        error="",
        started_at=now,
        finished_at=None,
    )


def _start_attempt(*, loan: Loan, item, kind: str, channel: str, now, provider):
    """The numbered attempt (INSERT, its id the idempotency key) and the item IN_FLIGHT, in
    one round trip on PostgreSQL."""
    attempt = _new_attempt(
        loan_id=loan.pk,
        item=item,
        kind=kind,
        channel=channel,
        now=now,
        provider=provider,
        number=item.attempts.count() + 1,
    )
    columns = {f.attname: getattr(attempt, f.attname) for f in _ATTEMPT_FIELDS}
    attempt.pk, _ = run_together(
        bound_insert(DispatchAttempt, returning=True, **columns),
        bound_update(
            type(item),
            {"pk": item.pk},
            status="IN_FLIGHT",
            in_flight_since=now,
            claimed_until=None,
            not_before=None,
        ),
    )
    attempt._state.adding, attempt._state.db = False, "default"
    return attempt


_ATTEMPT_FIELDS = [f for f in DispatchAttempt._meta.concrete_fields if not f.primary_key]


def _call(provider, message: Message, key: str) -> Outcome:
    try:
        return provider.send(message, idempotency_key=key)
    except ProviderTimeout as exc:
        return Outcome(succeeded=False, return_code="TIMEOUT", detail=str(exc))
    except Exception as exc:  # noqa: BLE001 - a provider error is a failed attempt, not a 500
        return Outcome(succeeded=False, return_code="ERROR", detail=f"{type(exc).__name__}: {exc}")


def _loan_id_of(model, pk: int) -> int:
    """The loan of a scheduled item, read before its loan is locked (items lock after loans)."""
    return model.objects.filter(pk=pk).values_list("loan_id", flat=True).get()


def dispatch_payments(
    batch: list[tuple[int, int]], *, now: datetime, as_of: date | None = None, actor=None
) -> list[str]:
    """Check, mark, call, record the claimed payments ``batch`` (``(item id, loan id)``).
    Returns each one's outcome. ``as_of`` (the business date), ``actor`` (the system user):
    what the dispatcher's run read once for all its items.

    The checks and marks of the batch go in one transaction (``_start_payments``: a constant
    number of statements); then, for each started attempt, the provider's call and the record
    (a transaction each). A loan's second item in the batch is checked after its first is
    recorded (its payoff cap sees the first payment): it goes in a batch of its own next."""
    provider = get_provider("PAYMENT")
    as_of = as_of or get_business_date()
    first, again, seen = [], [], set()
    for pk, loan_id in batch:
        (again if loan_id in seen else first).append((pk, loan_id))
        seen.add(loan_id)
    outcomes, started = _start_payments(first, now=now, as_of=as_of, provider=provider)
    for attempt in started:
        outcomes.append(_execute_payment(attempt, provider, now, as_of=as_of, actor=actor))
    if again:
        outcomes += dispatch_payments(again, now=now, as_of=as_of, actor=actor)
    return outcomes


_PAYMENT_ITEMS = (
    ScheduledPayment.objects.select_for_update(of=("self",))
    .select_related("autopay")
    .annotate(attempts_made=_attempts_made("scheduled_payment"))
    .order_by("pk")
)


def _start_payments(
    batch: list[tuple[int, int]], *, now: datetime, as_of: date, provider
) -> tuple[list[str], list[DispatchAttempt]]:
    """One transaction for the batch (one item per loan): the loans' row locks (in id order,
    the lock ``cancel_servicing`` takes) and their stored schedules, then the items (locked,
    with their autopays and attempt counts); each item re-checked under its loan's lock
    (cancelled or skipped, else capped at the payoff); the numbered attempts of the rest in
    one INSERT and their items IN_FLIGHT in one UPDATE. Returns the outcomes of the items not
    started and the attempts started, in the batch's order."""
    if not batch:
        return [], []
    outcomes, attempts = [], []
    with transaction.atomic():
        loans, books = lock_with_books([loan_id for _, loan_id in batch], as_of)
        items = {item.pk: item for item in _PAYMENT_ITEMS.filter(pk__in=[pk for pk, _ in batch])}
        for pk, _ in batch:
            item = items.get(pk)
            loan = loans.get(item.loan_id) if item is not None else None
            if item is None or loan is None or item.status != ScheduledPaymentStatus.PENDING:
                outcomes.append("skipped")  # deleted meanwhile, or settled by another run
                continue
            if loan.servicing_status != ServicingStatus.ACTIVE:
                outcomes.append(_cancel(item, now=now, reason="Servicing of the loan is stopped"))
                continue
            if loan.status not in OPEN_STATUSES:
                outcomes.append(_cancel(item, now=now, reason=f"The loan is {words(loan.status)}"))
                continue
            amount = _payment_amount(item, loan, as_of, books[loan.pk])
            if amount <= 0:
                outcomes.append(_cancel(item, now=now, reason="Nothing is due: nothing to pay"))
                continue
            attempts.append(
                _new_attempt(
                    loan_id=loan.pk,
                    item=item,
                    kind=ItemKind.PAYMENT,
                    channel=item.method,
                    now=now,
                    amount=amount,
                    provider=provider,
                    number=item.attempts_made + 1,
                )
            )
        if attempts:
            DispatchAttempt.objects.bulk_create(attempts)  # their ids: RETURNING on PostgreSQL
            ScheduledPayment.objects.filter(
                pk__in=[a.scheduled_payment_id for a in attempts]
            ).update(status="IN_FLIGHT", in_flight_since=now, claimed_until=None, not_before=None)
    return outcomes, attempts


def _execute_payment(attempt: DispatchAttempt, provider, now: datetime, *, as_of, actor) -> str:
    """The provider's call for a started attempt (no lock held, its id the idempotency key),
    then the record of what it said."""
    outcome = _call(
        provider,
        Message(channel=attempt.channel, loan_id=attempt.loan_id, amount=attempt.amount),
        attempt.idempotency_key,
    )
    if not outcome.succeeded:
        with transaction.atomic():
            return _record_payment(attempt, outcome, now, lock=True)
    try:
        with transaction.atomic():
            return _post_collected(attempt, outcome, now, as_of=as_of, actor=actor)
    except _Settled:
        return "skipped"
    except DomainError as exc:  # the command refused: all of that transaction rolled back
        with transaction.atomic():
            return _record_payment(attempt, outcome, now, lock=True, refusal=exc)


class _Settled(Exception):
    """The attempt was no longer IN_FLIGHT (the reconciliation settled it meanwhile)."""


def _settled_unless_recorded(results: list) -> None:
    if not results[0]:
        raise _Settled


def _outcome_update(attempt: DispatchAttempt, outcome: Outcome, now: datetime):
    """The attempt's outcome, set on it and as the conditional UPDATE (if still IN_FLIGHT)."""
    attempt.finished_at = now
    attempt.provider_reference = outcome.reference
    attempt.return_code = outcome.return_code
    attempt.status = AttemptStatus.SUCCEEDED if outcome.succeeded else AttemptStatus.FAILED
    attempt.error = "" if outcome.succeeded else outcome.detail[:500]
    return bound_update(
        DispatchAttempt,
        {"pk": attempt.pk, "status": AttemptStatus.IN_FLIGHT},
        status=attempt.status,
        finished_at=now,
        provider_reference=attempt.provider_reference,
        return_code=attempt.return_code,
        error=attempt.error,
    )


def _post_collected(attempt: DispatchAttempt, outcome: Outcome, now: datetime, *, as_of, actor):
    """A collected payment, in a transaction of its own: the repayment command with the
    attempt's outcome (its conditional UPDATE run under the command's loan lock, in the round
    trip of the command's read; not recorded: ``_Settled``, nothing posted) and the item
    PROCESSED (in the round trip of the command's audit row). No savepoint: a refusal
    (``DomainError``) rolls this whole transaction back and the caller records it anew."""
    _post_repayment(
        attempt,
        outcome,
        as_of=as_of,
        actor=actor,
        locked=(_outcome_update(attempt, outcome, now),),
        guard=_settled_unless_recorded,
        then=lambda tx: (_processed(attempt, tx, now),),
        savepoint=False,
    )
    return "executed"


def _post_repayment(attempt: DispatchAttempt, outcome: Outcome, *, as_of, actor, **also):
    """The collected amount posted through the repayment command (``also``: its hooks for
    the caller's statements, ``post_transaction``)."""
    return post_transaction(
        loan=attempt.loan_id,
        type=TransactionType.REPAYMENT,
        on=as_of,
        amount=attempt.amount,
        actor=actor or system_user(),
        external_id=f"dispatch-{attempt.idempotency_key}",
        note=(
            f"Scheduled payment {attempt.scheduled_payment_id}, attempt {attempt.number} "
            f"({outcome.reference})"
        ),
        as_of=as_of,
        **also,
    )


def _record_payment(
    attempt: DispatchAttempt,
    outcome: Outcome,
    now: datetime,
    *,
    as_of=None,
    actor=None,
    lock: bool = False,
    refusal: DomainError | None = None,
) -> str:
    """Under the loan lock (``lock``: taken here, in the round trip of the attempt's UPDATE):
    the attempt, if still IN_FLIGHT (a conditional UPDATE: the reconciliation may have settled
    it meanwhile), gets the outcome; a success posts the REPAYMENT through the repayment
    command and the item is PROCESSED with it. ``refusal``: the command refused this success
    already (in a transaction rolled back since): recorded as such, nothing posted."""
    update = _outcome_update(attempt, outcome, now)
    if lock:
        found, recorded = run_together(_ROW_LOCK.bind(loan_id=attempt.loan_id), update)
        if not found:
            raise Loan.DoesNotExist(f"Loan {attempt.loan_id} was not found.")
    else:
        (recorded,) = run_together(update)
    if not recorded:
        return "skipped"
    item = {"pk": attempt.scheduled_payment_id}
    if not outcome.succeeded:
        run_together(
            bound_update(
                ScheduledPayment,
                item,
                status=ScheduledPaymentStatus.FAILED,
                return_code=outcome.return_code[:16],
                failure_reason=(outcome.detail or outcome.return_code)[:500],
                executed_at=now,
            )
        )
        return "failed"
    as_of = as_of or get_business_date()
    try:  # the command is atomic: a refusal rolls back to its savepoint only
        if refusal is not None:
            raise refusal
        tx = _post_repayment(attempt, outcome, as_of=as_of, actor=actor)
    except DomainError as exc:
        # Collected but not postable (the loan changed meanwhile): an operator must see it.
        attempt.error = f"Collected but not posted: {exc}"[:500]
        run_together(
            bound_update(DispatchAttempt, {"pk": attempt.pk}, error=attempt.error),
            bound_update(
                ScheduledPayment,
                item,
                status=ScheduledPaymentStatus.FAILED,
                return_code="POSTING",
                failure_reason=attempt.error,
                executed_at=now,
            ),
        )
        return "failed"
    run_together(_processed(attempt, tx, now))
    return "executed"


def _processed(attempt: DispatchAttempt, tx, now: datetime):
    """The attempt's item PROCESSED with its transaction."""
    return bound_update(
        ScheduledPayment,
        {"pk": attempt.scheduled_payment_id},
        status=ScheduledPaymentStatus.PROCESSED,
        transaction_id=tx.pk,
        executed_at=now,
    )


# --------------------------------------------------------------------------------------------
# Communications
# --------------------------------------------------------------------------------------------


def _defer(item, until: datetime) -> str:
    type(item).objects.filter(pk=item.pk).update(not_before=until, claimed_until=None)
    return "deferred"


def reg_f_deferral(loan: Loan, now: datetime) -> datetime | None:
    """When a call may be placed again if 7 were placed in the last 7 days, else None."""
    window = now - timedelta(days=REG_F_DAYS)
    recent = list(
        DispatchAttempt.objects.filter(loan=loan, channel=Channel.CALL, started_at__gt=window)
        .order_by("-started_at")
        .values_list("started_at", flat=True)[:REG_F_CALLS]
    )
    if len(recent) < REG_F_CALLS:
        return None
    return recent[-1] + timedelta(days=REG_F_DAYS)


def dispatch_communication(
    *, communication_id: int, now: datetime, loan_id: int | None = None
) -> str:
    with transaction.atomic():
        if loan_id is None:
            loan_id = _loan_id_of(ScheduledCommunication, communication_id)
        loan = lock_loan(loan_id)
        borrower = Borrower.objects.get(pk=loan.borrower_id)
        item = ScheduledCommunication.objects.select_for_update(of=("self",)).get(
            pk=communication_id
        )
        if item.status != CommunicationStatus.PENDING:
            return "skipped"
        if loan.servicing_status != ServicingStatus.ACTIVE:
            return _cancel(item, now=now, reason="Servicing of the loan is stopped")
        if getattr(borrower, DO_NOT_CONTACT_FLAG[item.channel]):
            return _cancel(
                item, now=now, reason=f"The borrower asked not to be contacted by {item.channel}"
            )
        recipient = getattr(borrower, ADDRESS[item.channel])
        zone = zone_of(borrower)
        later = next_window_start(now, zone)
        if later is not None:
            return _defer(item, later)
        if item.channel == Channel.CALL:
            allowed = reg_f_deferral(loan, now)
            if allowed is not None:
                return _defer(item, next_window_start(allowed, zone) or allowed)
        provider = provider_for_channel(item.channel)
        attempt = _start_attempt(
            loan=loan,
            item=item,
            kind=ItemKind.COMMUNICATION,
            channel=item.channel,
            now=now,
            provider=provider,
        )
    if not recipient:
        outcome = Outcome(
            succeeded=False,
            return_code="no_address",
            detail=f"No {ADDRESS[item.channel]} on file",
        )
    else:
        outcome = _call(
            provider,
            Message(
                channel=item.channel,
                loan_id=loan.pk,
                recipient=recipient,
                subject=item.subject,
                body=item.body,
            ),
            attempt.idempotency_key,
        )
    return record_outcome(attempt_id=attempt.pk, outcome=outcome, now=now)


def _complete_schedule(schedule_id: int | None) -> None:
    if schedule_id is None:
        return
    left = ScheduledCommunication.objects.filter(
        schedule_id=schedule_id,
        status__in=[CommunicationStatus.PENDING, CommunicationStatus.IN_FLIGHT],
    ).exists()
    if not left:
        CommunicationSchedule.objects.filter(
            pk=schedule_id, status=CommunicationScheduleStatus.ACTIVE
        ).update(status=CommunicationScheduleStatus.COMPLETED)


def _record_communication(
    attempt: DispatchAttempt, outcome: Outcome, now: datetime, *, lost: bool = False
) -> str:
    item = ScheduledCommunication.objects.select_for_update(of=("self",)).get(
        pk=attempt.scheduled_communication_id
    )
    attempt.finished_at = now
    attempt.provider_reference = outcome.reference
    attempt.return_code = outcome.return_code
    if outcome.succeeded:
        attempt.status = AttemptStatus.SUCCEEDED
        attempt.save()
        ScheduledCommunication.objects.filter(pk=item.pk).update(
            status=CommunicationStatus.SENT, sent_at=now, provider_reference=outcome.reference
        )
        _complete_schedule(item.schedule_id)
        return "executed"
    attempt.status = AttemptStatus.FAILED
    attempt.error = outcome.detail[:500]
    attempt.save()
    if attempt.number < MAX_COMMUNICATION_ATTEMPTS:
        delay = timedelta(0) if lost else RETRY_DELAYS[attempt.number - 1]
        ScheduledCommunication.objects.filter(pk=item.pk).update(
            status=CommunicationStatus.PENDING,
            not_before=now + delay,
            in_flight_since=None,
            failure_reason=(outcome.detail or outcome.return_code)[:500],
        )
        return "deferred" if not lost else "reconciled"
    ScheduledCommunication.objects.filter(pk=item.pk).update(
        status=CommunicationStatus.FAILED,
        failure_reason=(outcome.detail or outcome.return_code)[:500],
    )
    _complete_schedule(item.schedule_id)
    return "failed"


def record_outcome(*, attempt_id: int, outcome: Outcome, now: datetime) -> str:
    """Record what the provider said, in a new transaction under the loan lock. An attempt no
    longer IN_FLIGHT (reconciled meanwhile) is left alone."""
    with transaction.atomic():
        loan_id = DispatchAttempt.objects.filter(pk=attempt_id).values_list("loan_id", flat=True)
        lock_loan(loan_id.get())
        attempt = DispatchAttempt.objects.select_for_update(of=("self",)).get(pk=attempt_id)
        if attempt.status != AttemptStatus.IN_FLIGHT:
            return "skipped"
        if attempt.kind == ItemKind.PAYMENT:
            return _record_payment(attempt, outcome, now)
        return _record_communication(attempt, outcome, now)


# --------------------------------------------------------------------------------------------
# Reconciliation of attempts left IN_FLIGHT by a dead worker
# --------------------------------------------------------------------------------------------


def reconcile_in_flight(*, now: datetime | None = None, timeout: int | None = None) -> int:
    now = now or timezone.now()
    timeout = settings.DISPATCH_IN_FLIGHT_TIMEOUT_SECONDS if timeout is None else timeout
    stale = list(
        DispatchAttempt.objects.filter(
            status=AttemptStatus.IN_FLIGHT, started_at__lt=now - timedelta(seconds=timeout)
        )
        .order_by("started_at", "id")
        .values_list("id", "kind", "channel")[: settings.DISPATCH_BATCH_SIZE]
    )
    count = 0
    for attempt_id, kind, channel in stale:
        provider = (
            get_provider("PAYMENT") if kind == ItemKind.PAYMENT else provider_for_channel(channel)
        )
        outcome = provider.lookup(f"attempt-{attempt_id}")
        if outcome is not None:
            record_outcome(attempt_id=attempt_id, outcome=outcome, now=now)
        else:
            _release_lost(attempt_id, now)
        count += 1
    return count


def _release_lost(attempt_id: int, now: datetime) -> None:
    """The provider never received the call: the attempt failed, the item is due again."""
    lost = Outcome(
        succeeded=False,
        return_code="LOST",
        detail="The worker was lost before the provider received the call",
    )
    with transaction.atomic():
        loan_id = DispatchAttempt.objects.filter(pk=attempt_id).values_list("loan_id", flat=True)
        lock_loan(loan_id.get())
        attempt = DispatchAttempt.objects.select_for_update(of=("self",)).get(pk=attempt_id)
        if attempt.status != AttemptStatus.IN_FLIGHT:
            return
        if attempt.kind == ItemKind.COMMUNICATION:
            _record_communication(attempt, lost, now, lost=True)
            return
        attempt.status = AttemptStatus.FAILED
        attempt.return_code, attempt.error, attempt.finished_at = "LOST", lost.detail, now
        attempt.save()
        ScheduledPayment.objects.filter(
            pk=attempt.scheduled_payment_id, status=ScheduledPaymentStatus.IN_FLIGHT
        ).update(status=ScheduledPaymentStatus.PENDING, in_flight_since=None)
