"""Forms of the modification wizard. Field validation only; the commands validate the rest."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from loans.forms import DATE_INPUT, SetupTermsForm
from modifications.selectors import pre_modification_test
from modifications.services import ROLL_TERM, ROLL_TERM_EXACT


class ModificationDateForm(forms.Form):
    modification_date = forms.DateField(
        widget=DATE_INPUT,
        help_text="The new terms apply from this date; the history before it stays as it was.",
    )


class PersistentTransactionsForm(forms.Form):
    """The pre-modification test as a checklist: checked transactions are kept (applied to the
    new schedule on their own dates); unchecked ones are reversed on activation."""

    keep = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Keep after the modification"
    )
    # The ids the page listed: a transaction posted or reversed in another tab since then would
    # otherwise be decided unseen (a new payment unchecked, so reversed on activation).
    shown = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, loan=None, on=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.on = on
        self.groups = pre_modification_test(loan=loan, on=on) if loan and on else {}
        self.candidates = [(group, item) for group, items in self.groups.items() for item in items]
        self.fields["keep"].choices = [
            (item["id"], f"{item['info']} — {item['amount']}") for _group, item in self.candidates
        ]
        self.fields["shown"].initial = self.listed()

    def listed(self) -> str:
        return ",".join(item["id"] for _group, item in self.candidates)

    def clean(self):
        data = super().clean()
        shown = self.data.get(self.add_prefix("shown"))
        if shown is None:  # a client that does not send the list: nothing to compare
            return data
        before = {value for value in shown.split(",") if value}
        now = {item["id"]: item for _group, item in self.candidates}
        added = [item for key, item in now.items() if key not in before]
        gone = sorted(before - set(now))
        if added or gone:
            changes = []
            if added:
                changes.append("new: " + "; ".join(f"{i['info']} ({i['amount']})" for i in added))
            if gone:
                changes.append(f"no longer there: {len(gone)}")
            # Show the list as it is now, a new transaction kept by default (as the page starts).
            self.data = self.data.copy()
            self.data[self.add_prefix("shown")] = self.listed()
            self.data.setlist(
                self.add_prefix("keep"),
                [
                    *[key for key in self.data.getlist(self.add_prefix("keep")) if key in now],
                    *[item["id"] for item in added],
                ],
            )
            raise forms.ValidationError(
                f"The transactions after {self.on:%Y-%m-%d} changed since this list was shown "
                f"({', '.join(changes)}). Check the list and continue again.",
                code="transactions_changed",
            )
        return data

    def persistent(self) -> dict[str, list[str]]:
        kept = set(self.cleaned_data["keep"])
        return {
            group: [item["id"] for item in items if item["id"] in kept]
            for group, items in self.groups.items()
        }


class TermsForm(SetupTermsForm):
    """The draft setup's terms (its contract date is the modification date and stays so; its
    termination interest is carried over)."""

    contract_date = None
    termination_interest = None


class RollPaymentForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="Optional: the payment to roll to. Leave blank to keep the terms as they are.",
    )
    method = forms.ChoiceField(
        choices=[
            (ROLL_TERM_EXACT, "Exact term (fractional; the final installment smaller)"),
            (ROLL_TERM, "Whole term (payment recomputed)"),
        ],
        initial=ROLL_TERM_EXACT,
        widget=forms.RadioSelect,
    )


class ReviewForm(forms.Form):
    """The review only confirms the activation; when the new terms raise warnings the operator
    must tick that they were read."""

    def __init__(self, *args, warnings=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.warnings = list(warnings)
        if self.warnings:
            self.fields["confirm_warnings"] = forms.BooleanField(
                label="I have read the warnings above and want to activate these terms",
                error_messages={"required": "Confirm the warnings above to activate."},
            )
