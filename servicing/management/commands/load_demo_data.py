"""Demo data for ``make run``: an admin user, the business date, borrowers and loans in every
state (seed 002's Baseline B among them), then the close of business for the business date
(DESIGN §10), so buckets, snapshots and lastClosedBusinessDate are there before the first
nightly run. Idempotent: loans are keyed by external id; a loan already closed for the date is
not closed again (no job is started when there is nothing to close)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from loans import services
from loans.models import Loan, TransactionType

DEMO_DATE = date(2026, 2, 18)


# The borrowers with due reminders live in three zones whose 08:00-21:00 contact windows
# (DESIGN §11) together cover every hour of the day, so whenever `make run` starts, some
# reminder goes out within a minute (all in New York deferred everything from 02:00 to 13:00 UTC).
DEMO_TIMEZONES = {
    "BASELINE-B": "Europe/London",
    "DEMO-PAST-DUE": "Asia/Tokyo",
}


def demo_loan(actor, external_id: str, first: str, last: str, engine: str = "DYNAMIC", **setup):
    existing = Loan.objects.filter(external_id=external_id).first()
    if existing:
        return existing, False
    loan = services.create_loan(
        actor=actor,
        external_id=external_id,
        schedule_engine=engine,
        setup=setup,
        borrower_data={
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}.{last.lower()}@example.com",
            "phone": "+15550100",
            "timezone": DEMO_TIMEZONES.get(external_id, "America/New_York"),
        },
    )
    return loan, True


BASELINE_B_REPAYMENTS = [
    (date(2026, 1, 10), "105.54"),
    (date(2026, 1, 24), "104.62"),
    (date(2026, 2, 7), "103.69"),
]


def activate_and_repay(loan, actor, repayments) -> None:
    """Activate on the demo date, then post ``(date, amount)`` repayments."""
    services.activate_loan(loan=loan, actor=actor, as_of=DEMO_DATE)
    for on, amount in repayments:
        services.post_transaction(
            loan=loan,
            type=TransactionType.REPAYMENT,
            on=on,
            amount=Decimal(amount),
            actor=actor,
            as_of=DEMO_DATE,
        )


class Command(BaseCommand):
    help = "Load demo borrowers and loans, and create an admin user."

    def add_arguments(self, parser):
        parser.add_argument("--admin-user", default="admin")
        parser.add_argument("--admin-password", default="admin-demo-pass")

    @transaction.atomic
    def handle(self, *args, admin_user, admin_password, **options):
        User = get_user_model()
        admin, created = User.objects.get_or_create(
            username=admin_user, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            admin.set_password(admin_password)
            admin.save()
        services.set_business_date(new_date=DEMO_DATE, actor=admin, reason="demo data")

        baseline, new = demo_loan(
            admin,
            "BASELINE-B",
            "Bea",
            "Baseline",
            loan_amount=Decimal("600.00"),
            loan_rate=Decimal("24"),
            loan_term=Decimal("6"),
            payment_frequency="BIWEEKLY",
            contract_date=date(2025, 12, 27),
            first_payment_date=date(2026, 1, 10),
            calc_type="EQUAL_PRINCIPAL",
        )
        if new:
            activate_and_repay(baseline, admin, BASELINE_B_REPAYMENTS)

        demo_loan(
            admin,
            "DEMO-PENDING",
            "Pat",
            "Pending",
            loan_amount=Decimal("5000.00"),
            loan_rate=Decimal("9.5"),
            loan_term=Decimal("24"),
            contract_date=date(2026, 2, 18),
            first_payment_date=date(2026, 3, 18),
        )

        active, new = demo_loan(
            admin,
            "DEMO-ACTIVE",
            "Alex",
            "Active",
            loan_amount=Decimal("10000.00"),
            loan_rate=Decimal("15"),
            loan_term=Decimal("60"),
            contract_date=date(2025, 6, 1),
            first_payment_date=date(2025, 7, 1),
        )
        if new:
            activate_and_repay(
                active, admin, [(date(2025, month, 1), "237.90") for month in range(7, 13)]
            )

        late, new = demo_loan(
            admin,
            "DEMO-PAST-DUE",
            "Lee",
            "Late",
            engine="STANDARD",
            loan_amount=Decimal("2400.00"),
            loan_rate=Decimal("18"),
            loan_term=Decimal("12"),
            contract_date=date(2025, 10, 15),
            first_payment_date=date(2025, 11, 15),
        )
        if new:
            activate_and_repay(late, admin, [(date(2025, 11, 15), "220.03")])

        paid, new = demo_loan(
            admin,
            "DEMO-CLOSED",
            "Cam",
            "Closed",
            loan_amount=Decimal("100.00"),
            loan_rate=Decimal("7"),
            loan_term=Decimal("6"),
            rounding_mode="HALF_EVEN",
            contract_date=date(2025, 8, 1),
            first_payment_date=date(2025, 9, 1),
        )
        if new:
            activate_and_repay(paid, admin, [(date(2026, 1, 15), "102.05")])

        terminated, new = demo_loan(
            admin,
            "DEMO-TERMINATED",
            "Tess",
            "Terminated",
            loan_amount=Decimal("600.00"),
            loan_rate=Decimal("24"),
            loan_term=Decimal("6"),
            payment_frequency="BIWEEKLY",
            contract_date=date(2025, 12, 27),
            first_payment_date=date(2026, 1, 10),
            calc_type="EQUAL_PRINCIPAL",
        )
        if new:  # Baseline B's twin, terminated on the demo date (seed 002): 305.54 due now
            activate_and_repay(terminated, admin, BASELINE_B_REPAYMENTS)
            services.terminate_contract(
                loan=terminated,
                actor=admin,
                note="Merchant cancelled order XYZ",
                external_id="CT-DEMO-0001",
                as_of=DEMO_DATE,
            )

        load_modified_loan(admin)
        load_recalculating_loan(admin)
        servicing_demo = load_servicing_demo(admin)
        load_not_serviced_loan(admin)
        closed = close_demo_date(admin)

        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded ({Loan.objects.count()} loans). Admin user: {admin_user} / "
                f"{admin_password if created else '(existing password)'}; business date "
                f"{DEMO_DATE}. {servicing_demo} {closed}"
            )
        )


def load_recalculating_loan(admin) -> None:
    """Interest recalculation (DESIGN §11): 1,200.00 at 12 %, 12 monthly from 2025-08-01; the
    first installment paid 11 days late (its overdue principal accrues for the second), the
    second paid early on 2025-09-25 (interest only to that day), then on time."""
    loan, new = demo_loan(
        admin,
        "DEMO-RECALC",
        "Rhea",
        "Recalc",
        loan_amount=Decimal("1200.00"),
        loan_rate=Decimal("12"),
        loan_term=Decimal("12"),
        contract_date=date(2025, 8, 1),
        first_payment_date=date(2025, 9, 1),
        termination_interest="ACCRUED_TO_DATE",
        interest_recalculation=True,
    )
    if new:
        late, early = date(2025, 9, 12), date(2025, 9, 25)
        on_time = [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]
        payment = str(loan.setup.payment)
        activate_and_repay(loan, admin, [(on, payment) for on in (late, early, *on_time)])


def load_modified_loan(admin) -> None:
    """A loan modified on 2025-07-15 (seed 004): 10,000.00 at 15 %, 60 monthly from 2025-01-01,
    six installments paid; a payment of 237.90 on 2025-07-20 kept, one of 100.00 on 2025-07-25
    reversed by the modification; the payment rolled to 250.00 with an exact term."""
    from modifications import services as modification_services

    loan, new = demo_loan(
        admin,
        "DEMO-MODIFIED",
        "Morgan",
        "Modified",
        loan_amount=Decimal("10000.00"),
        loan_rate=Decimal("15"),
        loan_term=Decimal("60"),
        contract_date=date(2025, 1, 1),
        first_payment_date=date(2025, 2, 1),
    )
    if not new:
        return
    activate_and_repay(loan, admin, [(date(2025, month, 1), "237.90") for month in range(2, 8)])
    kept = services.post_transaction(
        loan=loan,
        type=TransactionType.REPAYMENT,
        on=date(2025, 7, 20),
        amount=Decimal("237.90"),
        note="card",
        actor=admin,
        as_of=DEMO_DATE,
    )
    services.post_transaction(
        loan=loan,
        type=TransactionType.REPAYMENT,
        on=date(2025, 7, 25),
        amount=Decimal("100.00"),
        actor=admin,
        as_of=DEMO_DATE,
    )
    modification_services.create_modification(
        loan=loan,
        modification_date=date(2025, 7, 15),
        persistent_transactions={"payments": [str(kept.pk)]},
        note="demo: hardship modification",
        actor=admin,
        as_of=DEMO_DATE,
    )
    modification_services.roll_payment(
        loan=loan,
        amount=Decimal("250.00"),
        method=modification_services.ROLL_TERM_EXACT,
        actor=admin,
    )
    modification_services.activate_modification(loan=loan, actor=admin, as_of=DEMO_DATE)


def load_servicing_demo(admin) -> str:
    """Scheduled payments, calls, emails, SMS and communication schedules on a few ACTIVE loans.

    DEMO-ACTIVE gets exactly seed 000's mix, so cancelling its servicing reports 3 payments,
    1 + 1 + 1 schedules, 5 calls, 2 emails and 3 SMS: the call schedule generates 2 calls and 3
    more are one-off, the email schedule 1 email (+ 1 one-off), the SMS schedule 2 SMS
    (+ 1 one-off). Loans that already have scheduled items are left alone (idempotent).
    """
    from datetime import UTC, datetime, timedelta

    from servicing import services as servicing_services
    from servicing.models import ScheduledPayment

    def seed_000_mix(loan) -> None:
        for n, amount in enumerate(["237.90", "237.90", "237.90"]):
            servicing_services.schedule_payment(
                loan=loan,
                amount=Decimal(amount),
                scheduled_date=DEMO_DATE + timedelta(days=30 * n + 11),
                actor=admin,
                as_of=DEMO_DATE,
            )
        for channel, occurrences, one_off in [("CALL", 2, 3), ("EMAIL", 1, 1), ("SMS", 2, 1)]:
            servicing_services.create_communication_schedule(
                loan=loan,
                channel=channel,
                every_days=14,
                start_date=DEMO_DATE + timedelta(days=1),
                occurrences=occurrences,
                subject=f"Payment reminder ({channel.lower()})",
                body="Your next installment is due soon.",
                actor=admin,
                as_of=DEMO_DATE,
            )
            for n in range(one_off):
                servicing_services.schedule_communication(
                    loan=loan,
                    channel=channel,
                    scheduled_at=datetime(2026, 3, 2 + n, 15, 0, tzinfo=UTC),
                    subject="Courtesy contact",
                    body="Checking in about your loan.",
                    actor=admin,
                    as_of=DEMO_DATE,
                )

    seeded = []
    for external_id, mix in [
        ("DEMO-ACTIVE", "seed-000"),
        ("BASELINE-B", "light"),
        ("DEMO-PAST-DUE", "light"),
    ]:
        loan = Loan.objects.filter(external_id=external_id, status="ACTIVE").first()
        if loan is None or loan.servicing_status != "ACTIVE":
            continue
        if ScheduledPayment.objects.filter(loan=loan).exists():
            continue
        if mix == "seed-000":
            seed_000_mix(loan)
        else:
            servicing_services.schedule_payment(
                loan=loan,
                amount=Decimal("100.00"),
                scheduled_date=DEMO_DATE + timedelta(days=3),
                method="CARD",
                actor=admin,
                as_of=DEMO_DATE,
            )
            servicing_services.create_communication_schedule(
                loan=loan,
                channel="SMS",
                every_days=7,
                start_date=DEMO_DATE,
                end_date=DEMO_DATE + timedelta(days=28),
                subject="Reminder",
                body="Your payment is due.",
                actor=admin,
                as_of=DEMO_DATE,
            )
            servicing_services.schedule_communication(
                loan=loan,
                channel="EMAIL",
                scheduled_at=datetime(2026, 2, 20, 15, 0, tzinfo=UTC),
                subject="Statement",
                body="Your statement is ready.",
                actor=admin,
                as_of=DEMO_DATE,
            )
        seeded.append(external_id)
    return f"Scheduled items added to: {', '.join(seeded) or 'none (already there)'}."


def load_not_serviced_loan(admin) -> None:
    """A loan whose servicing was stopped (BANKRUPTCY): its scheduled payments are cancelled."""
    from servicing import services as servicing_services

    loan, new = demo_loan(
        admin,
        "DEMO-NOT-SERVICING",
        "Nico",
        "Stopped",
        loan_amount=Decimal("3000.00"),
        loan_rate=Decimal("19.9"),
        loan_term=Decimal("24"),
        contract_date=date(2025, 11, 1),
        first_payment_date=date(2025, 12, 1),
    )
    if not new:
        return
    activate_and_repay(loan, admin, [(date(2025, 12, 1), "152.54")])
    for month in (3, 4):
        servicing_services.schedule_payment(
            loan=loan,
            amount=Decimal("152.54"),
            scheduled_date=date(2026, month, 1),
            actor=admin,
            as_of=DEMO_DATE,
        )
    servicing_services.cancel_servicing(loan=loan, reason="BANKRUPTCY", actor=admin)


def close_demo_date(admin) -> str:
    """The close of business for the demo date through the service (DESIGN §10): delinquency
    buckets, one snapshot per open loan, lastClosedBusinessDate. Nothing to close (a second
    load): no job. A loan that fails stops the load (the demo data would be wrong)."""
    from servicing.close_of_business import close_business_day, loans_to_close

    if not loans_to_close(DEMO_DATE):
        return f"Close of business {DEMO_DATE}: already closed."
    job = close_business_day(business_date=DEMO_DATE, actor=admin)
    if job.failed:
        errors = "; ".join(
            f"loan {failure.loan_id}: {failure.error}" for failure in job.failures.all()
        )
        raise CommandError(f"Close of business {DEMO_DATE} failed for {job.failed}: {errors}")
    return f"Close of business {DEMO_DATE}: {job.done} loans closed (job {job.pk})."
