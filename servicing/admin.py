"""Admin of the servicing app: read-only changelists of scheduled items and schedules, read-only
inlines on the loan page, the "Cancel servicing" action on selected loans (shaped like Django's
``delete_selected``) and per-loan "Cancel servicing" / "Resume servicing" pages.

Nothing here decides anything: the pages parse input, call ``servicing.services`` and report.
The loan core's admin is extended through its hooks (``register_loan_view``,
``register_loan_button``, ``LoanAdmin.actions``, ``LoanAdmin.inlines``), so ``loans`` never
imports this app.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.forms.models import BaseInlineFormSet
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from loans.admin import (
    LoanAdmin,
    LoanButton,
    ReadOnlyAdminMixin,
    admin_url,
    loan_perm,
    register_loan_button,
    register_loan_view,
)
from loans.admin_messages import message_for, show_error
from loans.exceptions import DomainError
from loans.formatting import money_column, plural
from loans.models import Loan, ServicingStatus
from loans.selectors import get_business_date
from servicing import services
from servicing.forms import CancelServicingForm, ResumeServicingForm
from servicing.models import (
    ApiToken,
    CommunicationSchedule,
    ScheduledCommunication,
    ScheduledPayment,
    ServicingEvent,
)
from servicing.selectors import CancelCounts, pending_counts

LOAN_SEARCH = ["=loan__external_id", "=loan__display_id"]
# Above this many loans the action's result is one summary message (plus one per failure)
# instead of one message per loan, so the message storage stays small.
MAX_MESSAGES_PER_LOAN = 50
INLINE_ROWS = 50


def describe(counts) -> str:
    schedules = (
        counts.cancelled_call_schedules
        + counts.cancelled_email_schedules
        + counts.cancelled_sms_schedules
    )
    return (
        f"{plural(counts.cancelled_scheduled_payments, 'payment')}, "
        f"{plural(counts.cancelled_calls, 'call')}, {plural(counts.cancelled_emails, 'email')}, "
        f"{counts.cancelled_sms} SMS, "
        f"{counts.cancelled_call_schedules} call / {counts.cancelled_email_schedules} email / "
        f"{counts.cancelled_sms_schedules} SMS schedule{'' if schedules == 1 else 's'}"
    )


# ------------------------------------------------------------------ changelists


class ServicingItemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: items change only through the services (and their API / loan pages)."""

    search_fields = LOAN_SEARCH
    list_select_related = ["loan", "created_by", "cancelled_by"]
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description="Loan", ordering="loan__display_id")
    def loan_link(self, obj):
        return obj.loan


@admin.register(ScheduledPayment)
class ScheduledPaymentAdmin(ServicingItemAdmin):
    list_display = [
        "id",
        "loan_link",
        money_column("amount"),
        "scheduled_date",
        "method",
        "status",
        "created_by",
        "cancelled_at",
        "cancel_reason",
    ]
    list_filter = ["status", "method", ("scheduled_date", admin.DateFieldListFilter)]
    date_hierarchy = "scheduled_date"


@admin.register(ScheduledCommunication)
class ScheduledCommunicationAdmin(ServicingItemAdmin):
    list_display = [
        "id",
        "loan_link",
        "channel",
        "scheduled_at",
        "subject",
        "schedule_id",
        "status",
        "cancelled_at",
        "cancel_reason",
    ]
    list_filter = ["status", "channel", ("scheduled_at", admin.DateFieldListFilter)]
    date_hierarchy = "scheduled_at"


@admin.register(CommunicationSchedule)
class CommunicationScheduleAdmin(ServicingItemAdmin):
    list_display = [
        "id",
        "loan_link",
        "channel",
        "every_days",
        "start_date",
        "end_date",
        "occurrences",
        "status",
        "cancelled_at",
    ]
    list_filter = ["status", "channel", ("start_date", admin.DateFieldListFilter)]
    date_hierarchy = "start_date"


@admin.register(ServicingEvent)
class ServicingEventAdmin(ServicingItemAdmin):
    """Append-only audit of servicing status changes."""

    list_display = [
        "at",
        "loan_link",
        "kind",
        "reason",
        "actor",
        "business_date",
        "cancelled_scheduled_payments",
        "cancelled_calls",
        "cancelled_emails",
        "cancelled_sms",
        "note",
    ]
    list_filter = ["kind", "reason", ("at", admin.DateFieldListFilter)]
    list_select_related = ["loan", "actor"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """The issued API tokens, by user, prefix and expiry (never the key: only its digest is
    stored). Read-only; deleting a token revokes it at once (`servicing.delete_apitoken`)."""

    list_display = ["prefix", "user", "created_at", "expires_at", "expired"]
    list_filter = [("expires_at", admin.DateFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["=prefix", "user__username"]
    fields = ["prefix", "user", "created_at", "expires_at"]
    readonly_fields = fields
    actions = ["delete_selected"]

    @admin.display(boolean=True, description="expired")
    def expired(self, token: ApiToken) -> bool:
        return token.expires_at <= timezone.now()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# ------------------------------------------------------------------ inlines on the loan page


class LatestRowsFormSet(BaseInlineFormSet):
    """Show only the latest ``INLINE_ROWS`` rows: a loan may have thousands of items; the
    changelists (searchable by loan) show them all."""

    def get_queryset(self):
        if not hasattr(self, "_latest"):
            self._latest = list(super().get_queryset()[:INLINE_ROWS])
        return self._latest


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    formset = LatestRowsFormSet
    classes = ["collapse"]

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ScheduledPaymentInline(ReadOnlyInline):
    model = ScheduledPayment
    verbose_name_plural = f"Scheduled payments (latest {INLINE_ROWS})"
    fields = ["scheduled_date", "amount", "method", "status", "cancelled_at", "cancel_reason"]
    ordering = ["-scheduled_date", "-id"]


class ScheduledCommunicationInline(ReadOnlyInline):
    model = ScheduledCommunication
    verbose_name_plural = f"Scheduled communications (latest {INLINE_ROWS})"
    fields = ["scheduled_at", "channel", "subject", "schedule", "status", "cancelled_at"]
    ordering = ["-scheduled_at", "-id"]


class CommunicationScheduleInline(ReadOnlyInline):
    model = CommunicationSchedule
    verbose_name_plural = f"Communication schedules (latest {INLINE_ROWS})"
    fields = ["channel", "every_days", "start_date", "end_date", "occurrences", "status"]
    ordering = ["-start_date", "-id"]


class ServicingEventInline(ReadOnlyInline):
    model = ServicingEvent
    verbose_name_plural = f"Servicing events (latest {INLINE_ROWS})"
    fields = ["at", "kind", "reason", "actor", "note", "cancelled_scheduled_payments"]
    ordering = ["-at", "-id"]


LoanAdmin.inlines = [
    *LoanAdmin.inlines,
    ScheduledPaymentInline,
    ScheduledCommunicationInline,
    CommunicationScheduleInline,
    ServicingEventInline,
]


# ------------------------------------------------------------------ the action on selected loans


def _has_cancel_servicing_permission(self, request) -> bool:
    return request.user.has_perm("loans.cancel_servicing")


LoanAdmin.has_cancel_servicing_permission = _has_cancel_servicing_permission


@admin.action(description="Cancel servicing of selected loans", permissions=["cancel_servicing"])
def cancel_servicing_selected(modeladmin, request, queryset):
    """First pass: a confirmation page listing each loan and what would be cancelled, counted
    in three grouped queries. Second pass (``post=yes``): ``cancel_servicing_bulk`` on them all."""
    loan_ids = list(queryset.order_by("pk").values_list("pk", flat=True))
    form = CancelServicingForm(request.POST if request.POST.get("post") == "yes" else None)
    if request.POST.get("post") == "yes" and form.is_valid():
        _run_cancel_servicing(modeladmin, request, loan_ids, form.cleaned_data["reason"])
        return None

    loans = Loan.objects.filter(pk__in=loan_ids).select_related("borrower").order_by("pk")
    counts = pending_counts(loan_ids)
    # One reverse for the thousand rows (a {% url %} a row was a sixth of the page).
    change_url = reverse(
        "admin:loans_loan_change", args=["pkmark"], current_app=modeladmin.admin_site.name
    )
    rows = []
    for loan in loans:
        stopped = loan.servicing_status == ServicingStatus.NOT_SERVICING
        rows.append(
            {
                "loan": loan,
                "url": change_url.replace("pkmark", str(quote(loan.pk))),
                "stopped": stopped,
                # A stopped loan has nothing left to cancel (the cancel made sure of it).
                "counts": CancelCounts() if stopped else counts[loan.pk],
            }
        )
    # With "select all N" (select_across) the second pass re-selects the same changelist query
    # (the form posts back to the same URL, filters included) instead of carrying every id,
    # which would exceed DATA_UPLOAD_MAX_NUMBER_FIELDS for large selections.
    select_across = request.POST.get("select_across") == "1"
    return TemplateResponse(
        request,
        "admin/loans/loan/cancel_servicing_confirmation.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "Cancel servicing of the selected loans",
            "subtitle": None,
            "opts": modeladmin.model._meta,
            "rows": rows,
            "form": form if form.is_bound else CancelServicingForm(),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": select_across,
            "selected_ids": (
                request.POST.getlist(helpers.ACTION_CHECKBOX_NAME) if select_across else loan_ids
            ),
            "action_name": "cancel_servicing_selected",
            "media": modeladmin.media,
        },
    )


def _run_cancel_servicing(modeladmin, request, loan_ids: list[int], reason: str) -> None:
    """``cancel_servicing_bulk``: every selected loan in one transaction, set-based (a dozen
    statements for 1,000 loans, issue 14), then one message per loan (or one summary for many).
    A loan already stopped is left as it is and reported; a database error fails the request
    and nothing is cancelled."""
    try:
        result = services.cancel_servicing_bulk(
            loan_ids=loan_ids, reason=reason, actor=request.user, as_of=get_business_date()
        )
    except DomainError as exc:
        level, text = message_for(exc)
        modeladmin.message_user(request, f"Servicing not cancelled: {text}", level)
        return
    updated = set(result.updated)
    if len(result.loans) > MAX_MESSAGES_PER_LOAN:
        modeladmin.message_user(
            request,
            f"Servicing cancelled on {result.loans_updated} loans ({reason}): "
            f"{describe(result.totals)}; {len(result.loans) - result.loans_updated} already "
            "stopped; 0 failed.",
            messages.SUCCESS,
        )
        return
    for loan in result.loans:
        if loan.pk in updated:
            modeladmin.message_user(
                request,
                f"{loan}: servicing cancelled ({reason}): {describe(result.per_loan[loan.pk])}.",
                messages.SUCCESS,
            )
        else:
            modeladmin.message_user(
                request,
                f"{loan}: servicing was already stopped ({loan.stop_servicing_reason}); "
                "nothing changed.",
                messages.WARNING,
            )


LoanAdmin.actions = [*LoanAdmin.actions, cancel_servicing_selected]


# ------------------------------------------------------------------ per-loan pages and buttons


def cancel_servicing_view(model_admin: LoanAdmin, request, loan: Loan):
    if not loan_perm(request, "cancel_servicing"):
        raise PermissionDenied
    if loan.servicing_status == ServicingStatus.NOT_SERVICING:
        model_admin.message_user(
            request,
            f"Servicing of {loan} is already stopped ({loan.stop_servicing_reason}).",
            messages.WARNING,
        )
        return model_admin.back_to_loan(loan)
    form = CancelServicingForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            result = services.cancel_servicing(
                loan=loan, reason=form.cleaned_data["reason"], actor=request.user
            )
        except DomainError as exc:
            show_error(request, exc)
        else:
            model_admin.message_user(
                request,
                f"{loan}: servicing cancelled ({result.loan.stop_servicing_reason}): "
                f"{describe(result)}.",
                messages.SUCCESS,
            )
        return model_admin.back_to_loan(loan)
    return model_admin.render_command(
        request,
        loan,
        "admin/servicing/loan_cancel_servicing.html",
        {
            "title": f"Cancel servicing of {loan}",
            "question": "Stop servicing this loan and cancel everything scheduled for it?",
            "confirm_label": "Yes, cancel servicing",
            "form": form if form.is_bound else CancelServicingForm(),
            "counts": pending_counts([loan.pk])[loan.pk],
        },
    )


def resume_servicing_view(model_admin: LoanAdmin, request, loan: Loan):
    if not loan_perm(request, "resume_servicing"):
        raise PermissionDenied
    form = ResumeServicingForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            services.resume_servicing(loan=loan, note=form.cleaned_data["note"], actor=request.user)
        except DomainError as exc:
            show_error(request, exc)
        else:
            model_admin.message_user(request, f"{loan}: servicing resumed.", messages.SUCCESS)
        return model_admin.back_to_loan(loan)
    if loan.servicing_status != ServicingStatus.NOT_SERVICING:
        model_admin.message_user(request, f"{loan} is already being serviced.", messages.WARNING)
        return model_admin.back_to_loan(loan)
    return model_admin.render_command(
        request,
        loan,
        "admin/servicing/loan_resume_servicing.html",
        {
            "title": f"Resume servicing of {loan}",
            "question": "Service this loan again?",
            "confirm_label": "Yes, resume servicing",
            "form": form if form.is_bound else ResumeServicingForm(),
        },
    )


def servicing_button(request, loan: Loan) -> LoanButton | None:
    if loan.servicing_status == ServicingStatus.ACTIVE and loan_perm(request, "cancel_servicing"):
        return LoanButton("Cancel servicing", admin_url("cancel_servicing", loan), "danger")
    if loan.servicing_status == ServicingStatus.NOT_SERVICING and loan_perm(
        request, "resume_servicing"
    ):
        return LoanButton("Resume servicing", admin_url("resume_servicing", loan))
    return None


register_loan_view("cancel-servicing", cancel_servicing_view, "cancel_servicing")
register_loan_view("resume-servicing", resume_servicing_view, "resume_servicing")
register_loan_button(servicing_button)


# Bulk cancel actions of the scheduled items, their times in the borrower's zone, and the loan
# page's autopay section live in their own module; importing it registers them.
# The servicing clock's pages (jobs, dispatcher queue, outbox, autopay) live beside this one.
from servicing import admin_borrowers, admin_clock, admin_items  # noqa: E402, F401
