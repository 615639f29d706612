"""The loan page's "Modify loan" and "Cancel modification" buttons, their pages, and a
read-only list of modifications."""

from __future__ import annotations

from django.contrib import admin

from loans.admin import (
    LoanButton,
    ReadOnlyAdminMixin,
    admin_url,
    loan_perm,
    register_loan_button,
    register_loan_section,
    register_loan_view,
)
from loans.models import LoanStatus
from modifications import selectors
from modifications.models import Modification
from modifications.views import (
    activate_modification_view,
    cancel_modification_view,
    modify_loan_view,
    schedule_preview_view,
)

register_loan_view("modify", modify_loan_view, "modify")
register_loan_view("modify/preview", schedule_preview_view, "modify_preview")
register_loan_view("cancel-modification", cancel_modification_view, "cancel_modification")
register_loan_view("activate-modification", activate_modification_view, "activate_modification")


def modify_button(request, loan):
    if not loan_perm(request, "modify_loan"):
        return None
    if loan.modification_in_progress:
        return LoanButton("Resume modification", admin_url("modify", loan))
    if loan.status == LoanStatus.ACTIVE and not loan.is_terminated:
        return LoanButton("Modify loan", admin_url("modify", loan))
    return None


def cancel_modification_button(request, loan):
    if not loan_perm(request, "modify_loan") or selectors.newest_modification(loan) is None:
        return None
    return LoanButton("Cancel modification", admin_url("cancel_modification", loan), "danger")


register_loan_button(modify_button)
register_loan_button(cancel_modification_button)


def modifications_section(request, loan):
    rows = list(Modification.objects.filter(loan=loan).select_related("created_by").order_by("-id"))
    if not rows:
        return None
    return {"template": "admin/modifications/loan_modifications_section.html", "rows": rows}


register_loan_section(modifications_section)


@admin.register(Modification)
class ModificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "loan",
        "status",
        "modification_date",
        "setup",
        "previous_setup",
        "created_by",
        "created_at",
        "activated_at",
        "cancelled_at",
    ]
    list_filter = ["status"]
    search_fields = ["=loan__external_id", "=loan__display_id"]
    list_select_related = ["loan", "setup", "previous_setup", "created_by"]
