"""Admin forms of the servicing commands (input parsing only; the services decide)."""

from __future__ import annotations

from django import forms

from loans.models import StopServicingReason


class CancelServicingForm(forms.Form):
    """The operator chooses the reason: nothing is pre-selected (the API's default reason,
    API_REQUEST, is for API callers that give none)."""

    reason = forms.ChoiceField(
        choices=[("", "— choose a reason —"), *StopServicingReason.choices],
        help_text="Recorded as the loan's stop servicing reason.",
        error_messages={"required": "Choose the reason servicing stops."},
    )


class ResumeServicingForm(forms.Form):
    note = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why servicing resumes (recorded in the audit trail).",
    )
