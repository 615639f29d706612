"""The servicing admin's operator tools (issue 15): bulk cancel actions on scheduled payments,
communications and schedules (each item through its own service), every time shown in the
borrower's zone and UTC, and the loan page's autopay / dispatch attempts / snapshots section."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from loans.admin import register_loan_section
from loans.admin_messages import message_for
from loans.exceptions import DomainError
from loans.formatting import local_and_utc, money, plural
from loans.models import Loan
from servicing import services
from servicing.admin import (
    MAX_MESSAGES_PER_LOAN,
    CommunicationScheduleAdmin,
    ScheduledCommunicationAdmin,
    ScheduledCommunicationInline,
    ScheduledPaymentAdmin,
)
from servicing.models import Autopay, DispatchAttempt, LoanDailySnapshot

# ------------------------------------------------------------------ bulk cancel of scheduled items


class CancelItemsForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Recorded on each cancelled item and in the audit trail.",
    )


def _cancel_items_action(*, noun: str, cancel, describe_one):
    """An action shaped like ``delete_selected``: the first post lists the selected items and
    asks for a reason; the second (``post=yes``) cancels each one through its service (one
    transaction each: one refusal does not stop the others) and reports per item."""

    def action(modeladmin, request, queryset):
        items = list(queryset.select_related("loan__borrower").order_by("pk"))
        form = CancelItemsForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid():
            done, refused = 0, []
            for item in items:
                try:
                    cancel(item, actor=request.user, reason=form.cleaned_data["reason"])
                except DomainError as exc:
                    level, text = message_for(exc)
                    refused.append((level, f"{noun.capitalize()} {item.pk} ({item.loan}): {text}"))
                else:
                    done += 1
            modeladmin.message_user(
                request,
                f"{plural(done, noun)} cancelled; {len(refused)} refused.",
                messages.SUCCESS if not refused else messages.WARNING,
            )
            for level, text in refused[:MAX_MESSAGES_PER_LOAN]:
                modeladmin.message_user(request, text, level)
            return None
        request.current_app = modeladmin.admin_site.name
        return TemplateResponse(
            request,
            "admin/servicing/cancel_items_confirmation.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": f"Cancel the selected {noun}s",
                "subtitle": None,
                "opts": modeladmin.model._meta,
                "rows": [{"item": item, "text": describe_one(item)} for item in items],
                "form": form if form.is_bound else CancelItemsForm(),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "action_name": request.POST.get("action"),
                "media": modeladmin.media,
            },
        )

    return action


def _local(item, moment):
    return local_and_utc(moment, item.loan.borrower.timezone)


cancel_selected_payments = admin.action(
    description="Cancel selected scheduled payments", permissions=["cancel_items"]
)(
    _cancel_items_action(
        noun="scheduled payment",
        cancel=lambda item, **kw: services.cancel_scheduled_payment(payment_id=item.pk, **kw),
        describe_one=lambda p: (
            f"{p.get_method_display()} {money(p.amount)} on "
            f"{p.scheduled_date:%Y-%m-%d} ({p.status})"
        ),
    )
)
cancel_selected_payments.__name__ = "cancel_selected_payments"
cancel_selected_communications = admin.action(
    description="Cancel selected scheduled communications", permissions=["cancel_items"]
)(
    _cancel_items_action(
        noun="scheduled communication",
        cancel=lambda item, **kw: services.cancel_scheduled_communication(
            communication_id=item.pk, **kw
        ),
        describe_one=lambda c: (
            f"{c.get_channel_display()} at {_local(c, c.scheduled_at)} ({c.status})"
        ),
    )
)
cancel_selected_communications.__name__ = "cancel_selected_communications"
cancel_selected_schedules = admin.action(
    description="Cancel selected communication schedules", permissions=["cancel_items"]
)(
    _cancel_items_action(
        noun="communication schedule",
        cancel=lambda item, **kw: services.cancel_communication_schedule(schedule_id=item.pk, **kw),
        describe_one=lambda s: (
            f"{s.get_channel_display()} every {s.every_days} days from "
            f"{s.start_date:%Y-%m-%d} ({s.status})"
        ),
    )
)
cancel_selected_schedules.__name__ = "cancel_selected_schedules"


def _has_cancel_items_permission(self, request) -> bool:
    """Whoever may schedule an item may unschedule it (the API's rule)."""
    return request.user.has_perm("loans.post_transaction")


def _when(field: str, description: str):
    @admin.display(description=description, ordering=field)
    def column(self, obj):
        return _local(obj, getattr(obj, field))

    return column


for _admin, _action in (
    (ScheduledPaymentAdmin, cancel_selected_payments),
    (ScheduledCommunicationAdmin, cancel_selected_communications),
    (CommunicationScheduleAdmin, cancel_selected_schedules),
):
    _admin.actions = [_action]
    _admin.has_cancel_items_permission = _has_cancel_items_permission
    _admin.list_select_related = ["loan__borrower", "created_by", "cancelled_by"]
    _admin.created_local = _when("created_at", "Created (borrower's zone / UTC)")
    _admin.cancelled_local = _when("cancelled_at", "Cancelled (borrower's zone / UTC)")
    _admin.list_display = [
        {"cancelled_at": "cancelled_local"}.get(name, name) for name in _admin.list_display
    ] + ["created_local"]

ScheduledCommunicationAdmin.scheduled_local = _when(
    "scheduled_at", "Scheduled at (borrower's zone / UTC)"
)
ScheduledCommunicationAdmin.list_display = [
    {"scheduled_at": "scheduled_local"}.get(name, name)
    for name in ScheduledCommunicationAdmin.list_display
]
ScheduledCommunicationInline.scheduled_local = _when("scheduled_at", "Scheduled at (local / UTC)")
ScheduledCommunicationInline.fields = [
    {"scheduled_at": "scheduled_local"}.get(name, name)
    for name in ScheduledCommunicationInline.fields
]


# ------------------------------------------------------------------ loan page: autopay, attempts


def autopay_section(request, loan: Loan):
    """The loan's autopays, its latest dispatch attempts and daily snapshots (three queries)."""
    autopays = list(Autopay.objects.filter(loan=loan).order_by("-id")[:10])
    attempts = list(DispatchAttempt.objects.filter(loan=loan).order_by("-started_at", "-id")[:20])
    snapshots = list(LoanDailySnapshot.objects.filter(loan=loan).order_by("-business_date")[:10])
    if not (autopays or attempts or snapshots):
        return None
    zone = loan.borrower.timezone
    for attempt in attempts:
        attempt.started_local = local_and_utc(attempt.started_at, zone)
    return {
        "template": "admin/servicing/loan_autopay_section.html",
        "autopays": autopays,
        "attempts": attempts,
        "snapshots": snapshots,
    }


register_loan_section(autopay_section)
