"""Borrower-level stops in the admin (DESIGN §7, §12): "Cancel servicing" and "Cancel
communications" on selected borrowers, each with a confirmation page that counts, per loan,
what will be cancelled before the operator confirms (the same grouped counts as the loan
action's page). The second pass runs ``cancel_borrower_servicing`` /
``cancel_borrower_communications`` once per borrower: one borrower's refusal does not stop
the others, and each borrower gets its own message.

Imported by ``servicing.admin``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from loans.admin import BorrowerAdmin
from loans.admin_messages import message_for
from loans.exceptions import DomainError
from loans.formatting import plural
from loans.models import Loan, ServicingStatus
from servicing import services
from servicing.forms import CancelServicingForm
from servicing.selectors import CancelCounts, pending_counts

TEMPLATE = "admin/servicing/borrower_stop_confirmation.html"


def _has_cancel_servicing_permission(self, request, obj=None) -> bool:
    return request.user.has_perm("loans.cancel_servicing")


BorrowerAdmin.has_cancel_servicing_permission = _has_cancel_servicing_permission


def _describe(counts, *, payments: bool) -> str:
    schedules = (
        counts.cancelled_call_schedules
        + counts.cancelled_email_schedules
        + counts.cancelled_sms_schedules
    )
    text = (
        f"{plural(counts.cancelled_calls, 'call')}, {plural(counts.cancelled_emails, 'email')}, "
        f"{counts.cancelled_sms} SMS, {plural(schedules, 'schedule')}"
    )
    if payments:
        return f"{plural(counts.cancelled_scheduled_payments, 'payment')}, {text}"
    return text


def _confirmation(modeladmin, request, borrowers, *, communications: bool, form):
    """Each borrower with each of its loans and what would be cancelled (grouped counts: the
    number of queries does not grow with the loans)."""
    loans = list(
        Loan.objects.filter(borrower__in=borrowers).select_related("borrower").order_by("pk")
    )
    counts = pending_counts([loan.pk for loan in loans])
    by_borrower = {borrower.pk: [] for borrower in borrowers}
    for loan in loans:
        stopped = loan.servicing_status == ServicingStatus.NOT_SERVICING
        shown = counts[loan.pk]
        if communications:
            shown.cancelled_scheduled_payments = 0
        elif stopped:
            shown = CancelCounts()  # a stopped loan is left as it is
        by_borrower[loan.borrower_id].append({"loan": loan, "stopped": stopped, "counts": shown})
    action = "cancel_borrower_communications" if communications else "cancel_borrower_servicing"
    return TemplateResponse(
        request,
        TEMPLATE,
        {
            **modeladmin.admin_site.each_context(request),
            "title": (
                "Cancel communications of the selected borrowers"
                if communications
                else "Cancel servicing of the selected borrowers"
            ),
            "subtitle": None,
            "opts": modeladmin.model._meta,
            "borrowers": [{"borrower": b, "rows": by_borrower[b.pk]} for b in borrowers],
            "communications": communications,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": action,
            "media": modeladmin.media,
        },
    )


def _for_each_borrower(modeladmin, request, borrowers, command, describe) -> None:
    for borrower in borrowers:
        try:
            result = command(borrower)
        except DomainError as exc:
            level, text = message_for(exc)
            modeladmin.message_user(request, f"{borrower}: not done. {text}", level)
        else:
            modeladmin.message_user(request, describe(borrower, result), messages.SUCCESS)


@admin.action(
    description="Cancel servicing of the selected borrowers' loans",
    permissions=["cancel_servicing"],
)
def cancel_borrower_servicing(modeladmin, request, queryset):
    borrowers = list(queryset.order_by("pk"))
    form = CancelServicingForm(request.POST if request.POST.get("post") == "yes" else None)
    if form.is_bound and form.is_valid():
        reason = form.cleaned_data["reason"]
        _for_each_borrower(
            modeladmin,
            request,
            borrowers,
            lambda b: services.cancel_borrower_servicing(b, actor=request.user, reason=reason),
            lambda b, result: (
                f"{b}: servicing cancelled on {plural(result.loans_updated, 'loan')} ({reason}): "
                f"{_describe(result.totals, payments=True)}."
            ),
        )
        return None
    return _confirmation(
        modeladmin,
        request,
        borrowers,
        communications=False,
        form=form if form.is_bound else CancelServicingForm(),
    )


@admin.action(
    description="Cancel communications of the selected borrowers", permissions=["cancel_servicing"]
)
def cancel_borrower_communications(modeladmin, request, queryset):
    borrowers = list(queryset.order_by("pk"))
    if request.POST.get("post") == "yes":
        _for_each_borrower(
            modeladmin,
            request,
            borrowers,
            lambda b: services.cancel_borrower_communications(b, actor=request.user),
            lambda b, result: (
                f"{b}: communications cancelled: {_describe(result.totals, payments=False)}."
            ),
        )
        return None
    return _confirmation(modeladmin, request, borrowers, communications=True, form=None)


BorrowerAdmin.actions = [
    *(BorrowerAdmin.actions or []),
    cancel_borrower_servicing,
    cancel_borrower_communications,
]
