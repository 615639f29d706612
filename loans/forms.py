"""Admin forms of the loan core: input parsing only; the services validate the rest. A
``DomainError``'s field errors (API names, e.g. ``loanTerm``) are put back under the form field
they are about (``mark_fields``), and its page message names them by the form's labels
(``form_labels``; the message is ``loans.admin_messages.show_error``'s)."""

from __future__ import annotations

import zoneinfo
from decimal import Decimal

from django import forms

from loans.models import (
    BusinessDate,
    CalcType,
    DaysInYear,
    PaymentFrequency,
    RoundingMode,
    ScheduleEngine,
    TerminationInterest,
    Transaction,
)
from loans.terms import API_NAMES, MAX_GRACE_DAYS, business_date_problem

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
FORM_NAMES = {api: name for name, api in API_NAMES.items()} | {
    "borrower.firstName": "first_name",
    "borrower.lastName": "last_name",
    "borrower.email": "email",
    "borrower.phone": "phone",
    "borrower.timezone": "timezone",
    "borrowerId": "borrower_id",
    "externalId": "external_id",
    "reversalExternalId": "reversal_external_id",
    "scheduleEngine": "schedule_engine",
    "transactionDate": "transaction_date",
    "transactionAmount": "amount",
    "amount": "amount",
    "modificationDate": "modification_date",
}


def mark_fields(form: forms.Form, exc) -> None:
    """Put each field error of a command's refusal under the form field it is about (the page
    message, ``loans.admin_messages.show_error``, says the whole refusal)."""
    for error in getattr(exc, "errors", None) or []:
        name = FORM_NAMES.get(error.get("field"), error.get("field"))
        if name in form.fields and error.get("detail"):
            form.add_error(name, error["detail"])


def form_labels(form: forms.Form) -> dict[str, str]:
    """The form's labels by the API field names a ``DomainError`` uses."""
    names = {name: name for name in form.fields} | {
        api: name for api, name in FORM_NAMES.items() if name in form.fields
    }
    return {api: field_label(form, name) for api, name in names.items()}


def error_sentences(form: forms.Form) -> list[str]:
    """A form's errors as sentences that name each field by its label."""
    return [
        " ".join(errors) if name == "__all__" else f"{field_label(form, name)}: {' '.join(errors)}"
        for name, errors in form.errors.items()
    ]


def field_label(form: forms.Form, name: str) -> str:
    if name in form.fields:
        return str(form[name].label)
    return name.replace("_", " ").capitalize()


class SetupTermsForm(forms.Form):
    """The terms of a setup (a new loan's; the modification wizard's form derives from it)."""

    loan_amount = forms.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0.01"), label="Loan amount"
    )
    loan_rate = forms.DecimalField(
        max_digits=9, decimal_places=4, min_value=Decimal("0"), label="Rate (annual %)"
    )
    loan_term = forms.DecimalField(
        max_digits=9, decimal_places=4, min_value=Decimal("0.0001"), label="Term (installments)"
    )
    payment_frequency = forms.ChoiceField(
        choices=PaymentFrequency.choices, initial=PaymentFrequency.MONTHLY
    )
    contract_date = forms.DateField(widget=DATE_INPUT, help_text="The disbursement date.")
    first_payment_date = forms.DateField(widget=DATE_INPUT)
    payment = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="Leave blank to compute it from the terms.",
    )
    calc_type = forms.ChoiceField(choices=CalcType.choices, initial=CalcType.EQUAL_INSTALLMENTS)
    days_in_year = forms.ChoiceField(choices=DaysInYear.choices, initial=DaysInYear.FREQUENCY)
    rounding_mode = forms.ChoiceField(choices=RoundingMode.choices, initial=RoundingMode.HALF_UP)
    termination_interest = forms.ChoiceField(
        choices=TerminationInterest.choices, initial=TerminationInterest.ALL_OUTSTANDING
    )
    interest_recalculation = forms.BooleanField(
        required=False,
        label="Interest recalculation",
        help_text="Daily accrual on the actual outstanding principal (DYNAMIC loans only).",
    )
    late_fee_amount = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        label="Late fee",
        help_text="Charged once per installment still unpaid after the grace days. "
        "Leave both blank for no late fee.",
    )
    late_fee_grace_days = forms.IntegerField(
        min_value=0,
        max_value=MAX_GRACE_DAYS,
        required=False,
        label="Late fee grace (days)",
        help_text="Days after the due date; 0 charges it at the close of the due date.",
    )

    def changes(self) -> dict:
        return {
            name: self.cleaned_data[name]
            for name in SetupTermsForm.base_fields
            if name in self.fields
        }


TIMEZONES = sorted(zoneinfo.available_timezones())


class LoanCreateForm(SetupTermsForm):
    """A new borrower (or an existing one by id) and a PENDING loan with its terms."""

    borrower_id = forms.IntegerField(
        required=False,
        min_value=1,
        label="Existing borrower id",
        help_text="Leave blank to create the borrower below.",
    )
    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100, required=False)
    email = forms.EmailField(max_length=254, required=False)
    phone = forms.CharField(max_length=32, required=False)
    timezone = forms.ChoiceField(
        choices=[(tz, tz) for tz in TIMEZONES], initial="America/New_York", label="Time zone"
    )
    external_id = forms.CharField(
        max_length=100, required=False, label="External id", help_text="Generated when blank."
    )
    schedule_engine = forms.ChoiceField(
        choices=ScheduleEngine.choices, initial=ScheduleEngine.DYNAMIC
    )

    BORROWER_FIELDS = ["borrower_id", "first_name", "last_name", "email", "phone", "timezone"]
    LOAN_FIELDS = ["external_id", "schedule_engine"]

    def clean(self):
        data = super().clean()
        if not data.get("borrower_id"):
            for name in ("first_name", "last_name"):
                if not (data.get(name) or "").strip():
                    self.add_error(name, "Required for a new borrower (or give a borrower id).")
        return data

    def borrower_data(self) -> dict | None:
        if self.cleaned_data.get("borrower_id"):
            return None
        return {
            name: self.cleaned_data[name]
            for name in ("first_name", "last_name", "email", "phone", "timezone")
        }

    def fieldsets(self):
        terms = [name for name in SetupTermsForm.base_fields if name in self.fields]
        return [
            ("Borrower", [self[name] for name in self.BORROWER_FIELDS]),
            ("Loan", [self[name] for name in self.LOAN_FIELDS]),
            ("Terms", [self[name] for name in terms]),
        ]


class TransactionForm(forms.Form):
    transaction_date = forms.DateField(widget=DATE_INPUT)
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    external_id = forms.CharField(max_length=100, required=False, label="External id")
    note = forms.CharField(max_length=500, required=False)


class ReversalForm(forms.Form):
    note = forms.CharField(
        max_length=500,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Why the transaction is reversed; kept on it and in the audit trail.",
        error_messages={"required": "A note is required."},
    )
    reversal_external_id = forms.CharField(
        max_length=100, required=False, label="Reversal external id"
    )


class BusinessDateForm(forms.ModelForm):
    """The business date; moving it back before transactions already posted asks for a tick
    (commands would then refuse dates the ledger already holds as "in the future")."""

    confirm_backwards = forms.BooleanField(
        required=False,
        label="Yes, move it back before those transactions",
        help_text="Needed only when the new date is before transactions already posted.",
    )

    class Meta:
        model = BusinessDate
        fields = ["date"]
        widgets = {"date": DATE_INPUT}

    def clean(self):
        data = super().clean()
        new = data.get("date")
        problem = business_date_problem(new) if new else None
        if problem:
            self.add_error("date", problem)
            return data
        old = self.instance.date if self.instance.pk else None
        if new is None or old is None or new >= old:
            return data
        later = Transaction.objects.filter(date__gt=new, reversed=False)
        count = later.count()
        if count and not data.get("confirm_backwards"):
            latest = later.order_by("-date").values_list("date", flat=True).first()
            self.add_error(
                "confirm_backwards",
                f"Moving the business date back from {old:%Y-%m-%d} to {new:%Y-%m-%d}: "
                f"{count} transaction{' is' if count == 1 else 's are'} dated after it (the latest "
                f"on {latest:%Y-%m-%d}). Tick to confirm.",
            )
        return data
