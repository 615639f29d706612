"""Admin of the servicing clock: the Jobs page (each close of business with a live progress
bar, its failed loans with the error and a retry action, a "run close of business" button for
the business date), the dispatcher's queue (due, deferred, in flight, failed today), the outbox
of the built-in providers, dispatch attempts, autopays, and read-only inlines on the loan page
(autopay, dispatch attempts, daily snapshots: ``servicing.admin.autopay_section``). Nothing here decides anything: the pages call
``servicing.jobs``, ``servicing.close_of_business`` and the selectors, and report.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

from loans.admin import ReadOnlyAdminMixin
from loans.admin_messages import show_error
from loans.exceptions import DomainError
from loans.formatting import money_column
from loans.models import Loan
from loans.selectors import get_business_date
from servicing import close_of_business as cob
from servicing import jobs as job_services
from servicing import selectors
from servicing.models import (
    Autopay,
    DispatchAttempt,
    Job,
    JobFailure,
    OutboxMessage,
)

CLOCK_PERM = "loans.run_close_of_business"


def progress_bar(job: Job) -> str:
    return format_html(
        '<progress max="{}" value="{}" style="width:12em"></progress> {} / {}{}',
        job.total or 1,
        job.done + job.failed if job.total else (1 if job.finished_at else 0),
        job.done + job.failed,
        job.total,
        format_html(' <b style="color:#ba2121">({} failed)</b>', job.failed) if job.failed else "",
    )


@admin.action(description="Retry the failed loans of selected jobs", permissions=["run_cob"])
def retry_failed_loans(modeladmin, request, queryset):
    retried = failed = 0
    for failure in JobFailure.objects.filter(job__in=queryset, retried_at__isnull=True):
        try:
            cob.retry_failed_loan(failure_id=failure.pk, actor=request.user)
            retried += 1
        except DomainError as exc:  # reported per loan; the others go on
            failed += 1
            show_error(request, exc)
    modeladmin.message_user(request, f"{retried} loan(s) closed again, {failed} failed again.")


@admin.register(Job)
class JobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "business_date",
        "status",
        "progress",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "kind"]
    date_hierarchy = "business_date"
    actions = [retry_failed_loans]
    readonly_fields = [
        "kind",
        "business_date",
        "status",
        "progress",
        "total",
        "done",
        "failed",
        "error",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    fields = readonly_fields
    change_list_template = "admin/servicing/job/change_list.html"
    change_form_template = "admin/servicing/job/change_form.html"

    @admin.display(description="progress")
    def progress(self, job):
        return progress_bar(job)

    def has_run_cob_permission(self, request) -> bool:
        return request.user.has_perm(CLOCK_PERM)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("run/", wrap(self.run_view), name="servicing_job_run"),
            path("queue/", wrap(self.queue_view), name="servicing_job_queue"),
            path(
                "<int:job_id>/failures/<int:failure_id>/retry/",
                wrap(self.retry_failure_view),
                name="servicing_job_retry_failure",
            ),
            path(
                "<int:job_id>/progress.json",
                wrap(self.progress_view),
                name="servicing_job_progress",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "business_date": get_business_date(),
            "can_run": self.has_run_cob_permission(request),
            "queue": dispatcher_queue(),
        }
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def run_view(self, request):
        if request.method != "POST":
            return redirect("admin:servicing_job_changelist")
        if not self.has_run_cob_permission(request):
            raise PermissionDenied
        try:
            job = job_services.enqueue_close_of_business(actor=request.user)
        except DomainError as exc:
            show_error(request, exc)
            return redirect("admin:servicing_job_changelist")
        self.message_user(request, f"Close of business {job.business_date} queued (job {job.pk}).")
        return redirect("admin:servicing_job_change", job.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        failures = JobFailure.objects.filter(job_id=object_id).select_related("loan")
        extra = {"failures": failures, "can_retry": self.has_run_cob_permission(request)}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def retry_failure_view(self, request, job_id: int, failure_id: int):
        """The retry button of one failed loan: POST only, ``run_close_of_business``; the
        service closes the loan again and the page reports how it went."""
        if request.method != "POST":
            return redirect("admin:servicing_job_change", job_id)
        if not self.has_run_cob_permission(request):
            raise PermissionDenied
        failure = get_object_or_404(JobFailure, pk=failure_id, job_id=job_id)
        try:
            failure = cob.retry_failed_loan(failure_id=failure.pk, actor=request.user)
        except DomainError as exc:
            show_error(request, exc)
        else:
            loan = Loan.objects.only("last_closed_business_date").get(pk=failure.loan_id)
            self.message_user(
                request,
                f"Loan {failure.loan} closed again up to {loan.last_closed_business_date}.",
            )
        return redirect("admin:servicing_job_change", job_id)

    def progress_view(self, request, job_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = get_object_or_404(Job, pk=job_id)
        return JsonResponse(
            {
                "id": job.pk,
                "status": job.status,
                "total": job.total,
                "done": job.done,
                "failed": job.failed,
                "percent": job.percent,
            }
        )

    def queue_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Dispatcher queue",
            "queue": dispatcher_queue(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/servicing/job/queue.html", context)


def dispatcher_queue() -> dict:
    """The dispatcher's queue (``servicing.selectors.dispatcher_queue``), payments and
    communications together: due now, deferred, in flight, failed today."""
    queue = selectors.dispatcher_queue(as_of=get_business_date(), now=timezone.now())
    return {
        key: queue["payments"][key] + queue["communications"][key]
        for key in ("due", "deferred", "in_flight", "failed_today")
    }


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "channel",
        "recipient",
        "subject",
        money_column("amount"),
        "succeeded",
        "reference",
        "return_code",
    ]
    list_filter = ["channel", "succeeded"]
    search_fields = ["recipient", "idempotency_key", "reference"]
    raw_id_fields = ["loan"]


@admin.register(DispatchAttempt)
class DispatchAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "started_at",
        "loan",
        "kind",
        "channel",
        "number",
        "status",
        money_column("amount"),
        "return_code",
        "error",
    ]
    list_filter = ["status", "kind", "channel"]
    raw_id_fields = ["loan", "scheduled_payment", "scheduled_communication"]


@admin.register(Autopay)
class AutopayAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "loan",
        "method",
        "amount_type",
        money_column("amount"),
        "process_days_before",
        "start_date",
        "status",
    ]
    list_filter = ["status", "amount_type"]
    raw_id_fields = ["loan"]


# The loan page's autopay, attempts and snapshots: servicing.admin.autopay_section.
