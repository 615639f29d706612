"""Admin for contract termination and its undo (seed 002): actions on selected loans and
per-loan pages. Each confirmation page previews what will change (computed read-only by the
selectors' preview functions) before the command runs; the command itself is the service.

Imported by ``loans.admin`` (which registers it on the loan page)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from loans import selectors, services
from loans.admin import (
    LoanAdmin,
    LoanButton,
    admin_url,
    loan_perm,
    register_loan_button,
    register_loan_view,
)
from loans.admin_messages import message_for, show_error
from loans.exceptions import DomainError
from loans.models import Loan


class TerminationNoteForm(forms.Form):
    note = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Why (e.g. the merchant's case id); kept on the transaction and the audit trail.",
    )
    business_date = forms.DateField(widget=forms.HiddenInput)

    def full_clean(self):
        """The hidden business date's refusal would be rendered nowhere (the pages show each
        visible field's errors and the form's own): say it as the form's, so a missing or
        unreadable one is a message, not a page shown again without a word."""
        super().full_clean()
        if self.is_bound and "business_date" in self.errors:
            self.add_error(
                None,
                "The page's business date is missing or unreadable; review the figures and "
                "confirm again.",
            )


class TerminateContractForm(TerminationNoteForm):
    external_id = forms.CharField(max_length=100, required=False, label="External id")


class UndoContractTerminationForm(TerminationNoteForm):
    reversal_external_id = forms.CharField(
        max_length=100, required=False, label="Reversal external id"
    )


def _stale_business_date(form, as_of) -> bool:
    """The preview was computed on another business date: show it again, change nothing."""
    if form.cleaned_data["business_date"] != as_of:
        form.add_error(
            None,
            f"The business date changed to {as_of:%Y-%m-%d} since the preview; review the "
            "new figures and confirm again.",
        )
        return True
    return False


def _terminated_message(result) -> str:
    tx = result.transaction
    return (
        f"{result.loan}: contract terminated on {tx.date:%Y-%m-%d}. Contract termination "
        f"transaction {tx.amount} (principal {tx.principal_portion}, interest "
        f"{tx.interest_portion}, fees {tx.fees_portion})."
    )


def _undone_message(result) -> str:
    return (
        f"{result.loan}: contract termination undone; transaction {result.transaction.pk} "
        "reversed and the schedule restored."
    )


def _run_for_each(modeladmin, request, loans, command, success_message) -> None:
    """Run ``command(loan)`` on each loan: one loan's failure does not stop the others, and
    each loan gets its own message."""
    for loan in loans:
        try:
            result = command(loan)
        except DomainError as exc:
            level, text = message_for(exc)
            modeladmin.message_user(request, f"{loan}: not done. {text}", level)
        else:
            modeladmin.message_user(request, success_message(result), messages.SUCCESS)


def _action_page(modeladmin, request, loans, *, template, title, action, form, previews, as_of):
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(
        request,
        template,
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": modeladmin.model._meta,
            "base_template": "admin/loans/loan/action_base.html",
            "queryset": loans,
            "previews": previews,
            "form": form,
            "as_of": as_of,
            "any_allowed": any(p.allowed for p in previews),
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": modeladmin.media,
        },
    )


def _termination_action(modeladmin, request, queryset, *, command, preview, message, name, title):
    """Django's delete_selected pattern: the first post renders the confirmation page with the
    preview of each loan, the second (``post=yes``) runs ``command`` on each loan."""
    as_of = selectors.get_business_date()
    loans = list(queryset.select_related("borrower", "setup").order_by("pk"))
    form = TerminationNoteForm(initial={"business_date": as_of})
    if request.POST.get("post") == "yes":
        form = TerminationNoteForm(request.POST)
        if form.is_valid() and not _stale_business_date(form, as_of):
            note = form.cleaned_data["note"]
            _run_for_each(
                modeladmin,
                request,
                loans,
                lambda loan: command(loan=loan, actor=request.user, note=note, as_of=as_of),
                message,
            )
            return None
    return _action_page(
        modeladmin,
        request,
        loans,
        template=f"admin/loans/loan/{name}_confirmation.html",
        title=title,
        action=name,
        form=form,
        as_of=as_of,
        previews=[preview(loan, as_of=as_of) for loan in loans],
    )


@admin.action(description="Terminate contract", permissions=["terminate_contract"])
def terminate_contract(modeladmin, request, queryset):
    return _termination_action(
        modeladmin,
        request,
        queryset,
        command=services.terminate_contract,
        preview=selectors.preview_contract_termination,
        message=_terminated_message,
        name="terminate_contract",
        title="Terminate contracts",
    )


@admin.action(description="Undo contract termination", permissions=["terminate_contract"])
def undo_contract_termination(modeladmin, request, queryset):
    return _termination_action(
        modeladmin,
        request,
        queryset,
        command=services.undo_contract_termination,
        preview=selectors.preview_undo_contract_termination,
        message=_undone_message,
        name="undo_contract_termination",
        title="Undo contract terminations",
    )


LoanAdmin.actions += [terminate_contract, undo_contract_termination]


def _termination_page(
    model_admin: LoanAdmin,
    request,
    loan: Loan,
    *,
    form_class,
    run,
    preview,
    message,
    template,
    title,
):
    """The per-loan page of a termination command: preview on GET; on POST re-check the
    business date the preview was made for, run the command, report."""
    if not loan_perm(request, "terminate_contract"):
        raise PermissionDenied
    as_of = selectors.get_business_date()
    form = form_class(initial={"business_date": as_of})
    if request.method == "POST":
        form = form_class(request.POST)
        if form.is_valid() and not _stale_business_date(form, as_of):
            try:
                result = run(form.cleaned_data, as_of)
            except DomainError as exc:
                show_error(request, exc, form=form)
            else:
                model_admin.message_user(request, message(result), messages.SUCCESS)
                return model_admin.back_to_loan(loan)
    shown = preview(loan, as_of=as_of)
    return model_admin.render_command(
        request,
        loan,
        template,
        {
            "title": f"{title} {loan}",
            "base_template": "admin/loans/loan/command_base.html",
            "form": form,
            "as_of": as_of,
            "previews": [shown],
            "any_allowed": shown.allowed,
            "single": True,
        },
    )


def terminate_contract_view(model_admin: LoanAdmin, request, loan: Loan):
    return _termination_page(
        model_admin,
        request,
        loan,
        form_class=TerminateContractForm,
        run=lambda data, as_of: services.terminate_contract(
            loan=loan,
            actor=request.user,
            note=data["note"],
            external_id=data["external_id"] or None,
            as_of=as_of,
        ),
        preview=selectors.preview_contract_termination,
        message=_terminated_message,
        template="admin/loans/loan/terminate_contract_confirmation.html",
        title="Terminate the contract of",
    )


def undo_contract_termination_view(model_admin: LoanAdmin, request, loan: Loan):
    return _termination_page(
        model_admin,
        request,
        loan,
        form_class=UndoContractTerminationForm,
        run=lambda data, as_of: services.undo_contract_termination(
            loan=loan,
            actor=request.user,
            note=data["note"],
            reversal_external_id=data["reversal_external_id"] or None,
            as_of=as_of,
        ),
        preview=selectors.preview_undo_contract_termination,
        message=_undone_message,
        template="admin/loans/loan/undo_contract_termination_confirmation.html",
        title="Undo the contract termination of",
    )


def termination_button(request, loan: Loan) -> LoanButton | None:
    """The button of the command that would run: the same refusal checks as the commands."""
    if not loan_perm(request, "terminate_contract"):
        return None
    if loan.is_terminated:
        if selectors.undo_termination_state(loan)[1]:
            return None
        return LoanButton("Undo termination", admin_url("undo_contract_termination", loan))
    if selectors.termination_refusals(loan, as_of=selectors.get_business_date()):
        return None
    return LoanButton("Terminate contract", admin_url("terminate_contract", loan), "danger")


register_loan_view("terminate-contract", terminate_contract_view, "terminate_contract")
register_loan_view(
    "undo-contract-termination", undo_contract_termination_view, "undo_contract_termination"
)
register_loan_button(termination_button)
