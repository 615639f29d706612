"""Admin forms of the servicing commands (input parsing only; the services decide)."""

from __future__ import annotations

from django import forms

from loans.models import StopServicingReason


class CancelServicingForm(forms.Form):
    reason = forms.ChoiceField(
        choices=StopServicingReason.choices,
        initial=StopServicingReason.API_REQUEST,
        help_text="Recorded as the loan's stop servicing reason.",
    )


class ResumeServicingForm(forms.Form):
    note = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why servicing resumes (recorded in the audit trail).",
    )
