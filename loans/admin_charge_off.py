"""Admin for charge-off and its undo (DESIGN §7, §12): the per-loan pages (preview, then
confirm), the loan page's buttons and the actions on selected loans. The previews are
``loans.charge_off``'s, the commands ``loans.services.charge_off`` / ``undo_charge_off``; the
page re-checks the business date the preview was made for before it runs the command.

Imported by ``loans.admin`` (which registers it on the loan page)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from loans import charge_off, selectors, services
from loans.admin import (
    LoanAdmin,
    LoanButton,
    admin_url,
    loan_perm,
    register_loan_button,
    register_loan_view,
)
from loans.admin_messages import show_error
from loans.admin_termination import (
    TerminationNoteForm,
    _action_page,
    _run_for_each,
    _stale_business_date,
)
from loans.exceptions import DomainError
from loans.models import Loan

TEMPLATE = "admin/loans/loan/charge_off_confirmation.html"


class ChargeOffForm(TerminationNoteForm):
    external_id = forms.CharField(max_length=100, required=False, label="External id")
    reason = forms.CharField(
        max_length=100, required=False, help_text="Why it is charged off (e.g. BANKRUPTCY)."
    )


class UndoChargeOffForm(TerminationNoteForm):
    reversal_external_id = forms.CharField(
        max_length=100, required=False, label="Reversal external id"
    )


def _charged_off_message(result) -> str:
    tx = result.transaction
    return (
        f"{result.loan}: charged off on {tx.date:%Y-%m-%d}. Charge-off transaction {tx.amount} "
        f"(principal {tx.principal_portion}, interest {tx.interest_portion}, fees "
        f"{tx.fees_portion})."
    )


def _undone_message(result) -> str:
    return (
        f"{result.loan}: charge-off undone; transaction {result.transaction.pk} reversed and the "
        "schedule restored."
    )


def _has_charge_off_permission(self, request, obj=None) -> bool:
    return loan_perm(request, "charge_off")


LoanAdmin.has_charge_off_permission = _has_charge_off_permission


def _charge_off_action(modeladmin, request, queryset, *, undo: bool):
    """Django's delete_selected pattern: the first post shows each loan's preview, the second
    (``post=yes``) runs the command on each loan; one loan's refusal does not stop the others."""
    as_of = selectors.get_business_date()
    loans = list(queryset.select_related("borrower", "setup").order_by("pk"))
    form = TerminationNoteForm(initial={"business_date": as_of})
    if request.POST.get("post") == "yes":
        form = TerminationNoteForm(request.POST)
        if form.is_valid() and not _stale_business_date(form, as_of):
            note = form.cleaned_data["note"]
            command = services.undo_charge_off if undo else services.charge_off
            _run_for_each(
                modeladmin,
                request,
                loans,
                lambda loan: command(loan, actor=request.user, note=note, as_of=as_of),
                _undone_message if undo else _charged_off_message,
            )
            return None
    preview = charge_off.preview_undo_charge_off if undo else charge_off.preview_charge_off
    page = _action_page(
        modeladmin,
        request,
        loans,
        template=TEMPLATE,
        title="Undo charge-offs" if undo else "Charge off loans",
        action="undo_charge_off" if undo else "charge_off",
        form=form,
        as_of=as_of,
        previews=[preview(loan, as_of=as_of) for loan in loans],
    )
    page.context_data["undo"] = undo
    return page


@admin.action(description="Charge off", permissions=["charge_off"])
def charge_off_selected(modeladmin, request, queryset):
    return _charge_off_action(modeladmin, request, queryset, undo=False)


@admin.action(description="Undo charge-off", permissions=["charge_off"])
def undo_charge_off_selected(modeladmin, request, queryset):
    return _charge_off_action(modeladmin, request, queryset, undo=True)


charge_off_selected.__name__ = "charge_off"
undo_charge_off_selected.__name__ = "undo_charge_off"
LoanAdmin.actions += [charge_off_selected, undo_charge_off_selected]


def _charge_off_page(model_admin: LoanAdmin, request, loan: Loan, *, undo: bool):
    """The per-loan page: the preview on GET; on POST re-check the business date, run, report."""
    if not loan_perm(request, "charge_off"):
        raise PermissionDenied
    as_of = selectors.get_business_date()
    form_class = UndoChargeOffForm if undo else ChargeOffForm
    form = form_class(initial={"business_date": as_of})
    if request.method == "POST":
        form = form_class(request.POST)
        if form.is_valid() and not _stale_business_date(form, as_of):
            data = form.cleaned_data
            try:
                if undo:
                    result = services.undo_charge_off(
                        loan,
                        actor=request.user,
                        note=data["note"],
                        reversal_external_id=data["reversal_external_id"] or None,
                        as_of=as_of,
                    )
                else:
                    result = services.charge_off(
                        loan,
                        actor=request.user,
                        note=data["note"],
                        external_id=data["external_id"] or None,
                        reason=data["reason"],
                        as_of=as_of,
                    )
            except DomainError as exc:
                show_error(request, exc, form=form)
            else:
                message = _undone_message if undo else _charged_off_message
                model_admin.message_user(request, message(result), messages.SUCCESS)
                return model_admin.back_to_loan(loan)
    preview = charge_off.preview_undo_charge_off if undo else charge_off.preview_charge_off
    shown = preview(loan, as_of=as_of)
    return model_admin.render_command(
        request,
        loan,
        TEMPLATE,
        {
            "title": f"{'Undo the charge-off of' if undo else 'Charge off'} {loan}",
            "base_template": "admin/loans/loan/command_base.html",
            "form": form,
            "as_of": as_of,
            "previews": [shown],
            "any_allowed": shown.allowed,
            "single": True,
            "undo": undo,
        },
    )


def charge_off_view(model_admin: LoanAdmin, request, loan: Loan):
    return _charge_off_page(model_admin, request, loan, undo=False)


def undo_charge_off_view(model_admin: LoanAdmin, request, loan: Loan):
    return _charge_off_page(model_admin, request, loan, undo=True)


def charge_off_button(request, loan: Loan) -> LoanButton | None:
    """The button of the command that would run: the same checks as the commands."""
    if not loan_perm(request, "charge_off"):
        return None
    if loan.charged_off:
        if charge_off.undo_charge_off_state(loan)[1]:
            return None
        return LoanButton("Undo charge-off", admin_url("undo_charge_off", loan))
    if charge_off.charge_off_refusals(loan, as_of=selectors.get_business_date()):
        return None
    return LoanButton("Charge off", admin_url("charge_off", loan), "danger")


register_loan_view("charge-off", charge_off_view, "charge_off")
register_loan_view("undo-charge-off", undo_charge_off_view, "undo_charge_off")
register_loan_button(charge_off_button)
