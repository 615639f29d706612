"""Autopay (LoanPro's, DESIGN §11): set up, cancel, and the scheduled payments it generates.

* ``setup_autopay`` / ``cancel_autopay`` are commands (keyword-only, actor, loan row lock, one
  audit row). One ACTIVE autopay per loan (a database constraint); a second one is 409
  ``autopay_exists``. An autopay needs an ``ACTIVE`` loan that is serviced.
* ``sync_autopay_payments(loan, as_of=D)`` makes the pending autopay payments match the
  current schedule: one ``ScheduledPayment`` per autopay and due date in
  ``[max(D, autopay.start_date), D + AUTOPAY_HORIZON_DAYS]`` (never two for one due date: a
  database constraint), scheduled ``processDaysBefore`` days before the due date (not before
  D). A pending payment whose due date is no longer in the schedule moves to the first new due
  date on or after it, or is cancelled when there is none; a ``SCHEDULED_PAYMENT`` payment's
  amount follows its installment. The close of business calls it (step 3); so does every
  schedule change, through ``loans.hooks`` (registered in ``ServicingConfig.ready``), inside
  the command's transaction.
* ``SCHEDULED_PAYMENT`` amounts are the installment's outstanding; at execution the
  dispatcher takes the installment's outstanding again, capped at the payoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from loans import ledger
from loans.exceptions import ConflictError, InvalidRequestError, NotFoundError, field_error
from loans.formatting import words
from loans.models import Loan, LoanStatus, Schedule, ServicingStatus
from loans.selectors import get_business_date
from loans.versions import lock_loan, record_event
from servicing.models import (
    Autopay,
    AutopayAmountType,
    AutopayStatus,
    PaymentMethod,
    ScheduledPayment,
    ScheduledPaymentStatus,
)
from servicing.statements import CompiledRead, run_together

MAX_PROCESS_DAYS_BEFORE = 30
MAX_AMOUNT = Decimal("999999999999.99")


def _actor(actor):
    return actor if getattr(actor, "pk", None) else None


def horizon_days() -> int:
    return settings.AUTOPAY_HORIZON_DAYS


def setup_autopay(
    *,
    loan: Loan | int,
    method: str = PaymentMethod.ACH,
    amount_type: str = AutopayAmountType.SCHEDULED_PAYMENT,
    amount: Decimal | None = None,
    process_days_before: int = 0,
    actor,
    as_of: date | None = None,
) -> Autopay:
    errors = []
    if method not in PaymentMethod.values:
        errors.append(field_error("method", f"Must be one of {', '.join(PaymentMethod.values)}."))
    if amount_type not in AutopayAmountType.values:
        errors.append(
            field_error(
                "amountType", f"Must be one of {', '.join(AutopayAmountType.values)}.", "invalid"
            )
        )
    elif amount_type == AutopayAmountType.FIXED:
        if (
            not isinstance(amount, Decimal)
            or not amount.is_finite()
            or amount <= 0
            or amount > MAX_AMOUNT
            or amount != amount.quantize(Decimal("0.01"))
        ):
            errors.append(field_error("amount", "A FIXED autopay needs a positive amount."))
    elif amount is not None:
        errors.append(
            field_error("amount", "A SCHEDULED_PAYMENT autopay pays the installment: no amount.")
        )
    if (
        not isinstance(process_days_before, int)
        or isinstance(process_days_before, bool)
        or not 0 <= process_days_before <= MAX_PROCESS_DAYS_BEFORE
    ):
        errors.append(
            field_error("processDaysBefore", f"A whole number from 0 to {MAX_PROCESS_DAYS_BEFORE}.")
        )
    if errors:
        raise InvalidRequestError(f"The autopay is invalid: {errors[0]['detail']}", errors=errors)
    as_of = as_of or get_business_date()
    with transaction.atomic():
        loan = lock_loan(loan)
        if loan.servicing_status == ServicingStatus.NOT_SERVICING:
            raise ConflictError(
                "Servicing of the loan is stopped; no autopay can be set up.",
                code="loan_not_servicing",
            )
        if loan.status != LoanStatus.ACTIVE:
            raise ConflictError(
                f"The loan is {words(loan.status)}; autopay is set up on an active loan.",
                code="loan_not_active",
            )
        if Autopay.objects.filter(loan=loan, status=AutopayStatus.ACTIVE).exists():
            raise ConflictError(
                "The loan already has an active autopay; cancel it first.", code="autopay_exists"
            )
        try:
            with transaction.atomic():
                autopay = Autopay.objects.create(
                    loan=loan,
                    method=method,
                    amount_type=amount_type,
                    amount=amount if amount_type == AutopayAmountType.FIXED else None,
                    process_days_before=process_days_before,
                    start_date=as_of,
                    created_by=_actor(actor),
                )
        except IntegrityError:  # a concurrent set-up won (SQLite has no row lock)
            raise ConflictError(
                "The loan already has an active autopay; cancel it first.", code="autopay_exists"
            )
        created = sync_autopay_payments(loan, as_of=as_of)
        record_event(
            loan=loan,
            command="setup_autopay",
            actor=actor,
            as_of=as_of,
            input={
                "method": method,
                "amountType": amount_type,
                "amount": amount,
                "processDaysBefore": process_days_before,
            },
            result={"autopayId": autopay.pk, "scheduledPayments": created},
        )
    return autopay


@dataclass(frozen=True)
class AutopayCancellation:
    autopay: Autopay
    cancelled_scheduled_payments: int


def cancel_autopay(*, autopay_id: int, actor, reason: str = "") -> AutopayCancellation:
    reason = (reason or "").strip()[:500]
    row = Autopay.objects.filter(pk=autopay_id).only("loan_id").first()
    if row is None:
        raise NotFoundError(f"Autopay {autopay_id} was not found.", code="not_found")
    with transaction.atomic():
        loan = lock_loan(row.loan_id)
        autopay = Autopay.objects.get(pk=autopay_id)
        if autopay.status != AutopayStatus.ACTIVE:
            raise ConflictError(
                f"Autopay {autopay_id} is {words(autopay.status)}; only an active one can be cancelled.",
                code="not_active",
            )
        now = timezone.now()
        stamp = {"cancelled_at": now, "cancelled_by": _actor(actor)}
        autopay.status = AutopayStatus.CANCELLED
        autopay.cancelled_at, autopay.cancelled_by = now, _actor(actor)
        autopay.cancel_reason = reason
        autopay.save(update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason"])
        payments = ScheduledPayment.objects.filter(
            autopay=autopay, status=ScheduledPaymentStatus.PENDING
        ).update(
            status=ScheduledPaymentStatus.CANCELLED,
            cancel_reason=f"Autopay {autopay.pk} cancelled",
            **stamp,
        )
        record_event(
            loan=loan,
            command="cancel_autopay",
            actor=actor,
            as_of=get_business_date(),
            reason=reason,
            input={"autopayId": autopay.pk},
            changes={"autopay.status": (AutopayStatus.ACTIVE, AutopayStatus.CANCELLED)},
            result={"cancelledScheduledPayments": payments},
        )
    return AutopayCancellation(autopay=autopay, cancelled_scheduled_payments=payments)


def cancel_autopays_of(loan: Loan, *, stamp: dict) -> int:
    """One UPDATE: the loan's active autopays cancelled (``cancel_servicing`` calls it; their
    pending payments are cancelled with the loan's other pending payments)."""
    return Autopay.objects.filter(loan=loan, status=AutopayStatus.ACTIVE).update(
        status=AutopayStatus.CANCELLED, **stamp
    )


# --------------------------------------------------------------------------------------------
# Generation and re-sync
# --------------------------------------------------------------------------------------------


def _live_periods(loan: Loan) -> list:
    schedule = Schedule.objects.filter(loan=loan, is_current=True).first()
    if schedule is None:
        return []
    return [p for p in schedule.periods.order_by("period") if not p.frozen]


def _payment_fields(autopay: Autopay, period, as_of: date) -> dict:
    amount = (
        autopay.amount
        if autopay.amount_type == AutopayAmountType.FIXED
        else period.total_outstanding
    )
    # A lead reaching back before 0001-01-01 stops there (the business date is later anyway).
    lead = min(autopay.process_days_before, (period.due_date - date.min).days)
    scheduled = max(period.due_date - timedelta(days=lead), as_of)
    return {"due_date": period.due_date, "scheduled_date": scheduled, "amount": amount}


def sync_autopay_payments(loan: Loan, *, as_of: date, periods: list | None = None) -> int:
    """Match the pending autopay payments of ``loan`` to its current schedule (module
    docstring). Returns the number of payments created. Call it under the loan row lock."""
    autopays = list(Autopay.objects.filter(loan=loan, status=AutopayStatus.ACTIVE))
    if not autopays:
        return 0
    if loan.status != LoanStatus.ACTIVE or loan.servicing_status != ServicingStatus.ACTIVE:
        return 0
    periods = ledger.live(periods) if periods is not None else _live_periods(loan)
    by_due = {p.due_date: p for p in periods}
    end = as_of + timedelta(days=horizon_days())
    rows = list(
        ScheduledPayment.objects.filter(autopay__in=autopays)
        .exclude(status=ScheduledPaymentStatus.CANCELLED)
        .order_by("due_date", "id")
    )
    created = []
    now = timezone.now()
    for autopay in autopays:
        mine = [r for r in rows if r.autopay_id == autopay.pk]
        pending = [r for r in mine if r.status == ScheduledPaymentStatus.PENDING]
        # Dates held by executed payments, and by pending ones whose due date still exists
        # (they stay); an orphaned pending payment moves to the first free date after it.
        taken = {r.due_date for r in mine if r.status != ScheduledPaymentStatus.PENDING}
        taken |= {r.due_date for r in pending if r.due_date in by_due}
        wanted = [
            p
            for p in periods
            if max(as_of, autopay.start_date) <= p.due_date <= end and p.total_outstanding > 0
        ]
        for row in pending:
            period = by_due.get(row.due_date)
            if period is None:
                period = next(
                    (
                        p
                        for p in periods
                        if row.due_date is not None
                        and p.due_date >= max(row.due_date, autopay.start_date, as_of)
                        and p.due_date not in taken
                        and p.due_date <= end
                    ),
                    None,
                )
            fields = _payment_fields(autopay, period, as_of) if period is not None else None
            if fields is None or fields["amount"] <= 0:
                ScheduledPayment.objects.filter(pk=row.pk).update(
                    status=ScheduledPaymentStatus.CANCELLED,
                    cancelled_at=now,
                    cancel_reason="The schedule changed: no installment left for this payment",
                )
                continue
            taken.add(fields["due_date"])
            if any(getattr(row, k) != v for k, v in fields.items()):
                ScheduledPayment.objects.filter(pk=row.pk).update(**fields)
        for period in wanted:
            if period.due_date in taken:
                continue
            taken.add(period.due_date)
            created.append(
                ScheduledPayment(
                    loan=loan,
                    method=autopay.method,
                    autopay=autopay,
                    created_at=now,
                    **_payment_fields(autopay, period, as_of),
                )
            )
    if created:
        ScheduledPayment.objects.bulk_create(created)
    return len(created)


def resync_after_schedule_change(loan: Loan) -> None:
    """``loans.hooks`` receiver: a schedule change moves the pending autopay payments. One
    query for a loan without autopay (the usual case)."""
    if run_together(_ACTIVE_AUTOPAY.bind(loan_id=loan.pk))[0]:
        sync_autopay_payments(loan, as_of=get_business_date())


# Whether the loan has an active autopay: every payment asks, so compiled once.
_ACTIVE_AUTOPAY = CompiledRead(
    lambda *, loan_id: Autopay.objects.filter(
        loan_id=loan_id, status=AutopayStatus.ACTIVE
    ).values_list("pk")[:1],
    loan_id=-918_273_639,
)
