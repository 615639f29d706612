"""Commands of the servicing app (DESIGN §1 "Scheduled payments and communications", §2).

Each command is one function with keyword-only arguments and a required ``actor``. It validates
its input first (changing nothing on failure), then runs in one transaction with the loan row
locked (``loans.versions.lock_loan``), checks the loan's state, writes, and records who, when
and why.

Choices recorded here (DESIGN says "do what Finosu/LoanPro would do"):

* Scheduling needs a loan that is being serviced (``servicingStatus=ACTIVE``, else 409
  ``loan_not_servicing``). A scheduled *payment* also needs an ``ACTIVE`` loan (a ``PENDING``
  loan has nothing to pay yet: 409 ``loan_not_active``). A *communication* or a communication
  schedule may be set up for a ``PENDING`` loan too (onboarding messages). Nothing can be
  scheduled for a ``CLOSED`` (paid off) loan: 409 ``loan_closed``.
* A scheduled date (or the borrower-local date of a scheduled time, or a schedule's start) before
  the business date is 400 ``date_in_past``.
* The borrower's do-not-call / do-not-email / do-not-SMS flag blocks that channel: 409
  ``do_not_contact``. A channel with no address on file (no email, no phone) is 409
  ``no_contact_address``.
* Generated communications go out at 10:00 in the borrower's time zone; at most
  ``MAX_OCCURRENCES`` per schedule (400 ``too_many_occurrences``).
* ``cancel_servicing`` on a loan that is already ``NOT_SERVICING`` is a successful no-op: zero
  counts, the original reason kept, and no audit row (nothing changed).
* Cancelling a single item needs it to be ``PENDING`` (a schedule ``ACTIVE``), else 409.

Why this module is long: it holds all of the servicing app's commands (cancel/resume servicing,
their set-based forms for many loans and for a borrower's loans, and the six scheduling commands), which share one set of checks (servicing status, contact
flags, business date); the reads live in ``servicing.selectors``.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from loans.exceptions import ConflictError, InvalidRequestError, NotFoundError, field_error
from loans.formatting import article, words
from loans.models import (
    Borrower,
    Loan,
    LoanEvent,
    LoanStatus,
    ServicingStatus,
    StopServicingReason,
)
from loans.selectors import get_business_date
from loans.versions import actor_or_none, jsonable, lock_loan, record_event
from servicing.models import (
    Autopay,
    AutopayStatus,
    Channel,
    CommunicationSchedule,
    CommunicationScheduleStatus,
    CommunicationStatus,
    PaymentMethod,
    ScheduledCommunication,
    ScheduledPayment,
    ScheduledPaymentStatus,
    ServicingEvent,
    ServicingEventKind,
)
from servicing.selectors import (
    COMMUNICATION_FIELD,
    SCHEDULE_FIELD,
    CancelCounts,
    pending_counts,
)

MAX_AMOUNT = Decimal("999999999999.99")
MAX_OCCURRENCES = 500
MAX_EVERY_DAYS = 366
SEND_TIME = time(10, 0)
VALID_REASONS: tuple[str, ...] = tuple(StopServicingReason.values)

DO_NOT_CONTACT_FLAG = {
    Channel.CALL: "do_not_call",
    Channel.EMAIL: "do_not_email",
    Channel.SMS: "do_not_sms",
}
CONTACT_ADDRESS = {Channel.CALL: "phone", Channel.EMAIL: "email", Channel.SMS: "phone"}


# --------------------------------------------------------------------------------------------
# Cancel and resume servicing (seed 000)
# --------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class ServicingCancellation(CancelCounts):
    """The result of ``cancel_servicing``: the loan as it now is and the seven counts."""

    loan: Loan
    changed: bool = True


def validate_reason(reason) -> str:
    if not isinstance(reason, str) or reason not in VALID_REASONS:
        valid = ", ".join(VALID_REASONS)
        raise InvalidRequestError(
            f"{reason!r} is not a valid stop servicing reason; use one of {valid}.",
            code="invalid_reason",
            errors=[
                field_error("reason", f"Must be one of {valid}.", "invalid_reason")
                | {"validValues": list(VALID_REASONS)}
            ],
        )
    return reason


def cancel_servicing(
    *,
    loan: Loan | int,
    reason: str = StopServicingReason.API_REQUEST,
    actor,
    as_of: date | None = None,
) -> ServicingCancellation:
    """Stop servicing a loan and cancel everything scheduled for it (DESIGN §2).

    Thirteen statements however many items the loan has: the business date, the row lock, the
    loan update, one UPDATE per kind (payments; autopays; calls, emails, SMS; call, email and SMS
    schedules) and the two audit rows.
    """
    reason = validate_reason(reason)
    as_of = as_of or get_business_date()
    with transaction.atomic():
        loan = lock_loan(loan)
        if loan.servicing_status == ServicingStatus.NOT_SERVICING:
            return ServicingCancellation(loan=loan, changed=False)
        now = timezone.now()
        before = (loan.servicing_status, loan.stop_servicing_reason)
        loan.servicing_status = ServicingStatus.NOT_SERVICING
        loan.stop_servicing_reason = reason
        loan.servicing_changed_at = now
        loan.servicing_changed_by = actor_or_none(actor)
        loan.save(
            update_fields=[
                "servicing_status",
                "stop_servicing_reason",
                "servicing_changed_at",
                "servicing_changed_by",
                "updated_at",
            ]
        )
        stamp = {
            "cancelled_at": now,
            "cancelled_by": actor_or_none(actor),
            "cancel_reason": f"Servicing cancelled: {reason}",
        }
        payments = ScheduledPayment.objects.filter(
            loan=loan, status=ScheduledPaymentStatus.PENDING
        ).update(status=ScheduledPaymentStatus.CANCELLED, **stamp)
        # Active autopays stop too (their pending payments are counted above; DESIGN §11).
        Autopay.objects.filter(loan=loan, status=AutopayStatus.ACTIVE).update(
            status=AutopayStatus.CANCELLED, **stamp
        )

        def communications(channel: str) -> int:
            return ScheduledCommunication.objects.filter(
                loan=loan, status=CommunicationStatus.PENDING, channel=channel
            ).update(status=CommunicationStatus.CANCELLED, **stamp)

        def schedules(channel: str) -> int:
            return CommunicationSchedule.objects.filter(
                loan=loan, status=CommunicationScheduleStatus.ACTIVE, channel=channel
            ).update(status=CommunicationScheduleStatus.CANCELLED, **stamp)

        result = ServicingCancellation(
            loan=loan,
            cancelled_scheduled_payments=payments,
            cancelled_calls=communications(Channel.CALL),
            cancelled_emails=communications(Channel.EMAIL),
            cancelled_sms=communications(Channel.SMS),
            cancelled_call_schedules=schedules(Channel.CALL),
            cancelled_email_schedules=schedules(Channel.EMAIL),
            cancelled_sms_schedules=schedules(Channel.SMS),
        )
        ServicingEvent.objects.create(
            loan=loan,
            kind=ServicingEventKind.CANCEL,
            actor=actor_or_none(actor),
            at=now,
            business_date=as_of,
            reason=reason,
            previous_reason=before[1] or "",
            **result.counts(),
        )
        record_event(
            loan=loan,
            command="cancel_servicing",
            actor=actor,
            as_of=as_of,
            reason=reason,
            input={"reason": reason},
            changes={
                "servicing_status": (before[0], ServicingStatus.NOT_SERVICING),
                "stop_servicing_reason": (before[1], reason),
            },
            result=result.counts(),
        )
    return result


# --------------------------------------------------------------------------------------------
# Set-based stops: many loans, a borrower's loans (Finosu's customer-level stops, DESIGN §12)
# --------------------------------------------------------------------------------------------


@dataclass
class BulkCancellation:
    """What ``cancel_servicing_bulk`` did: each loan's counts (zeros for a loan that was
    already stopped: it is not updated and keeps its reason), and the sums. ``rows`` are the
    locked loans' ``LOCKED_FIELDS``; ``loans`` the same as (deferred) ``Loan`` instances, built
    when asked for, updated ones with their new servicing fields."""

    reason: str
    rows: list[tuple]
    per_loan: dict[int, CancelCounts]
    updated: list[int]
    changed_at: datetime | None = None
    changed_by: object = None

    @cached_property
    def loans(self) -> list[Loan]:
        order = [f.attname for f in Loan._meta.concrete_fields if f.attname in LOCKED_FIELDS]
        position = [LOCKED_FIELDS.index(name) for name in order]
        updated = set(self.updated)
        loans = []
        for row in self.rows:
            loan = Loan.from_db(Loan.objects.db, order, [row[i] for i in position])
            if loan.pk in updated:
                loan.servicing_status = ServicingStatus.NOT_SERVICING
                loan.stop_servicing_reason = self.reason
                loan.servicing_changed_at = self.changed_at
                loan.servicing_changed_by = self.changed_by
            loans.append(loan)
        return loans

    @property
    def loans_updated(self) -> int:
        return len(self.updated)

    @property
    def totals(self) -> CancelCounts:
        totals = CancelCounts()
        for counts in self.per_loan.values():
            for name, value in counts.counts().items():
                setattr(totals, name, getattr(totals, name) + value)
        return totals


def _lock_loans(loans) -> list[Loan]:
    """Lock the loans' rows in ascending id order (bulk runs cannot deadlock each other, nor
    with a single-loan command: each locks one row)."""
    return list(loans.select_for_update(of=("self",)).order_by("pk"))


def _cancel_items(loan_ids: list[int], *, stamp: dict, payments: bool) -> None:
    """Cancel the loans' pending items and active schedules (and, with ``payments``, their
    pending payments and active autopays): one UPDATE per kind for all the loans."""
    if payments:
        ScheduledPayment.objects.filter(
            loan_id__in=loan_ids, status=ScheduledPaymentStatus.PENDING
        ).update(status=ScheduledPaymentStatus.CANCELLED, **stamp)
        Autopay.objects.filter(loan_id__in=loan_ids, status=AutopayStatus.ACTIVE).update(
            status=AutopayStatus.CANCELLED, **stamp
        )
    ScheduledCommunication.objects.filter(
        loan_id__in=loan_ids, status=CommunicationStatus.PENDING
    ).update(status=CommunicationStatus.CANCELLED, **stamp)
    CommunicationSchedule.objects.filter(
        loan_id__in=loan_ids, status=CommunicationScheduleStatus.ACTIVE
    ).update(status=CommunicationScheduleStatus.CANCELLED, **stamp)


def _audit_row(loan: Loan, *, command: str, actor, as_of, reason, changes, result) -> LoanEvent:
    return LoanEvent(
        loan=loan,
        command=command,
        actor=actor_or_none(actor),
        business_date=as_of,
        reason=(reason or "")[:500],
        input=jsonable({"reason": reason}),
        changes=jsonable({k: list(v) for k, v in changes.items()}),
        result=jsonable(result),
    )


def _lock_rows(loans) -> list[tuple]:
    """Lock the loans' rows in ascending id order (as ``_lock_loans``) and read only what the
    set-based cancel needs: no model instances for a thousand loans."""
    return list(loans.select_for_update(of=("self",)).order_by("pk").values_list(*LOCKED_FIELDS))


LOCKED_FIELDS = ("id", "external_id", "display_id", "servicing_status", "stop_servicing_reason")


def _in(ids: list[int]) -> str:
    return ", ".join(["%s"] * len(ids))


def _count(table: str, status: str, channel: str | None = None) -> str:
    """A correlated ``COUNT(*)`` of the loan's items in ``status`` (index on ``loan_id``)."""
    where = f"i.loan_id = l.id AND i.status = '{str(status)}'"
    if channel:
        where += f" AND i.channel = '{str(channel)}'"
    return f"(SELECT COUNT(*) FROM {table} i WHERE {where})"


# The seven counts of a cancel, in ``CancelCounts.COUNT_FIELDS`` order, counted per loan in SQL
# before the UPDATEs (the loans are locked: nothing can be added meanwhile).
_COUNT_SQL = {
    "cancelled_scheduled_payments": _count(
        ScheduledPayment._meta.db_table, ScheduledPaymentStatus.PENDING
    ),
    **{
        field: _count(
            CommunicationSchedule._meta.db_table, CommunicationScheduleStatus.ACTIVE, channel
        )
        for channel, field in SCHEDULE_FIELD.items()
    },
    **{
        field: _count(ScheduledCommunication._meta.db_table, CommunicationStatus.PENDING, channel)
        for channel, field in COMMUNICATION_FIELD.items()
    },
}


def _insert_cancel_audit(
    cursor, ids: list[int], *, reason: str, user, now, as_of: date
) -> dict[int, CancelCounts]:
    """The per-loan ``ServicingEvent`` and ``LoanEvent`` rows of a set-based cancel, written by
    the database (``INSERT ... SELECT``: 1,000 loans cost two statements and no model
    instances), with the content ``cancel_servicing`` writes for one loan. Returns each loan's
    seven counts, read back with ``RETURNING``. Runs before the loans' UPDATE (it reads their
    previous reason) and before the items' UPDATEs (it counts what they cancel)."""
    names = CancelCounts.COUNT_FIELDS
    actor_id = user.pk if user is not None else None
    events = ServicingEvent._meta.db_table
    cursor.execute(
        f"INSERT INTO {events} (loan_id, kind, actor_id, at, business_date, reason, "
        f"previous_reason, note, {', '.join(names)}) "
        "SELECT l.id, %s, %s, %s, %s, %s, COALESCE(l.stop_servicing_reason, ''), '', "
        f"{', '.join(_COUNT_SQL[name] for name in names)} "
        f"FROM {Loan._meta.db_table} l WHERE l.id IN ({_in(ids)}) "
        f"RETURNING id, loan_id, {', '.join(names)}",
        [ServicingEventKind.CANCEL, actor_id, now, as_of, reason, *ids],
    )
    returned = cursor.fetchall()
    per_loan = {row[1]: CancelCounts(**dict(zip(names, row[2:], strict=True))) for row in returned}
    postgres = cursor.db.vendor == "postgresql"
    obj, arr = (
        ("jsonb_build_object", "jsonb_build_array") if postgres else ("json_object", "json_array")
    )
    result = ", ".join(f"'{name}', e.{name}" for name in names)
    event_ids = [row[0] for row in returned]
    cursor.execute(
        f"INSERT INTO {LoanEvent._meta.db_table} (loan_id, command, actor_id, created_at, "
        "business_date, reason, input, changes, result) "
        "SELECT e.loan_id, 'cancel_servicing', e.actor_id, %s, e.business_date, %s, "
        f"{obj}('reason', %s), "
        f"{obj}('servicing_status', {arr}(l.servicing_status, %s), "
        f"'stop_servicing_reason', {arr}(l.stop_servicing_reason, %s)), "
        f"{obj}({result}) "
        f"FROM {events} e JOIN {Loan._meta.db_table} l ON l.id = e.loan_id "
        f"WHERE e.id IN ({_in(event_ids)}) ORDER BY e.loan_id",
        [now, reason[:500], reason, ServicingStatus.NOT_SERVICING, reason, *event_ids],
    )
    return per_loan


def _cancel_servicing_of(loans, *, reason: str, actor, as_of: date | None) -> BulkCancellation:
    """``cancel_servicing`` on every loan of the queryset ``loans``, set-based: the same effects
    and audit rows, in a number of statements that does not depend on the number of loans."""
    as_of = as_of or get_business_date()
    locked = _lock_rows(loans)
    ids = [row[0] for row in locked if row[3] == ServicingStatus.ACTIVE]
    per_loan = {row[0]: CancelCounts() for row in locked}
    if not ids:
        return BulkCancellation(reason=reason, rows=locked, per_loan=per_loan, updated=[])
    now = timezone.now()
    user = actor_or_none(actor)
    with connection.cursor() as cursor:
        per_loan.update(
            _insert_cancel_audit(cursor, ids, reason=reason, user=user, now=now, as_of=as_of)
        )
    Loan.objects.filter(pk__in=ids).update(
        servicing_status=ServicingStatus.NOT_SERVICING,
        stop_servicing_reason=reason,
        servicing_changed_at=now,
        servicing_changed_by=user,
        updated_at=now,
    )
    stamp = {
        "cancelled_at": now,
        "cancelled_by": user,
        "cancel_reason": f"Servicing cancelled: {reason}",
    }
    _cancel_items(ids, stamp=stamp, payments=True)
    return BulkCancellation(
        reason=reason, rows=locked, per_loan=per_loan, updated=ids, changed_at=now, changed_by=user
    )


@transaction.atomic
def cancel_servicing_bulk(
    *,
    loan_ids,
    reason: str = StopServicingReason.API_REQUEST,
    actor,
    as_of: date | None = None,
) -> BulkCancellation:
    """``cancel_servicing`` on each of the loans, in one transaction and set-based (the admin's
    action on selected loans; issue 14: 1,000 loans in about a dozen statements). Unknown ids
    are ignored; a loan already stopped is left as it is (counted as not updated)."""
    reason = validate_reason(reason)
    return _cancel_servicing_of(
        Loan.objects.filter(pk__in=list(loan_ids)), reason=reason, actor=actor, as_of=as_of
    )


@dataclass
class BorrowerServicingCancellation:
    """Finosu's customer-level stop: the borrower, the loans updated, the seven sums."""

    borrower: Borrower
    bulk: BulkCancellation

    @property
    def loans_updated(self) -> int:
        return self.bulk.loans_updated

    @property
    def reason(self) -> str:
        return self.bulk.reason

    @property
    def totals(self) -> CancelCounts:
        return self.bulk.totals


def _borrower(borrower: Borrower | int) -> Borrower:
    pk = borrower.pk if isinstance(borrower, Borrower) else borrower
    found = Borrower.objects.filter(pk=pk).first()
    if found is None:
        raise NotFoundError(f"Borrower {pk} was not found.", code="borrower_not_found")
    return found


@transaction.atomic
def cancel_borrower_servicing(
    borrower_id: Borrower | int,
    *,
    actor,
    reason: str = StopServicingReason.API_REQUEST,
    as_of: date | None = None,
) -> BorrowerServicingCancellation:
    """Stop servicing every loan of the borrower (Finosu's customer stop, DESIGN §12): what
    ``cancel_servicing`` does to each, in one transaction; one audit row per loan updated. A
    loan already stopped keeps its reason and is not counted in ``loans_updated``. A borrower
    without loans answers zeros."""
    reason = validate_reason(reason)
    borrower = _borrower(borrower_id)
    bulk = _cancel_servicing_of(
        Loan.objects.filter(borrower=borrower), reason=reason, actor=actor, as_of=as_of
    )
    return BorrowerServicingCancellation(borrower=borrower, bulk=bulk)


@dataclass
class CommunicationsCancellation:
    """What ``cancel_borrower_communications`` cancelled: per loan and summed (the payment
    count is always zero: payments are not communications)."""

    borrower: Borrower
    per_loan: dict[int, CancelCounts]

    @property
    def totals(self) -> CancelCounts:
        totals = CancelCounts()
        for counts in self.per_loan.values():
            for name, value in counts.counts().items():
                setattr(totals, name, getattr(totals, name) + value)
        return totals


@transaction.atomic
def cancel_borrower_communications(
    borrower_id: Borrower | int, *, actor, as_of: date | None = None
) -> CommunicationsCancellation:
    """A borrower's "do not contact me" (DESIGN §12): cancel every pending call, e-mail and SMS
    and every active schedule of each of the borrower's loans; servicing status, scheduled
    payments and autopays are left alone, and so are the borrower's do-not-contact flags
    (an operator sets those). One audit row per loan, also where nothing was pending (the
    request is recorded). Set-based: the same statements for one loan or a thousand."""
    as_of = as_of or get_business_date()
    borrower = _borrower(borrower_id)
    locked = _lock_loans(Loan.objects.filter(borrower=borrower))
    ids = [loan.pk for loan in locked]
    per_loan = pending_counts(ids)
    for counts in per_loan.values():
        counts.cancelled_scheduled_payments = 0
    if not ids:
        return CommunicationsCancellation(borrower=borrower, per_loan=per_loan)
    now = timezone.now()
    stamp = {
        "cancelled_at": now,
        "cancelled_by": actor_or_none(actor),
        "cancel_reason": "Communications cancelled at the borrower's request",
    }
    _cancel_items(ids, stamp=stamp, payments=False)
    LoanEvent.objects.bulk_create(
        [
            _audit_row(
                loan,
                command="cancel_communications",
                actor=actor,
                as_of=as_of,
                reason="Communications cancelled at the borrower's request",
                changes={},
                result={
                    k: v
                    for k, v in per_loan[loan.pk].counts().items()
                    if k != "cancelled_scheduled_payments"
                },
            )
            for loan in locked
        ],
        batch_size=500,
    )
    return CommunicationsCancellation(borrower=borrower, per_loan=per_loan)


def resume_servicing(*, loan: Loan | int, note: str = "", actor, as_of: date | None = None) -> Loan:
    """Service a stopped loan again. Cancelled items stay cancelled (nothing is resurrected)."""
    note = (note or "").strip()
    if len(note) > 500:
        raise InvalidRequestError(
            "The note is longer than 500 characters.",
            errors=[field_error("note", "At most 500 characters.", "max_length")],
        )
    as_of = as_of or get_business_date()
    with transaction.atomic():
        loan = lock_loan(loan)
        if loan.servicing_status != ServicingStatus.NOT_SERVICING:
            raise ConflictError(
                "The loan is already being serviced.", code="loan_already_servicing"
            )
        now = timezone.now()
        previous_reason = loan.stop_servicing_reason
        loan.servicing_status = ServicingStatus.ACTIVE
        loan.stop_servicing_reason = None
        loan.servicing_changed_at = now
        loan.servicing_changed_by = actor_or_none(actor)
        loan.save(
            update_fields=[
                "servicing_status",
                "stop_servicing_reason",
                "servicing_changed_at",
                "servicing_changed_by",
                "updated_at",
            ]
        )
        ServicingEvent.objects.create(
            loan=loan,
            kind=ServicingEventKind.RESUME,
            actor=actor_or_none(actor),
            at=now,
            business_date=as_of,
            previous_reason=previous_reason or "",
            note=note,
        )
        record_event(
            loan=loan,
            command="resume_servicing",
            actor=actor,
            as_of=as_of,
            reason=note,
            input={"note": note},
            changes={
                "servicing_status": (ServicingStatus.NOT_SERVICING, ServicingStatus.ACTIVE),
                "stop_servicing_reason": (previous_reason, None),
            },
        )
    return loan


# --------------------------------------------------------------------------------------------
# Scheduling
# --------------------------------------------------------------------------------------------


def _check_choice(value, choices, field: str) -> str:
    if value not in choices.values:
        raise InvalidRequestError(
            f"{field} must be one of {', '.join(choices.values)}.",
            errors=[field_error(field, f"Unknown value {value!r}.", "invalid_choice")],
        )
    return value


def _check_not_past(on: date, as_of: date, field: str) -> None:
    if on < as_of:
        raise InvalidRequestError(
            f"{field} {on} is before the business date {as_of}.",
            code="date_in_past",
            errors=[field_error(field, "Before the business date.", "date_in_past")],
        )


def _check_can_schedule(loan: Loan, *, payment: bool = False) -> None:
    """State checks on the locked loan."""
    if loan.servicing_status == ServicingStatus.NOT_SERVICING:
        raise ConflictError(
            f"Servicing of the loan is stopped ({loan.stop_servicing_reason}); nothing new can be "
            "scheduled until it is resumed.",
            code="loan_not_servicing",
        )
    if loan.status == LoanStatus.CLOSED:
        raise ConflictError("The loan is closed (paid off).", code="loan_closed")
    if payment and loan.status == LoanStatus.PENDING:
        raise ConflictError(
            "The loan is not active yet: payments are scheduled on active loans.",
            code="loan_not_active",
        )


def _check_channel_allowed(loan: Loan, channel: str) -> None:
    borrower = loan.borrower
    if getattr(borrower, DO_NOT_CONTACT_FLAG[channel]):
        raise ConflictError(
            f"The borrower asked not to be contacted by {channel}.", code="do_not_contact"
        )
    if not getattr(borrower, CONTACT_ADDRESS[channel]):
        raise ConflictError(
            f"The borrower has no {CONTACT_ADDRESS[channel]} on file for {channel}.",
            code="no_contact_address",
        )


def _lock_with_borrower(loan: Loan | int) -> Loan:
    loan = lock_loan(loan)
    # The borrower's flags are read after the lock so that they are current.
    loan.borrower = Borrower.objects.get(pk=loan.borrower_id)
    return loan


def borrower_zone(loan: Loan) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(loan.borrower.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def schedule_payment(
    *,
    loan: Loan | int,
    amount: Decimal,
    scheduled_date: date,
    method: str = PaymentMethod.ACH,
    actor,
    as_of: date | None = None,
) -> ScheduledPayment:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise InvalidRequestError(
            "The amount must be positive.",
            errors=[field_error("amount", "Must be positive.", "min_value")],
        )
    if amount > MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
        raise InvalidRequestError(
            "The amount must have at most two decimals and 12 digits before the point.",
            errors=[field_error("amount", "Invalid amount.", "invalid")],
        )
    if not isinstance(scheduled_date, date) or isinstance(scheduled_date, datetime):
        raise InvalidRequestError(
            "scheduledDate must be a date.", errors=[field_error("scheduledDate", "Invalid.")]
        )
    method = _check_choice(method, PaymentMethod, "method")
    as_of = as_of or get_business_date()
    _check_not_past(scheduled_date, as_of, "scheduledDate")
    with transaction.atomic():
        loan = lock_loan(loan)
        _check_can_schedule(loan, payment=True)
        payment = ScheduledPayment.objects.create(
            loan=loan,
            amount=amount,
            scheduled_date=scheduled_date,
            method=method,
            created_by=actor_or_none(actor),
        )
        record_event(
            loan=loan,
            command="schedule_payment",
            actor=actor,
            as_of=as_of,
            input={"amount": amount, "scheduledDate": scheduled_date, "method": method},
            result={"scheduledPaymentId": payment.pk},
        )
    return payment


def schedule_communication(
    *,
    loan: Loan | int,
    channel: str,
    scheduled_at: datetime,
    subject: str = "",
    body: str = "",
    actor,
    as_of: date | None = None,
) -> ScheduledCommunication:
    channel = _check_choice(channel, Channel, "channel")
    if not isinstance(scheduled_at, datetime) or timezone.is_naive(scheduled_at):
        raise InvalidRequestError(
            "scheduledAt must be a date and time with a time zone offset.",
            errors=[field_error("scheduledAt", "Needs a time zone offset.", "naive_datetime")],
        )
    subject, body = (subject or "").strip(), body or ""
    if len(subject) > 200:
        raise InvalidRequestError(
            "The subject is longer than 200 characters.",
            errors=[field_error("subject", "At most 200 characters.", "max_length")],
        )
    as_of = as_of or get_business_date()
    with transaction.atomic():
        loan = _lock_with_borrower(loan)
        try:
            local_date = scheduled_at.astimezone(borrower_zone(loan)).date()
        except OverflowError:  # e.g. 0001-01-01T00:00Z is still year 0 in New York
            raise InvalidRequestError(
                "scheduledAt is out of the supported range in the borrower's time zone.",
                errors=[field_error("scheduledAt", "Out of range.", "overflow")],
            )
        _check_not_past(local_date, as_of, "scheduledAt")
        _check_can_schedule(loan)
        _check_channel_allowed(loan, channel)
        communication = ScheduledCommunication.objects.create(
            loan=loan,
            channel=channel,
            scheduled_at=scheduled_at,
            subject=subject,
            body=body,
            created_by=actor_or_none(actor),
        )
        record_event(
            loan=loan,
            command="schedule_communication",
            actor=actor,
            as_of=as_of,
            input={"channel": channel, "scheduledAt": scheduled_at.isoformat()},
            result={"scheduledCommunicationId": communication.pk},
        )
    return communication


def occurrence_dates(
    *, start: date, every_days: int, end: date | None = None, occurrences: int | None = None
) -> list[date]:
    """Every ``every_days`` days from ``start``, until ``end`` (inclusive) or ``occurrences``
    times. Pure; callers validate the bounds."""
    step = timedelta(days=every_days)
    if occurrences is not None:
        return [start + step * n for n in range(occurrences)]
    count = (end - start).days // every_days + 1
    return [start + step * n for n in range(count)]


def create_communication_schedule(
    *,
    loan: Loan | int,
    channel: str,
    every_days: int,
    start_date: date,
    end_date: date | None = None,
    occurrences: int | None = None,
    subject: str = "",
    body: str = "",
    actor,
    as_of: date | None = None,
) -> CommunicationSchedule:
    """Create a schedule and generate its communications (one ``bulk_create``), each at 10:00
    in the borrower's time zone."""
    channel = _check_choice(channel, Channel, "channel")
    errors = []
    if not isinstance(every_days, int) or isinstance(every_days, bool) or every_days < 1:
        errors.append(field_error("everyDays", "Must be a whole number of days, at least 1."))
    elif every_days > MAX_EVERY_DAYS:
        errors.append(field_error("everyDays", f"At most {MAX_EVERY_DAYS}.", "max_value"))
    if (end_date is None) == (occurrences is None):
        errors.append(
            field_error(None, "Give exactly one of endDate and occurrences.", "end_or_occurrences")
        )
    if occurrences is not None and (
        not isinstance(occurrences, int) or isinstance(occurrences, bool) or occurrences < 1
    ):
        errors.append(field_error("occurrences", "Must be at least 1.", "min_value"))
    if end_date is not None and end_date < start_date:
        errors.append(field_error("endDate", "Before the start date.", "end_before_start"))
    if (
        not errors
        and occurrences is not None
        and (date.max - start_date).days < (occurrences - 1) * every_days
    ):
        # The last occurrence would be after 9999-12-31 (no date can hold it): a 400 naming
        # the count, as the terms refuse a schedule running past it (loans.terms).
        errors.append(
            field_error(
                "occurrences",
                f"The last one would fall after {date.max.isoformat()}.",
                "out_of_range",
            )
        )
    if errors:
        first = errors[0]
        raise InvalidRequestError(
            f"The communication schedule is invalid: {first['detail']}",
            code=first["code"] if first["code"] != "invalid" else "invalid_schedule",
            errors=errors,
        )
    as_of = as_of or get_business_date()
    _check_not_past(start_date, as_of, "startDate")
    dates = occurrence_dates(
        start=start_date, every_days=every_days, end=end_date, occurrences=occurrences
    )
    if len(dates) > MAX_OCCURRENCES:
        raise InvalidRequestError(
            f"The schedule would generate {len(dates)} communications; at most {MAX_OCCURRENCES}.",
            code="too_many_occurrences",
            errors=[field_error("occurrences", f"At most {MAX_OCCURRENCES}.", "max_value")],
        )
    subject = (subject or "").strip()[:200]
    with transaction.atomic():
        loan = _lock_with_borrower(loan)
        _check_can_schedule(loan)
        _check_channel_allowed(loan, channel)
        schedule = CommunicationSchedule.objects.create(
            loan=loan,
            channel=channel,
            every_days=every_days,
            start_date=start_date,
            end_date=end_date,
            occurrences=occurrences,
            subject=subject,
            body=body or "",
            created_by=actor_or_none(actor),
        )
        zone = borrower_zone(loan)
        now = timezone.now()
        ScheduledCommunication.objects.bulk_create(
            ScheduledCommunication(
                loan=loan,
                channel=channel,
                scheduled_at=datetime.combine(on, SEND_TIME, tzinfo=zone),
                subject=subject,
                body=body or "",
                schedule=schedule,
                created_at=now,
                created_by=actor_or_none(actor),
            )
            for on in dates
        )
        record_event(
            loan=loan,
            command="create_communication_schedule",
            actor=actor,
            as_of=as_of,
            input={
                "channel": channel,
                "everyDays": every_days,
                "startDate": start_date,
                "endDate": end_date,
                "occurrences": occurrences,
            },
            result={"communicationScheduleId": schedule.pk, "generated": len(dates)},
        )
    return schedule


# --------------------------------------------------------------------------------------------
# Cancel one item
# --------------------------------------------------------------------------------------------


def _cancel_one(model, *, pk: int, pending: str, cancelled: str, label: str, actor, reason: str):
    """Cancel one row with a conditional UPDATE (so a race with ``cancel_servicing`` or an
    executor can never cancel it twice). Returns the refreshed row."""
    reason = (reason or "").strip()[:500]
    row = model.objects.filter(pk=pk).first()
    if row is None:
        raise NotFoundError(f"{label} {pk} was not found.", code="not_found")
    if row.status != pending:
        raise ConflictError(
            f"{label} {pk} is {words(row.status)}; only {article(words(pending))} one can be "
            "cancelled.",
            code=f"not_{pending.lower()}",
        )
    now = timezone.now()
    updated = model.objects.filter(pk=pk, status=pending).update(
        status=cancelled, cancelled_at=now, cancelled_by=actor_or_none(actor), cancel_reason=reason
    )
    if updated == 0:  # changed by someone else since it was read
        row.refresh_from_db(fields=["status"])
        raise ConflictError(
            f"{label} {pk} is {words(row.status)}; only {article(words(pending))} one can be "
            "cancelled.",
            code=f"not_{pending.lower()}",
        )
    row.refresh_from_db()
    return row


def _cancel_item(model, *, name: str, pk: int, pending: str, cancelled: str, actor, reason):
    """``_cancel_one`` of a scheduled item (``name``: ``scheduled_payment``, ...), audited as
    ``cancel_<name>``."""
    item = _cancel_one(
        model,
        pk=pk,
        pending=pending,
        cancelled=cancelled,
        label=name.replace("_", " ").capitalize(),
        actor=actor,
        reason=reason,
    )
    first, *rest = name.split("_")
    record_event(
        loan=item.loan,
        command=f"cancel_{name}",
        actor=actor,
        as_of=get_business_date(),
        reason=reason,
        input={first + "".join(w.capitalize() for w in rest) + "Id": item.pk},
        changes={f"{name}.status": (pending, item.status)},
    )
    return item


@transaction.atomic
def cancel_scheduled_payment(*, payment_id: int, actor, reason: str = "") -> ScheduledPayment:
    return _cancel_item(
        ScheduledPayment,
        pk=payment_id,
        pending=ScheduledPaymentStatus.PENDING,
        cancelled=ScheduledPaymentStatus.CANCELLED,
        name="scheduled_payment",
        actor=actor,
        reason=reason,
    )


@transaction.atomic
def cancel_scheduled_communication(
    *, communication_id: int, actor, reason: str = ""
) -> ScheduledCommunication:
    return _cancel_item(
        ScheduledCommunication,
        pk=communication_id,
        pending=CommunicationStatus.PENDING,
        cancelled=CommunicationStatus.CANCELLED,
        name="scheduled_communication",
        actor=actor,
        reason=reason,
    )


@dataclass(frozen=True)
class ScheduleCancellation:
    schedule: CommunicationSchedule
    cancelled_communications: int


@transaction.atomic
def cancel_communication_schedule(
    *, schedule_id: int, actor, reason: str = ""
) -> ScheduleCancellation:
    """Cancel an ACTIVE schedule and, in one UPDATE, its communications still PENDING."""
    schedule = _cancel_one(
        CommunicationSchedule,
        pk=schedule_id,
        pending=CommunicationScheduleStatus.ACTIVE,
        cancelled=CommunicationScheduleStatus.CANCELLED,
        label="Communication schedule",
        actor=actor,
        reason=reason,
    )
    count = ScheduledCommunication.objects.filter(
        Q(schedule=schedule) & Q(status=CommunicationStatus.PENDING)
    ).update(
        status=CommunicationStatus.CANCELLED,
        cancelled_at=schedule.cancelled_at,
        cancelled_by=actor_or_none(actor),
        cancel_reason=f"Schedule {schedule.pk} cancelled"
        + (f": {schedule.cancel_reason}" if schedule.cancel_reason else ""),
    )
    record_event(
        loan=schedule.loan,
        command="cancel_communication_schedule",
        actor=actor,
        as_of=get_business_date(),
        reason=reason,
        input={"communicationScheduleId": schedule.pk},
        changes={
            "communication_schedule.status": (
                CommunicationScheduleStatus.ACTIVE,
                CommunicationScheduleStatus.CANCELLED,
            )
        },
        result={"cancelledCommunications": count},
    )
    return ScheduleCancellation(schedule=schedule, cancelled_communications=count)
