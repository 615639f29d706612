"""Admin for the payoff (DESIGN §7, §9): the payoff quote page (the business date and the next
10 days), the payoff command page and the credit balance refund page, each a per-loan page in
the admin's look with its button on the loan page. The figures come from
``selectors.payoff_quotes`` and the commands are the services; nothing is computed here.

Imported by ``loans.admin`` (which registers it on the loan page)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import PermissionDenied

from loans import selectors, services
from loans.admin import (
    LoanButton,
    admin_url,
    loan_perm,
    register_loan_button,
    register_loan_view,
)
from loans.admin_messages import show_error
from loans.exceptions import DomainError
from loans.formatting import words
from loans.models import Loan, LoanStatus

QUOTE_DAYS = 10


class MoneyCommandForm(forms.Form):
    transaction_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    external_id = forms.CharField(max_length=100, required=False, label="External id")
    note = forms.CharField(max_length=500, required=False)


def _quote_or_message(model_admin, request, loan: Loan, on):
    try:
        return selectors.payoff_quotes(loan, on=on, days=QUOTE_DAYS)
    except DomainError as exc:
        show_error(request, exc)
        return None


def payoff_quote_view(model_admin, request, loan: Loan):
    """The payoff on the business date and each of the next 10 days."""
    if not (loan_perm(request, "view_loan") or loan_perm(request, "post_transaction")):
        raise PermissionDenied
    as_of = selectors.get_business_date()
    quote = _quote_or_message(model_admin, request, loan, as_of)
    if quote is None:
        return model_admin.back_to_loan(loan)
    return model_admin.render_command(
        request,
        loan,
        "admin/loans/loan/payoff_quote.html",
        {
            "title": f"Payoff quote for {loan}",
            "quote": quote,
            "as_of": as_of,
            "can_pay_off": _can_pay_off(request, loan) and quote.quotes[0].total > 0,
            "payoff_url": admin_url("post_payoff", loan),
        },
    )


def _money_command_page(model_admin, request, loan, *, command, title, intro, submit, initial):
    """The per-loan page of a money command: a form, the service, a message, the loan page."""
    if not loan_perm(request, "post_transaction"):
        raise PermissionDenied
    as_of = selectors.get_business_date()
    if request.method == "POST":
        form = MoneyCommandForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                tx = command(
                    loan=loan,
                    on=data["transaction_date"],
                    amount=data["amount"],
                    external_id=data["external_id"] or None,
                    note=data["note"],
                    actor=request.user,
                    as_of=as_of,
                )
            except DomainError as exc:
                show_error(request, exc, form=form)
            else:
                loan.refresh_from_db()
                model_admin.message_user(
                    request,
                    f"{tx.get_type_display()} of {tx.amount:,} on {tx.date:%Y-%m-%d} posted; "
                    f"the loan is {words(loan.status)}.",
                )
                return model_admin.back_to_loan(loan)
    else:
        form = MoneyCommandForm(initial={"transaction_date": as_of, **initial})
    return model_admin.render_command(
        request,
        loan,
        "admin/loans/loan/money_command.html",
        {
            "title": title,
            "intro": intro,
            "form": form,
            "form_id": f"{command.__name__.replace('_', '-')}-form",
            "submit_label": submit,
            "quote_url": admin_url("payoff_quote", loan),
            "as_of": as_of,
        },
    )


def post_payoff_view(model_admin, request, loan: Loan):
    if not loan_perm(request, "post_transaction"):
        raise PermissionDenied
    as_of = selectors.get_business_date()
    quote = _quote_or_message(model_admin, request, loan, as_of)
    if quote is None:
        return model_admin.back_to_loan(loan)
    today = quote.quotes[0]
    return _money_command_page(
        model_admin,
        request,
        loan,
        command=services.post_payoff,
        title=f"Pay off {loan}",
        intro=(
            f"The payoff on {as_of:%Y-%m-%d} is {today.total:,} (principal {today.principal:,}, "
            f"interest {today.interest:,}, fees {today.fees:,}). The amount must be the "
            "payoff total for the date; the loan is then closed and interest not yet earned "
            "is dropped."
        ),
        submit="Post payoff",
        initial={"amount": today.total},
    )


def post_credit_balance_refund_view(model_admin, request, loan: Loan):
    credit = selectors.credit_balance(loan)
    return _money_command_page(
        model_admin,
        request,
        loan,
        command=services.post_credit_balance_refund,
        title=f"Refund the credit balance of {loan}",
        intro=(
            f"The credit balance is {credit:,}: what the borrower paid beyond everything owed. "
            "Refund at most that; refunding all of it closes the loan."
        ),
        submit="Refund",
        initial={"amount": credit},
    )


def _can_pay_off(request, loan: Loan) -> bool:
    return (
        loan.status == LoanStatus.ACTIVE
        and not loan.modification_in_progress
        and loan_perm(request, "post_transaction")
    )


def payoff_quote_button(request, loan: Loan):
    if loan.status == LoanStatus.PENDING:
        return None
    return LoanButton("Payoff quote", admin_url("payoff_quote", loan))


def payoff_button(request, loan: Loan):
    if _can_pay_off(request, loan):
        return LoanButton("Pay off", admin_url("post_payoff", loan))
    return None


def refund_button(request, loan: Loan):
    if (
        loan.status != LoanStatus.PENDING
        and loan_perm(request, "post_transaction")
        and selectors.credit_balance(loan) > 0
    ):
        return LoanButton("Refund credit balance", admin_url("credit_balance_refund", loan))
    return None


register_loan_view("payoff-quote", payoff_quote_view, "payoff_quote")
register_loan_view("payoff", post_payoff_view, "post_payoff")
register_loan_view(
    "credit-balance-refund", post_credit_balance_refund_view, "credit_balance_refund"
)
register_loan_button(payoff_quote_button)
register_loan_button(payoff_button)
register_loan_button(refund_button)
