"""The anchor of the loan detail benchmark: ``GET /loans/{id}?associations=all``'s JSON written
by hand (plain Django view, ``values_list`` rows, f-strings), authenticated the same way (the
API's authentication classes; 401 without a user). ``bench_detail`` checks that both return the
same JSON before it times them."""

from __future__ import annotations

from datetime import UTC

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings

from loans import ledger, selectors
from loans.models import Loan, LoanSetup, Schedule, SchedulePeriod, Transaction, bucket_for


def _authenticate(request):
    drf_request = Request(request)
    for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        try:
            result = cls().authenticate(drf_request)
        except exceptions.AuthenticationFailed:
            return None
        if result is not None:
            return result[0]
    return None


def _money(value):
    return None if value is None else f"{value:.2f}"


def _date(value):
    return None if value is None else value.isoformat()


def _datetime(value):
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _term(value):
    if value == value.to_integral_value():
        return str(value.quantize(1))
    return str(value.normalize())


def hand_detail(request, loan_id):
    user = _authenticate(request)
    if user is None or not user.is_authenticated:
        return JsonResponse({"code": "not_authenticated"}, status=401)
    loan = Loan.objects.select_related("borrower", "setup").get(pk=loan_id)
    as_of = selectors.get_business_date()
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    periods = [
        ledger.PeriodState(
            period=r[0],
            from_date=r[1],
            due_date=r[2],
            principal_due=r[3],
            interest_due=r[4],
            fees_due=r[5],
            principal_paid=r[6],
            interest_paid=r[7],
            fees_paid=r[8],
            balance_after=r[9],
            complete=r[10],
            obligations_met_on_date=r[11],
            frozen=r[12],
        )
        for r in SchedulePeriod.objects.filter(schedule=schedule)
        .order_by("period")
        .values_list(
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
            "frozen",
        )
    ]
    # the figures themselves (payoff today replays the history) come from the same selector
    s = selectors.loan_summary(loan, as_of=as_of, schedule=schedule, periods=periods)
    b, st = loan.borrower, loan.setup
    payload = {
        "id": loan.pk,
        "externalId": loan.external_id,
        "displayId": loan.display_id,
        "borrower": {
            "id": b.pk,
            "externalId": b.external_id,
            "firstName": b.first_name,
            "lastName": b.last_name,
            "email": b.email,
            "phone": b.phone,
            "timezone": b.timezone,
            "doNotCall": b.do_not_call,
            "doNotEmail": b.do_not_email,
            "doNotSms": b.do_not_sms,
        },
        "status": loan.status,
        "subStatus": loan.sub_status,
        "chargedOff": loan.charged_off,
        "scheduleEngine": loan.schedule_engine,
        "servicingStatus": loan.servicing_status,
        "stopServicingReason": loan.stop_servicing_reason,
        "modificationInProgress": loan.modification_in_progress,
        "modTotal": loan.mod_total,
        "delinquencyBucket": loan.delinquency_bucket,
        "lastClosedBusinessDate": _date(loan.last_closed_business_date),
        "setupId": loan.setup_id,
        "setup": _setup(st),
        "createdAt": _datetime(loan.created_at),
        "summary": {
            "principalOutstanding": _money(s.principal_outstanding),
            "interestOutstanding": _money(s.interest_outstanding),
            "feesOutstanding": _money(s.fees_outstanding),
            "totalOutstanding": _money(s.total_outstanding),
            "principalPaid": _money(s.principal_paid),
            "interestPaid": _money(s.interest_paid),
            "feesPaid": _money(s.fees_paid),
            "nextDueDate": _date(s.next_due_date),
            "amountPastDue": _money(s.amount_past_due),
            "daysPastDue": s.days_past_due,
            "delinquencyBucket": bucket_for(s.days_past_due),
            "creditBalance": _money(s.credit_balance),
            "payoffToday": _money(s.payoff_today),
        },
        "repaymentSchedule": {
            "version": schedule.version,
            "reason": schedule.reason,
            "isCurrent": schedule.is_current,
            "setupId": schedule.setup_id,
            "note": schedule.note,
            "createdAt": _datetime(schedule.created_at),
            "periods": [_period(p) for p in periods],
        },
        "transactions": [
            {
                "id": t[0],
                "loanId": t[1],
                "externalId": t[2],
                "type": t[3],
                "date": t[4].isoformat(),
                "amount": _money(t[5]),
                "principalPortion": _money(t[6]),
                "interestPortion": _money(t[7]),
                "feesPortion": _money(t[8]),
                "overpaymentPortion": _money(t[17]),
                "note": t[9],
                "reversed": t[10],
                "reversedOn": _date(t[11]),
                "reversalExternalId": t[12],
                "reversalNote": t[13],
                "reversedByModificationId": t[14],
                "createdBy": t[15],
                "createdAt": _datetime(t[16]),
            }
            for t in Transaction.objects.filter(loan=loan)
            .order_by("date", "id")
            .values_list(
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
        ],
    }
    return JsonResponse(payload)


def _setup(st: LoanSetup) -> dict:
    return {
        "setupId": st.pk,
        "loanId": st.loan_id,
        "loanAmount": _money(st.loan_amount),
        "loanRate": f"{st.loan_rate:.4f}",
        "loanTerm": _term(st.loan_term),
        "paymentFrequency": st.payment_frequency,
        "contractDate": st.contract_date.isoformat(),
        "firstPaymentDate": st.first_payment_date.isoformat(),
        "payment": _money(st.payment),
        "paymentIsGiven": st.payment_is_given,
        "calcType": st.calc_type,
        "daysInYear": st.days_in_year,
        "roundingMode": st.rounding_mode,
        "terminationInterest": st.termination_interest,
        "interestRecalculation": st.interest_recalculation,
        "lateFeeAmount": _money(st.late_fee_amount),
        "lateFeeGraceDays": st.late_fee_grace_days,
        "modId": st.mod_id,
        "active": st.active,
        "createdAt": _datetime(st.created_at),
        "activatedAt": _datetime(st.activated_at),
    }


def _period(p: ledger.PeriodState) -> dict:
    total_due, total_paid = p.total_due, p.total_paid
    return {
        "period": p.period,
        "fromDate": p.from_date.isoformat(),
        "dueDate": p.due_date.isoformat(),
        "principalDue": _money(p.principal_due),
        "principalPaid": _money(p.principal_paid),
        "principalOutstanding": _money(p.principal_due - p.principal_paid),
        "interestDue": _money(p.interest_due),
        "interestPaid": _money(p.interest_paid),
        "interestOutstanding": _money(p.interest_due - p.interest_paid),
        "feesDue": _money(p.fees_due),
        "feesPaid": _money(p.fees_paid),
        "feesOutstanding": _money(p.fees_due - p.fees_paid),
        "totalDue": _money(total_due),
        "totalPaid": _money(total_paid),
        "totalOutstanding": _money(total_due - total_paid),
        "complete": p.complete,
        "obligationsMetOnDate": _date(p.obligations_met_on_date),
        "balanceAfter": _money(p.balance_after),
        "historical": p.frozen,
    }
