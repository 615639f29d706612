"""Admin for the loan core: borrowers, loans (read-only, with summary columns computed in SQL),
the business date, and per-loan command pages.

Other apps plug their commands into the loan page without this module importing them:
``register_loan_view(suffix, view, name)`` adds a per-loan URL (``<id>/<suffix>/``), and
``register_loan_button(func)`` adds a button: ``func(request, loan) -> LoanButton | None``.
Actions are added with ``LoanAdmin.actions += [...]`` from the app's own admin module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Prefetch
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext

from loans import audit, formatting, search, selectors, services, terms
from loans.admin_messages import show_error
from loans.exceptions import DomainError
from loans.forms import BusinessDateForm
from loans.models import (
    Borrower,
    BusinessDate,
    Loan,
    LoanEvent,
    LoanSetup,
    LoanStatus,
    Schedule,
    SchedulePeriod,
    Transaction,
    TransactionType,
)


@dataclass(frozen=True)
class LoanButton:
    label: str
    url: str
    style: str = "default"  # "default" | "danger"


_LOAN_VIEWS: list[tuple[str, object, str]] = []
_LOAN_BUTTONS: list = []


def register_loan_view(suffix: str, view, name: str) -> None:
    """``view(model_admin, request, loan)``; URL name ``loans_loan_<name>``."""
    _LOAN_VIEWS.append((suffix, view, name))


def register_loan_button(func) -> None:
    _LOAN_BUTTONS.append(func)


_LOAN_SECTIONS: list = []


def register_loan_section(func) -> None:
    """``func(request, loan) -> {"template": ..., **context} | None``: a section of the loan
    page rendered after the transactions (e.g. a loan's modifications)."""
    _LOAN_SECTIONS.append(func)


def as_money(value) -> str:
    """An aggregate as a two-decimal amount (SQLite's SUM comes back unquantized), with
    thousands separators and never ``-0.00``."""
    return formatting.money(value)


def loan_perm(request, codename: str) -> bool:
    return request.user.has_perm(f"loans.{codename}")


def admin_url(name: str, loan: Loan) -> str:
    return reverse(f"admin:loans_loan_{name}", args=[loan.pk])


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BorrowerForm(forms.ModelForm):
    """The external id is a path key (``/borrowers/external-id/{externalId}``): refused as the
    API refuses it (terms.path_key_problem)."""

    class Meta:
        model = Borrower
        fields = [
            "external_id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "timezone",
            "do_not_call",
            "do_not_email",
            "do_not_sms",
        ]

    def clean_external_id(self):
        value = self.cleaned_data.get("external_id") or None
        problem = terms.path_key_problem(value)
        if problem:
            raise forms.ValidationError(problem, code="invalid_external_id")
        return value


@admin.register(Borrower)
class BorrowerAdmin(admin.ModelAdmin):
    form = BorrowerForm
    list_display = ["id", "first_name", "last_name", "email", "phone", "timezone"]
    search_fields = ["first_name", "last_name", "email", "phone"]
    list_filter = ["do_not_call", "do_not_email", "do_not_sms"]

    def has_delete_permission(self, request, obj=None):
        return False


class BooleanStateFilter(admin.SimpleListFilter):
    title = "sub-status"
    parameter_name = "sub_status"

    def lookups(self, request, model_admin):
        return [("CONTRACT_TERMINATION", "Contract termination"), ("none", "None")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(sub_status__isnull=True)
        if self.value():
            return queryset.filter(sub_status=self.value())
        return queryset


class PastDueFilter(admin.SimpleListFilter):
    """Loans with (or without) an installment unpaid after its due date, on the business date
    (live, from the current schedule; the bucket filter is as of the last close of business)."""

    title = "past due"
    parameter_name = "past_due"

    def lookups(self, request, model_admin):
        return [("yes", "Past due"), ("no", "Not past due")]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        late = SchedulePeriod.objects.filter(
            schedule__loan=OuterRef("pk"),
            schedule__is_current=True,
            frozen=False,
            complete=False,
            due_date__lt=selectors.get_business_date(),
        )
        if self.value() == "yes":
            return queryset.filter(Exists(late))
        return queryset.exclude(Exists(late))


class LoanChangeList(ChangeList):
    """Adds each listed loan's outstanding and past-due figures after pagination: one grouped
    query for the page, whatever the page number or the number of loans."""

    def get_results(self, request):
        super().get_results(request)
        as_of = selectors.get_business_date()
        loans = list(self.result_list)
        summaries = selectors.page_summaries([loan.pk for loan in loans], as_of=as_of)
        for loan in loans:
            figures = summaries.get(loan.pk, {})
            loan.total_outstanding = figures.get("total_outstanding")
            loan.principal_outstanding = figures.get("principal_outstanding")
            loan.amount_past_due = figures.get("amount_past_due")
            oldest = figures.get("oldest_past_due_date")
            loan.days_past_due = (as_of - oldest).days if oldest else 0
        self.result_list = loans

    def get_queryset(self, request, exclude_parameters=None):
        # The list shows the borrower, not the setup (the loan page's queryset joins both).
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.select_related(None).select_related("borrower")


@admin.register(Loan)
class LoanAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "display_id",
        "external_id",
        "borrower_name",
        "status",
        "sub_status",
        "servicing_status",
        "engine",
        "principal_outstanding_col",
        "total_outstanding_col",
        "amount_past_due_col",
        "days_past_due_col",
    ]
    list_display_links = ["display_id", "external_id"]
    list_select_related = ["borrower"]
    # Shown as the search box; the search itself is ``get_search_results`` (indexed, see
    # ``loans.search``): externalId/displayId by prefix, borrower name/e-mail by substring.
    search_fields = ["external_id", "display_id", "borrower__first_name", "borrower__email"]
    search_help_text = (
        "External id or display id (exact or its beginning), borrower name or e-mail."
    )
    paginator = search.LargeTablePaginator
    list_filter = [
        "status",
        BooleanStateFilter,
        "servicing_status",
        "delinquency_bucket",
        PastDueFilter,
        "schedule_engine",
        "charged_off",
    ]
    list_per_page = 50
    show_full_result_count = False
    change_form_template = "admin/loans/loan/change_form.html"
    change_list_template = "admin/loans/loan/change_list.html"
    actions: list = []
    fields = [
        "display_id",
        "external_id",
        "borrower",
        "status",
        "sub_status",
        "charged_off",
        "schedule_engine",
        "servicing_status",
        "stop_servicing_reason",
        "servicing_changed_at",
        "modification_in_progress",
        "mod_total",
        "created_at",
    ]

    def has_terminate_contract_permission(self, request, obj=None):
        return loan_perm(request, "terminate_contract")

    def has_view_permission(self, request, obj=None):
        return (
            request.user.is_active
            and request.user.is_staff
            and (
                super().has_view_permission(request, obj) or request.user.has_module_perms("loans")
            )
        )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("borrower", "setup")

    def get_changelist(self, request, **kwargs):
        return LoanChangeList

    def get_search_results(self, request, queryset, search_term):
        return search.filter_loans(queryset, search_term), False

    def action_checkbox(self, obj):
        """Django's checkbox, written with ``format_html``: the widget renders two templates a
        row (a third of the time of the changelist's rows, issue 14); the HTML is the same."""
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            format_html(gettext("Select this object for an action - {}"), str(obj)),
        )

    @admin.display(description="Engine", ordering="schedule_engine")
    def engine(self, obj):
        return obj.schedule_engine

    @admin.display(description="Borrower", ordering="borrower__last_name")
    def borrower_name(self, obj):
        return str(obj.borrower)

    @admin.display(description="Principal out.")
    def principal_outstanding_col(self, obj):
        return as_money(getattr(obj, "principal_outstanding", None))

    @admin.display(description="Total out.")
    def total_outstanding_col(self, obj):
        return as_money(getattr(obj, "total_outstanding", None))

    @admin.display(description="Past due")
    def amount_past_due_col(self, obj):
        return as_money(getattr(obj, "amount_past_due", None))

    @admin.display(description="DPD")
    def days_past_due_col(self, obj):
        return getattr(obj, "days_past_due", None)

    # ------------------------------------------------------------------ loan page

    def change_view(self, request, object_id, form_url="", extra_context=None):
        loan = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if loan is not None:
            extra_context.update(self.loan_page_context(request, loan))
        return super().change_view(request, object_id, form_url, extra_context)

    def loan_page_context(self, request, loan: Loan) -> dict:
        as_of = selectors.get_business_date()
        schedules = list(
            Schedule.objects.filter(loan=loan)
            .select_related("created_by")
            .prefetch_related(
                Prefetch("periods", queryset=SchedulePeriod.objects.order_by("period"))
            )
            .order_by("-version")
        )
        current = next((s for s in schedules if s.is_current), None)
        show_version = request.GET.get("schedule_version")
        shown = current
        if show_version and show_version.isdigit():
            shown = next((s for s in schedules if s.version == int(show_version)), current)
        summary = selectors.loan_summary(loan, as_of=as_of, schedule=current) if current else None
        setups = list(LoanSetup.objects.filter(loan=loan).order_by("id"))
        transactions = list(selectors.loan_transactions(loan))
        for tx in transactions:
            tx.reverse_url = (
                reverse("admin:loans_loan_reverse_transaction", args=[loan.pk, tx.pk])
                if admin_views.can_reverse(request, loan, tx)
                else None
            )
        by_id = {tx.pk: tx for tx in transactions}
        events = list(LoanEvent.objects.filter(loan=loan).select_related("actor")[:100])
        for event in events:
            event.lines = audit.describe(event, by_id)
        return {
            "loan": loan,
            "as_of": as_of,
            "summary": summary,
            "schedules": schedules,
            "shown_schedule": shown,
            "current_schedule": current,
            "setups": setups,
            "transactions": transactions,
            "events": events,
            "balance_chart": admin_views.balance_chart(loan, current, transactions),
            "buttons": self.loan_buttons(request, loan),
            "extra_sections": [
                section for func in _LOAN_SECTIONS if (section := func(request, loan))
            ],
        }

    def loan_buttons(self, request, loan: Loan) -> list[LoanButton]:
        buttons = []
        if loan.status == LoanStatus.PENDING and loan_perm(request, "post_transaction"):
            buttons.append(LoanButton("Activate loan", admin_url("activate", loan)))
        if loan_perm(request, "post_transaction") and not selectors.transaction_refusals(
            loan, type=TransactionType.REPAYMENT
        ):
            buttons.append(LoanButton("Post repayment", admin_url("post_repayment", loan)))
        for func in _LOAN_BUTTONS:
            button = func(request, loan)
            if button is not None:
                buttons.append(button)
        return buttons

    def get_urls(self):
        urls = [
            path(
                "create/",
                self.admin_site.admin_view(partial(admin_views.create_loan_view, self)),
                name="loans_loan_create",
            ),
            path(
                "create/preview/",
                self.admin_site.admin_view(partial(admin_views.create_preview_view, self)),
                name="loans_loan_create_preview",
            ),
            path(
                "export.csv",
                self.admin_site.admin_view(partial(admin_views.export_csv_view, self)),
                name="loans_loan_export_csv",
            ),
            path(
                "<path:object_id>/activate/",
                self.admin_site.admin_view(self.loan_command(activate_view)),
                name="loans_loan_activate",
            ),
        ]
        for suffix, view, name in _LOAN_VIEWS:
            urls.append(
                path(
                    f"<path:object_id>/{suffix}/",
                    self.admin_site.admin_view(self.loan_command(view)),
                    name=f"loans_loan_{name}",
                )
            )
        return urls + super().get_urls()

    def loan_command(self, view):
        def wrapper(request, object_id, **kwargs):
            loan = self.get_object(request, object_id)
            if loan is None:
                raise Http404("No such loan.")
            return view(self, request, loan, **kwargs)

        return wrapper

    def render_command(self, request, loan, template: str, context: dict):
        """Render a per-loan command page in the admin's look."""
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "loan": loan,
                "original": loan,
                "has_view_permission": True,
                "loan_url": reverse("admin:loans_loan_change", args=[loan.pk]),
                **context,
            },
        )

    def back_to_loan(self, loan):
        return HttpResponseRedirect(reverse("admin:loans_loan_change", args=[loan.pk]))


def registered_loan_view_names() -> list[str]:
    """The URL names (``loans_loan_<name>``) other apps registered with ``register_loan_view``."""
    return [name for _suffix, _view, name in _LOAN_VIEWS]


def registered_loan_view(name: str):
    """The per-loan view another app registered under ``name`` (None if none did)."""
    return next((view for _suffix, view, n in _LOAN_VIEWS if n == name), None)


def activate_view(model_admin: LoanAdmin, request, loan: Loan):
    """Activate a PENDING loan (the core's ``activate_loan``, under ``post_transaction``).

    A loan whose modification is in progress is handed to the page registered as
    ``activate_modification`` (the modifications app's, under ``modify_loan``): this URL never
    runs one command under the other command's permission.
    """
    delegate = registered_loan_view("activate_modification")
    if loan.modification_in_progress and delegate is not None:
        return delegate(model_admin, request, loan)
    if not loan_perm(request, "post_transaction"):
        raise PermissionDenied
    if request.method == "POST":
        try:
            result = services.activate_loan(loan=loan, actor=request.user)
        except DomainError as exc:
            show_error(request, exc)
        else:
            if result.activated:
                model_admin.message_user(request, f"{loan} activated.", messages.SUCCESS)
            else:
                model_admin.message_user(request, f"{loan} had nothing to activate.")
        return model_admin.back_to_loan(loan)
    return model_admin.render_command(
        request,
        loan,
        "admin/loans/loan/confirm_command.html",
        {
            "title": f"Activate {loan}",
            "question": "Disburse the loan on its contract date and generate its schedule?",
            "confirm_label": "Yes, activate",
        },
    )


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "loan",
        "type",
        "date",
        formatting.money_column("amount"),
        formatting.money_column("principal_portion"),
        formatting.money_column("interest_portion"),
        formatting.money_column("fees_portion"),
        "reversed",
        "created_by",
    ]
    list_filter = ["type", "reversed"]
    search_fields = ["=loan__external_id", "=loan__display_id", "=external_id"]
    list_select_related = ["loan", "created_by"]
    date_hierarchy = "date"


@admin.register(LoanEvent)
class LoanEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail: read-only for everybody (no add, change or delete)."""

    list_display = ["created_at", "command", "loan", "actor", "business_date", "what", "reason"]
    list_filter = ["command"]
    search_fields = ["=loan__external_id", "=loan__display_id", "command"]
    list_select_related = ["loan", "actor"]
    readonly_fields = ["what"]

    @admin.display(description="What happened")
    def what(self, obj):
        lines = audit.describe(obj)
        return format_html_join(
            "", "{}<br>", [(line,) for line in [lines.headline, *lines.changes]]
        )


@admin.register(BusinessDate)
class BusinessDateAdmin(admin.ModelAdmin):
    """The business date is set here by users holding ``loans.set_business_date``."""

    form = BusinessDateForm
    fields = ["date", "confirm_backwards"]
    list_display = ["date", "updated_at", "updated_by"]

    def has_add_permission(self, request):
        return loan_perm(request, "set_business_date") and not BusinessDate.objects.exists()

    def has_change_permission(self, request, obj=None):
        return loan_perm(request, "set_business_date")

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not BusinessDate.objects.exists() and self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:loans_businessdate_add"))
        return HttpResponseRedirect(reverse("admin:loans_businessdate_change", args=[1]))

    def save_model(self, request, obj, form, change):
        row = services.set_business_date(new_date=obj.date, actor=request.user)
        obj.pk = row.pk

    def response_post_save_change(self, request, obj):
        return HttpResponseRedirect(reverse("admin:index"))

    response_post_save_add = response_post_save_change


# The contract termination actions and pages live in their own module; importing it registers
# them (this module stays the loan page and its hooks).
# The operator's pages (create, charge/credit/advancement, reversal, export) register themselves,
# and so do the payoff quote, payoff and credit balance refund pages.
from loans import admin_charge_off, admin_payoff, admin_termination, admin_views  # noqa: E402, F401, I001
