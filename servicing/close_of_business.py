"""Close of business (DESIGN §10): Fineract's COB, LoanPro's daily maintenance.

``close_business_day(business_date=D, actor=...)`` closes every loan that is open (``ACTIVE``,
or ``OVERPAID`` where the core has it) and whose ``last_closed_business_date`` is before D.
Each loan runs every missing day up to D in order (catch-up; a loan never closed before starts
on the business date it was activated on), each day in its own transaction under the loan row
lock, these steps in this order:

1. late fee: a ``CHARGE`` of ``lateFeeAmount`` for each installment still unpaid
   ``lateFeeGraceDays`` after its due date (on day ``due + grace``, or the first closed day
   after it), once per installment: the charge's external id ``late-fee-<loan>-<due date>`` is
   unique, so it is charged once even if an operator reverses it;
2. delinquency: days past due and the bucket; a change is a ``DelinquencyChange`` row and an
   audit event ``delinquency_change``;
3. autopay: ``servicing.autopay.sync_autopay_payments`` for the day;
4. snapshot: one ``LoanDailySnapshot`` (unique per loan and day);
5. ``last_closed_business_date = day`` (and the bucket).

A ``NOT_SERVICING`` loan gets steps 2, 4 and 5 only; a charged-off loan no late fee; a loan
whose modification is in progress gets no late fee that day (the fee is charged at the first
close after it). Running a day twice changes nothing: the day is skipped under the lock.

A worker killed mid-loan leaves that loan's day either committed or not (one transaction per
loan-day); the next run closes what is missing. A loan that raises is recorded as a
``JobFailure`` with its error, the others go on.

Why this module is long: it is the one close-of-business service (jobs, batches, the per-loan
catch-up loop and its five steps) plus the statements it compiles once per database
(``CompiledRead``) so that a loan-day costs a constant four statements; split, the steps would
have to pass the locked row and the stored schedule between modules.

Days past due on a catch-up day use the loan's schedule as it now stands (payments posted
later but dated on or before that day count; a payment dated after it does not make an
installment unpaid retroactively — the same figures the API shows for that business date).

Jobs: ``create_job`` -> ``start_job`` (RUNNING, the loan ids, ``total``) -> ``close_batch`` per
batch of ``COB_BATCH_SIZE`` loans (Celery hands batches to workers; the synchronous
``close_business_day`` runs them in-process) -> the batch that completes the count ends the job
(``DONE``, or ``FAILED`` when a loan failed) and, for the nightly run, moves the business date
on. Progress counts are ``F()`` updates, one per loan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Least
from django.utils import timezone

from loans import ledger
from loans.exceptions import ConflictError, DomainError, NotFoundError
from loans.models import (
    Loan,
    LoanEvent,
    LoanStatus,
    SchedulePeriod,
    ServicingStatus,
    Transaction,
    TransactionType,
    bucket_for,
)
from loans.selectors import current_schedule, get_business_date
from loans.services import post_transaction, set_business_date
from loans.versions import (
    PERIOD_FIELDS,
    accrual_for,
    bind_loan_lock,
    lock_loan,
    locked_loan,
    recalculates,
    record_event,
)
from servicing.autopay import sync_autopay_payments
from servicing.models import (
    Autopay,
    AutopayStatus,
    DelinquencyChange,
    Job,
    JobFailure,
    JobKind,
    JobStatus,
    LoanDailySnapshot,
)
from servicing.statements import (
    Bound,
    CompiledRead,
    asynchronous_commit,
    bound_insert,
    run_together,
    update_query,
)
from servicing.system import system_user

ZERO = Decimal("0.00")
DAY = timedelta(days=1)
OPEN_STATUSES = tuple(
    s for s in (LoanStatus.ACTIVE, getattr(LoanStatus, "OVERPAID", None)) if s is not None
)

try:  # the payoff selector of DESIGN §9 (the ledger engineer's), when the core has it
    from loans.selectors import payoff as _payoff_selector
except ImportError:  # pragma: no cover - depends on the core's version
    _payoff_selector = None


def payoff_total(loan: Loan, periods: list, *, on: date, schedule=None) -> Decimal:
    """What settles the loan on ``on``: the core's payoff selector when present, else the
    same rule over the schedule rows (all principal, interest due plus the current period's
    accrued by days, fees). ``schedule``: the current version the caller read under the loan
    lock (with its setup), not read again."""
    if _payoff_selector is not None:
        try:
            return _payoff_selector(loan, on=on, schedule=schedule).total
        except (DomainError, ValueError):  # e.g. a catch-up day before the latest transaction
            pass
    # No quote for that day (a catch-up day before the latest transaction): what is
    # outstanding on the schedule as it stands.
    return outstanding_total(periods)


def outstanding_total(periods: list) -> Decimal:
    return sum((p.total_outstanding for p in periods if not p.frozen), ZERO)


@dataclass
class StoredBook:
    """A loan's current schedule version as stored, read under the loan lock in one statement
    of plain values (no model instances): the setup the version was generated from (its id),
    its periods as ``ledger.PeriodState``, and two facts of the day: whether the loan has an
    active autopay and a transaction dated after the day (a catch-up day)."""

    setup_id: int | None
    periods: list
    has_autopay: bool = True  # unknown (no schedule rows): let the autopay step look
    later_transactions: bool = False


_SENTINEL_LOAN, _SENTINEL_DAY = -918_273_645, date(1903, 7, 9)


def _book_query(*, loan_id: int, day: date):
    return (
        SchedulePeriod.objects.filter(schedule__loan_id=loan_id, schedule__is_current=True)
        .annotate(
            has_autopay=Exists(
                Autopay.objects.filter(loan_id=loan_id, status=AutopayStatus.ACTIVE)
            ),
            later_transactions=Exists(
                Transaction.objects.filter(loan_id=loan_id, reversed=False, date__gt=day)
            ),
        )
        .order_by("period")
        .values_list(
            "schedule__setup_id", "frozen", *PERIOD_FIELDS, "has_autopay", "later_transactions"
        )
    )


_BOOK = CompiledRead(_book_query, loan_id=_SENTINEL_LOAN, day=_SENTINEL_DAY)
_SENTINEL_BUCKET = "~bucket~"
_CLOSED = CompiledRead(
    lambda *, loan_id, day, bucket: update_query(
        Loan.objects.filter(pk=loan_id), last_closed_business_date=day, delinquency_bucket=bucket
    ),
    loan_id=_SENTINEL_LOAN,
    day=_SENTINEL_DAY,
    bucket=_SENTINEL_BUCKET,
)


def lock_loan_row(loan: Loan | int) -> Loan:
    """``loans.versions.lock_loan`` (the loan row lock ``cancel_servicing`` takes, the loan
    with its setup, fresh), from a statement compiled once (``CompiledRead``)."""
    pk = loan.pk if isinstance(loan, Loan) else loan
    return locked_loan(pk, run_together(bind_loan_lock(pk))[0])


def lock_with_book(loan: Loan | int, day: date, *also: Bound) -> tuple:
    """``lock_loan_row`` then ``stored_book`` for ``day`` (and any statements ``also``), in
    one round trip on PostgreSQL: the server runs them in order, so the schedule is read under
    the lock just taken. Returns the loan, its ``StoredBook`` and the results of ``also``."""
    pk = loan.pk if isinstance(loan, Loan) else loan
    found, rows, *more = run_together(bind_loan_lock(pk), _BOOK.bind(loan_id=pk, day=day), *also)
    return (locked_loan(pk, found), _book_of(rows), *more)


def stored_book(loan: Loan | int, day: date) -> StoredBook:
    """The loan's ``StoredBook`` for ``day`` (one statement; call it under the loan lock)."""
    return _book_of(_BOOK.rows(loan_id=loan.pk if isinstance(loan, Loan) else loan, day=day))


def lock_with_books(loan_ids, day: date) -> tuple[dict, dict]:
    """``lock_with_book`` for several loans at once (the dispatcher's batch): their row locks
    in id order (so two batches never wait on each other in a cycle), then their
    ``StoredBook``s for ``day``: two statements whatever the number of loans, compiled per
    call (once per batch). Returns ``({id: loan}, {id: book})``; a loan not found is absent."""
    ids = sorted(set(loan_ids))
    loans = {
        loan.pk: loan
        for loan in Loan.objects.select_for_update(of=("self",))
        .select_related("setup")
        .filter(pk__in=ids)
        .order_by("pk")
    }
    rows: dict[int, list] = {pk: [] for pk in loans}
    periods = (
        SchedulePeriod.objects.filter(schedule__loan_id__in=ids, schedule__is_current=True)
        .annotate(
            has_autopay=Exists(
                Autopay.objects.filter(
                    loan_id=OuterRef("schedule__loan_id"), status=AutopayStatus.ACTIVE
                )
            ),
            later_transactions=Exists(
                Transaction.objects.filter(
                    loan_id=OuterRef("schedule__loan_id"), reversed=False, date__gt=day
                )
            ),
        )
        .order_by("schedule__loan_id", "period")
        .values_list(
            "schedule__loan_id",
            "schedule__setup_id",
            "frozen",
            *PERIOD_FIELDS,
            "has_autopay",
            "later_transactions",
        )
    )
    for loan_id, *row in periods:
        rows.setdefault(loan_id, []).append(row)
    return loans, {pk: _book_of(found) for pk, found in rows.items()}


def _book_of(rows: list) -> StoredBook:
    if not rows:
        return StoredBook(setup_id=None, periods=[])
    fields = len(PERIOD_FIELDS)
    periods = [
        ledger.PeriodState(
            frozen=bool(row[1]), **dict(zip(PERIOD_FIELDS, row[2 : 2 + fields], strict=True))
        )
        for row in rows
    ]
    last = rows[0]
    return StoredBook(
        setup_id=last[0],
        periods=periods,
        has_autopay=bool(last[2 + fields]),
        later_transactions=bool(last[3 + fields]),
    )


def stored_payoff_total(loan: Loan, book: StoredBook, *, on: date) -> Decimal:
    """The payoff total on ``on`` from the stored schedule state, without replaying the
    history: ``ledger.payoff`` (the one definition of what is owed) over the stored periods,
    which are what the whole replay gives under the very conditions in which the core resumes
    a replay from them (``versions.resume_periods``: no daily-accrual engine, not charged off,
    ``ledger.can_resume``) and when the version's setup is the loan's (locked with it). Any
    other loan gets the core's payoff selector (it replays). ``book`` read for ``on``: with a
    transaction dated after it (a catch-up day) there is no quote for that day, so it is
    what the schedule has outstanding.
    The figure is the selector's for every loan (tests/servicing/test_close_of_business.py
    compares the two)."""
    if not book.periods:
        return ZERO
    if book.later_transactions:
        return outstanding_total(book.periods)
    setup = loan.setup
    if (
        book.setup_id != setup.pk
        or recalculates(loan, setup)
        or loan.charged_off
        or not ledger.can_resume(book.periods)
        or not ledger.live(book.periods)
    ):
        return payoff_total(loan, book.periods, on=on, schedule=current_schedule(loan))
    return ledger.payoff(
        book.periods, on=on, rounding_mode=setup.rounding_mode, accrual=accrual_for(setup)
    ).total


def late_fee_external_id(loan_id: int, due_date: date) -> str:
    return f"late-fee-{loan_id}-{due_date.isoformat()}"


def _unpaid_on(period, day: date) -> bool:
    return not period.complete or (
        period.obligations_met_on_date is not None and period.obligations_met_on_date > day
    )


def _assess_late_fees(loan: Loan, periods: list, day: date, actor) -> int:
    setup = loan.setup
    if not setup.late_fee_amount:
        return 0
    grace = timedelta(days=setup.late_fee_grace_days or 0)
    late = [p for p in periods if not p.frozen and p.due_date + grace <= day and _unpaid_on(p, day)]
    if not late:
        return 0
    ids = {late_fee_external_id(loan.pk, p.due_date): p for p in late}
    charged = set(
        Transaction.objects.filter(external_id__in=list(ids)).values_list("external_id", flat=True)
    )
    count = 0
    for external_id, period in ids.items():
        if external_id in charged:
            continue
        post_transaction(
            loan=loan,
            type=TransactionType.CHARGE,
            on=day,
            amount=setup.late_fee_amount,
            actor=actor,
            external_id=external_id,
            note=f"Late fee: installment {period.period} due {period.due_date} unpaid",
            as_of=day,
        )
        count += 1
    return count


@dataclass(frozen=True)
class LoanDay:
    """What closing one day of one loan did."""

    loan_id: int
    business_date: date
    late_fees: int
    bucket_before: str
    bucket: str
    autopay_payments: int
    days_past_due: int


def close_loan_day(
    *,
    loan: Loan | int,
    day: date,
    actor,
    job_id: int | None = None,
    job_business_date: date | None = None,
):
    """Close one day of one loan in one transaction under its row lock. Returns a ``LoanDay``,
    or None when there was nothing to do (the day is closed already, the loan is not open)."""
    with transaction.atomic():
        loan, book = lock_with_book(loan, day)
        if loan.status not in OPEN_STATUSES:
            return None
        if loan.last_closed_business_date is not None and loan.last_closed_business_date >= day:
            return None
        serviced = loan.servicing_status == ServicingStatus.ACTIVE
        fees = 0
        if serviced and not loan.charged_off and not loan.modification_in_progress:
            fees = _assess_late_fees(loan, book.periods, day, actor)
            if fees:
                loan.refresh_from_db()
                book = stored_book(loan, day)
        periods = book.periods
        summary = ledger.summarize(periods, as_of=day)
        before = loan.delinquency_bucket
        bucket = bucket_for(summary.days_past_due)
        if bucket != before:
            DelinquencyChange.objects.create(
                loan=loan,
                business_date=day,
                from_bucket=before,
                to_bucket=bucket,
                days_past_due=summary.days_past_due,
            )
            record_event(
                loan=loan,
                command="delinquency_change",
                actor=actor,
                as_of=day,
                reason=f"{summary.days_past_due} days past due",
                changes={"delinquency_bucket": (before, bucket)},
            )
        autopay = 0
        if serviced and loan.status == LoanStatus.ACTIVE and book.has_autopay:
            autopay = sync_autopay_payments(loan, as_of=day, periods=periods)
        # the snapshot, the last closed day and the job's count: one round trip on PostgreSQL
        statements = [
            bound_insert(
                LoanDailySnapshot,
                loan_id=loan.pk,
                business_date=day,
                status=loan.status,
                sub_status=loan.sub_status,
                servicing_status=loan.servicing_status,
                delinquency_bucket=bucket,
                days_past_due=summary.days_past_due,
                amount_past_due=summary.amount_past_due,
                principal_outstanding=summary.principal_outstanding,
                interest_outstanding=summary.interest_outstanding,
                fees_outstanding=summary.fees_outstanding,
                payoff_total=stored_payoff_total(loan, book, on=day),
                job_id=job_id,
                created_at=timezone.now(),
            ),
            _CLOSED.bind(into="count", loan_id=loan.pk, day=day, bucket=bucket),
        ]
        if job_id is not None and day == job_business_date:
            statements.append(_COUNT.bind(into="count", job_id=job_id, done=1, failed=0))
        run_together(*statements)
    return LoanDay(
        loan_id=loan.pk,
        business_date=day,
        late_fees=fees,
        bucket_before=before,
        bucket=bucket,
        autopay_payments=autopay,
        days_past_due=summary.days_past_due,
    )


def first_day_to_close(loan: Loan, business_date: date) -> date:
    """The day after the loan's last closed day; for a loan never closed, the business date it
    was activated on (DESIGN §10), even when that is after ``business_date``: a run for a date
    before the loan existed closes none of its days. (It used to close that earlier date, so a
    run for 0135-01-24 left the loan's last closed date there and the next run caught up
    nineteen centuries, one loan-day at a time.)"""
    if loan.last_closed_business_date is not None:
        return loan.last_closed_business_date + DAY
    activated = (
        LoanEvent.objects.filter(loan=loan, command="activate_loan")
        .order_by("id")
        .values_list("business_date", flat=True)
        .first()
    )
    return activated or business_date


_UNREAD = object()


def close_business_day_for_loan(
    *,
    loan: Loan | int,
    business_date: date,
    actor,
    job_id: int | None = None,
    last_closed=_UNREAD,
) -> list[LoanDay]:
    """Close every day of one loan still open up to ``business_date`` (catch-up), each day in
    its own transaction. Idempotent. ``last_closed``: the loan's last closed date as a batch
    read it (one query for the batch); only where to start -- each day re-checks it under the
    loan lock."""
    loan_id = loan.pk if isinstance(loan, Loan) else loan
    if last_closed is _UNREAD:
        row = Loan.objects.only("id", "last_closed_business_date").get(pk=loan_id)
    else:
        row = Loan(pk=loan_id, last_closed_business_date=last_closed)
    days = []
    day = first_day_to_close(row, business_date)
    while day <= business_date:
        result = close_loan_day(
            loan=loan_id, day=day, actor=actor, job_id=job_id, job_business_date=business_date
        )
        if result is not None:
            days.append(result)
        day += DAY
    return days


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------


def loans_to_close(business_date: date) -> list[int]:
    return list(
        Loan.objects.filter(status__in=OPEN_STATUSES)
        .filter(
            Q(last_closed_business_date__isnull=True)
            | Q(last_closed_business_date__lt=business_date)
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


def create_job(
    *, business_date: date | None = None, actor, advance_business_date: bool = False
) -> Job:
    from loans.exceptions import InvalidRequestError, field_error

    business_date = business_date or get_business_date()
    if business_date > get_business_date():
        raise InvalidRequestError(
            f"The business date to close, {business_date}, is after the business date.",
            code="future_date",
            errors=[field_error("businessDate", "After the business date.", "future_date")],
        )
    job = Job.objects.create(
        kind=JobKind.CLOSE_OF_BUSINESS,
        business_date=business_date,
        advance_business_date=advance_business_date,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    record_event(
        loan=None,
        command="run_close_of_business",
        actor=actor,
        as_of=business_date,
        input={"businessDate": business_date},
        result={"jobId": job.pk},
    )
    return job


def batches(ids: list[int], size: int | None = None) -> list[list[int]]:
    size = size or settings.COB_BATCH_SIZE
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def start_job(job_id: int) -> list[int]:
    """QUEUED -> RUNNING with the loans to close counted in ``total``. A job that is not
    QUEUED (a message delivered twice) starts nothing."""
    job = Job.objects.get(pk=job_id)
    ids = loans_to_close(job.business_date)
    started = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), total=len(ids)
    )
    if not started:
        return []
    if not ids:
        finish_job_if_complete(job_id)
    return ids


def fail_job(job_id: int, error: str) -> None:
    Job.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        status=JobStatus.FAILED, error=error[:5000], finished_at=timezone.now()
    )


def finish_job_if_complete(job_id: int) -> bool:
    """End the job when every loan is counted: DONE, or FAILED when some loan failed. Exactly
    one caller wins (a conditional UPDATE); the nightly run then moves the business date on."""
    ended = Job.objects.filter(
        pk=job_id, status=JobStatus.RUNNING, total__lte=F("done") + F("failed")
    ).update(
        status=Case(
            When(failed__gt=0, then=Value(JobStatus.FAILED)), default=Value(JobStatus.DONE)
        ),
        finished_at=timezone.now(),
    )
    if not ended:
        return False
    job = Job.objects.get(pk=job_id)
    if job.advance_business_date and get_business_date() == job.business_date:
        set_business_date(
            new_date=job.business_date + DAY,
            actor=system_user(),
            reason=f"Close of business {job.business_date} (job {job.pk}) ended",
        )
    return True


def _count_query(*, job_id, done, failed):
    # Least(): a batch delivered twice can never count past the total.
    return update_query(
        Job.objects.filter(pk=job_id),
        done=Least(F("done") + done, F("total") - F("failed") - failed),
        failed=F("failed") + failed,
    )


_COUNT = CompiledRead(_count_query, job_id=-918_273_644, done=-918_273_643, failed=-918_273_642)


def _count(job_id: int, *, done: int = 0, failed: int = 0) -> None:
    _COUNT.execute(job_id=job_id, done=done, failed=failed)


def close_loan_for_job(job: Job, loan_id: int, actor, last_closed=_UNREAD) -> bool:
    """Close one loan for a job and count it. Returns False when it failed (recorded).

    The count of a loan this job closes is written in the transaction of its last day, so a
    worker killed at any point neither loses nor doubles it; a loan found closed already is
    counted unless this job's own snapshot says an earlier delivery counted it."""
    try:
        days = close_business_day_for_loan(
            loan=loan_id,
            business_date=job.business_date,
            actor=actor,
            job_id=job.pk,
            last_closed=last_closed,
        )
    except Exception as exc:  # noqa: BLE001 - any failure of one loan is recorded, others go on
        _record_failure(job, loan_id, exc)
        return False
    if not any(d.business_date == job.business_date for d in days):
        counted = LoanDailySnapshot.objects.filter(
            loan_id=loan_id, business_date=job.business_date, job_id=job.pk
        ).exists()
        if not counted:
            _count(job.pk, done=1)
    return True


def _failed_day(loan_id: int, business_date: date) -> date:
    """The day a failed loan stopped on: the one after its last closed day."""
    row = Loan.objects.filter(pk=loan_id).only("last_closed_business_date").first()
    if row and row.last_closed_business_date:
        return row.last_closed_business_date + DAY
    return business_date


def _record_failure(job: Job, loan_id: int, exc: Exception) -> None:
    failed_day = _failed_day(loan_id, job.business_date)
    _, created = JobFailure.objects.get_or_create(
        job=job,
        loan_id=loan_id,
        defaults={"business_date": failed_day, "error": f"{type(exc).__name__}: {exc}"[:5000]},
    )
    if created:
        _count(job.pk, failed=1)


def close_batch(*, job_id: int, loan_ids: list[int], actor=None) -> tuple[int, int]:
    """Close a batch of loans for a job; the batch that completes the count ends the job."""
    job = Job.objects.get(pk=job_id)
    actor = actor or system_user()
    done = failed = 0
    last_closed = dict(
        Loan.objects.filter(pk__in=loan_ids).values_list("id", "last_closed_business_date")
    )
    with asynchronous_commit():  # each loan-day still atomic; see its docstring
        for loan_id in loan_ids:
            hint = last_closed.get(loan_id, _UNREAD)  # a loan gone since: its close says so
            if close_loan_for_job(job, loan_id, actor, last_closed=hint):
                done += 1
            else:
                failed += 1
    finish_job_if_complete(job_id)  # the job's end commits synchronously: flushes every loan-day
    return done, failed


def close_business_day(
    *,
    business_date: date | None = None,
    actor,
    advance_business_date: bool = False,
    batch_size: int | None = None,
) -> Job:
    """The whole close of business in this process (no Celery): a job, its batches, the end."""
    job = create_job(
        business_date=business_date, actor=actor, advance_business_date=advance_business_date
    )
    for batch in batches(start_job(job.pk), batch_size):
        close_batch(job_id=job.pk, loan_ids=batch, actor=actor)
    job.refresh_from_db()
    return job


class JobFailureNotFoundError(NotFoundError):
    default_code = "job_failure_not_found"


class FailureAlreadyRetriedError(ConflictError):
    default_code = "failure_already_retried"


class RetryFailedError(ConflictError):
    """The loan failed again: its failure row now holds the new error (409)."""

    default_code = "close_of_business_failed_again"


def retry_failed_loan(*, failure_id: int, actor) -> JobFailure:
    """Close a failed loan of a job again (the Jobs page's retry button and action), through
    the same per-loan close: every missing day up to the job's business date, each in its own
    transaction under the loan row lock. On success the failure is marked retried, the job's
    counts move from failed to done (a FAILED job with no failure left is DONE) and the retry
    is in the loan's audit trail. A loan that fails again keeps its failure, with the new
    error and day (``RetryFailedError``, 409); an already retried failure is 409."""
    failure = JobFailure.objects.select_related("job").filter(pk=failure_id).first()
    if failure is None:
        raise JobFailureNotFoundError(f"Failed loan {failure_id} of a job was not found.")
    if failure.retried_at is not None:
        raise FailureAlreadyRetriedError(
            f"Loan {failure.loan_id} was closed again already "
            f"({timezone.localtime(failure.retried_at):%Y-%m-%d %H:%M})."
        )
    job = failure.job
    try:
        close_business_day_for_loan(
            loan=failure.loan_id, business_date=job.business_date, actor=actor
        )
    except Exception as exc:  # noqa: BLE001 - recorded on the failure and reported
        day = _failed_day(failure.loan_id, job.business_date)
        error = f"{type(exc).__name__}: {exc}"[:5000]
        JobFailure.objects.filter(pk=failure.pk).update(business_date=day, error=error)
        raise RetryFailedError(f"Loan {failure.loan_id} failed again on {day}: {error}")
    with transaction.atomic():
        loan = lock_loan(failure.loan_id)
        updated = JobFailure.objects.filter(pk=failure.pk, retried_at__isnull=True).update(
            retried_at=timezone.now()
        )
        if updated:
            Job.objects.filter(pk=job.pk).update(failed=F("failed") - 1, done=F("done") + 1)
            Job.objects.filter(pk=job.pk, status=JobStatus.FAILED, failed=0, error="").update(
                status=JobStatus.DONE
            )
            record_event(
                loan=loan,
                command="retry_close_of_business",
                actor=actor,
                as_of=job.business_date,
                reason=f"Retry of the failed close of business of job {job.pk}",
                input={"jobId": job.pk, "failureId": failure.pk},
                result={"lastClosedBusinessDate": loan.last_closed_business_date},
            )
    failure.refresh_from_db()
    return failure


__all__ = [
    "close_batch",
    "close_business_day",
    "close_business_day_for_loan",
    "close_loan_day",
    "create_job",
    "FailureAlreadyRetriedError",
    "JobFailureNotFoundError",
    "RetryFailedError",
    "retry_failed_loan",
    "start_job",
]
