"""The loan modification wizard (django-formtools), in the admin's look.

Steps: ``date`` -> ``transactions`` (the pre-mod test as a checklist) -> ``terms`` (with a
schedule preview) -> ``roll`` (optional) -> ``review`` (old and new schedules side by side and a
balance chart) -> activation in ``done()``. Every step persists through the same commands as the
API: ``create_modification``, ``update_setup``, ``roll_payment``, ``activate_modification``; a
``DomainError`` re-renders the step with its message. The storage prefix carries the loan id, so
two tabs on two loans never share state; a GET derives the starting step from the draft, so
leaving and coming back resumes it.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from formtools.wizard.views import SessionWizardView

from loans import selectors as loan_selectors
from loans import services as loan_services
from loans.admin_messages import message_for, show_error
from loans.exceptions import DomainError
from loans.formatting import money
from loans.forms import error_sentences, form_labels
from loans.models import LoanEvent
from loans.selectors import get_business_date
from modifications import selectors, services
from modifications.forms import (
    ModificationDateForm,
    PersistentTransactionsForm,
    ReviewForm,
    RollPaymentForm,
    TermsForm,
)
from servicing.models import ScheduledPayment, ScheduledPaymentStatus

STEP_TITLES = {
    "date": "Modification date",
    "transactions": "Transactions after the date",
    "terms": "New terms",
    "roll": "Roll payment (optional)",
    "review": "Review",
}
TERMS_FIELDS = list(TermsForm.base_fields)
DEFAULT_RATE_WARNING_PERCENT = Decimal("36")


def rate_warning_percent() -> Decimal:
    """The rate above which the review warns (``MODIFICATION_RATE_WARNING_PERCENT``)."""
    return Decimal(
        str(getattr(settings, "MODIFICATION_RATE_WARNING_PERCENT", DEFAULT_RATE_WARNING_PERCENT))
    )


def review_warnings(draft) -> list[str]:
    """What the operator must confirm before activating: terms that are accepted but are
    probably a typing mistake."""
    if draft is None:
        return []
    setup, warnings = draft.setup, []
    carried = draft.carried_total
    if setup.payment is not None and setup.payment > carried:
        warnings.append(
            f"The payment {money(setup.payment)} is above the balance carried into the "
            f"modification ({money(carried)}): the first installment would pay it all."
        )
    if setup.loan_term < 1:
        warnings.append(
            f"The term {setup.loan_term.normalize():f} is under one installment: the loan would "
            "be repaid by a single partial installment."
        )
    cap = rate_warning_percent()
    if setup.loan_rate > cap:
        warnings.append(
            f"The rate {setup.loan_rate.normalize():f} % is above {cap.normalize():f} % a year."
        )
    return warnings


class StepFailed(Exception):
    """A command refused a step's input; the step is re-rendered with the message."""

    def __init__(self, form):
        super().__init__()
        self.form = form


def storage_prefix(loan) -> str:
    return f"modify_loan_{loan.pk}"


def clear_wizard(request, loan) -> None:
    request.session.pop(f"wizard_{storage_prefix(loan)}", None)


def _step_data(step: str, values: dict) -> dict:
    data = {}
    for name, value in values.items():
        if value is None:
            value = ""
        items = value if isinstance(value, list) else [value]
        data[f"{step}-{name}"] = [
            v.isoformat() if hasattr(v, "isoformat") else str(v) for v in items
        ]
    return data


def _terms_values(setup) -> dict:
    values = {name: getattr(setup, name) for name in TERMS_FIELDS}
    if not setup.payment_is_given:
        values["payment"] = None
    values["loan_term"] = setup.loan_term.normalize()
    return values


class ModificationWizard(SessionWizardView):
    form_list = [
        ("date", ModificationDateForm),
        ("transactions", PersistentTransactionsForm),
        ("terms", TermsForm),
        ("roll", RollPaymentForm),
        ("review", ReviewForm),
    ]
    template_name = "admin/modifications/modification_wizard.html"
    model_admin = None
    loan = None

    def get_prefix(self, request, *args, **kwargs):
        return storage_prefix(self.loan)

    def dispatch(self, request, *args, **kwargs):
        if not request.user.has_perm("loans.modify_loan"):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    # ------------------------------------------------------------------ state

    def draft(self):
        if not hasattr(self, "_draft"):
            self._draft = selectors.draft_modification(self.loan)
        return self._draft

    def forget_draft(self):
        if hasattr(self, "_draft"):
            del self._draft

    def resume_step(self, draft) -> str:
        """Where a draft stands: terms saved -> roll; payment rolled -> review."""
        done = set(
            LoanEvent.objects.filter(
                loan=self.loan,
                created_at__gte=draft.created_at,
                command__in=["update_setup", "roll_payment"],
            ).values_list("command", flat=True)
        )
        if "roll_payment" in done:
            return "review"
        if "update_setup" in done:
            return "roll"
        return "terms"

    def get(self, request, *args, **kwargs):
        self.storage.reset()
        draft = self.draft()
        if draft is None:
            self.storage.current_step = self.steps.first
            return self.render(self.get_form())
        # Resume: the steps already persisted in the draft are filled from it.
        self.storage.set_step_data(
            "date", _step_data("date", {"modification_date": draft.modification_date})
        )
        self.storage.set_step_data(
            "transactions",
            _step_data("transactions", {"keep": [str(i) for i in draft.persistent_ids]}),
        )
        step = self.resume_step(draft)
        if step in ("roll", "review"):
            self.storage.set_step_data("terms", _step_data("terms", _terms_values(draft.setup)))
        if step == "review":
            self.storage.set_step_data(
                "roll", _step_data("roll", {"amount": None, "method": services.ROLL_TERM_EXACT})
            )
        self.storage.current_step = step
        return self.render(
            self.get_form(data=self.storage.get_step_data(step))
            if step != "terms"
            else self.get_form()
        )

    def post(self, *args, **kwargs):
        posted = self.request.POST.get(f"{self.prefix}-current_step")
        if self.storage.current_step is None and posted not in (None, self.steps.first):
            # The wizard's state was cleared since this page was shown (the modification was
            # cancelled or activated from another tab): formtools would bind this step's data
            # to the date step ("This field is required.").
            messages.warning(
                self.request,
                f"The modification of {self.loan} was cancelled or activated on another page "
                "since this step was shown; nothing was saved. Start again from the date.",
            )
            self.storage.current_step = self.steps.first
            return self.render(self.get_form())
        if self.request.POST.get("_preview") and self.storage.current_step == "terms":
            return self.render_preview()
        try:
            return super().post(*args, **kwargs)
        except StepFailed as exc:
            return self.render(exc.form)

    def render_goto_step(self, goto_step, **kwargs):
        """Back to the terms: show the draft's terms as they are now (a roll may have changed
        them since the step was submitted), not the stale submitted data."""
        if goto_step == "terms" and self.draft() is not None:
            self.storage.current_step = goto_step
            return self.render(self.get_form(), **kwargs)
        return super().render_goto_step(goto_step, **kwargs)

    # ------------------------------------------------------------------ forms

    def get_form_kwargs(self, step=None):
        if step == "transactions":
            cleaned = self.get_cleaned_data_for_step("date") or {}
            return {"loan": self.loan, "on": cleaned.get("modification_date")}
        if step == "review":
            return {"warnings": review_warnings(self.draft())}
        return {}

    def get_form_initial(self, step):
        if step == "date":
            draft = self.draft()
            return {"modification_date": draft.modification_date} if draft else {}
        if step == "transactions":
            form = PersistentTransactionsForm(**self.get_form_kwargs(step))
            return {"keep": [value for value, _label in form.fields["keep"].choices]}
        if step == "terms" and self.draft() is not None:
            return _terms_values(self.draft().setup)
        if step == "roll":
            return {"method": services.ROLL_TERM_EXACT}
        return {}

    def process_step(self, form):
        step = self.steps.current
        try:
            if step == "date":
                services.check_modification_date(
                    loan=self.loan, on=form.cleaned_data["modification_date"]
                )
            elif step == "transactions":
                self.save_transactions(form)
            elif step == "terms":
                loan_services.update_setup(
                    setup=self.require_draft().setup,
                    changes=form.changes(),
                    actor=self.request.user,
                )
            elif step == "roll" and form.cleaned_data.get("amount"):
                self.require_draft()
                services.roll_payment(
                    loan=self.loan,
                    amount=form.cleaned_data["amount"],
                    method=form.cleaned_data["method"],
                    actor=self.request.user,
                )
        except DomainError as exc:
            show_error(self.request, exc, form=form)
            raise StepFailed(form)
        self.forget_draft()
        return super().process_step(form)

    def require_draft(self):
        draft = self.draft()
        if draft is None:
            raise services.NoModificationError(
                "There is no modification in progress any more; start again from the date.",
                code="no_modification_in_progress",
            )
        return draft

    def save_transactions(self, form):
        """Start the draft, or replace it when the date or the kept transactions changed."""
        dated = self.get_cleaned_data_for_step("date")
        if not dated:
            form.add_error(None, "Start from the modification date.")
            raise StepFailed(form)
        return services.replace_modification(
            loan=self.loan,
            modification_date=dated["modification_date"],
            persistent_transactions=form.persistent(),
            actor=self.request.user,
        )

    # ------------------------------------------------------------------ rendering

    def render_preview(self):
        form = self.get_form(data=self.request.POST)
        preview = None
        if form.is_valid():
            draft = self.draft()
            if draft is None:
                form.add_error(None, "There is no modification in progress any more.")
            else:
                try:
                    preview = selectors.preview_rows(draft, form.changes())
                except DomainError as exc:
                    show_error(self.request, exc, form=form)
        return self.render(form, preview_rows=preview, previewed=True)

    def get_context_data(self, form, **kwargs):
        context = super().get_context_data(form=form, **kwargs)
        loan = self.loan
        step = self.steps.current
        draft = self.draft()
        context.update(
            self.model_admin.admin_site.each_context(self.request),
            opts=self.model_admin.model._meta,
            loan=loan,
            original=loan,
            has_view_permission=True,
            loan_url=reverse("admin:loans_loan_change", args=[loan.pk]),
            cancel_url=reverse("admin:loans_loan_cancel_modification", args=[loan.pk]),
            preview_url=reverse("admin:loans_loan_modify_preview", args=[loan.pk]),
            title=f"Modify {loan}",
            subtitle=STEP_TITLES[step],
            step_titles=[(name, STEP_TITLES[name]) for name in self.get_form_list()],
            draft=draft,
            as_of=get_business_date(),
        )
        if step == "terms" and draft is not None and not kwargs.get("previewed"):
            context["preview_rows"] = selectors.preview_rows(draft)
        if step in ("roll", "review") and draft is not None:
            context["setup"] = draft.setup
        if step == "review" and draft is not None:
            old = selectors.current_rows(loan)
            new = selectors.preview_rows(draft)
            context.update(
                comparison=selectors.compare(old, new),
                old_totals=selectors.totals(old, after=draft.modification_date),
                new_totals=selectors.totals(new, after=draft.modification_date),
                chart=selectors.balance_chart(
                    old,
                    new,
                    modification_date=draft.modification_date,
                    carried=draft.setup.loan_amount,
                ),
                activation=self.activation_preview(),
                reversed_preview=[
                    item
                    for group, items in selectors.pre_modification_test(
                        loan=loan, on=draft.modification_date
                    ).items()
                    for item in items
                    if int(item["id"]) not in set(draft.persistent_ids)
                ],
            )
        return context

    def activation_preview(self) -> dict:
        """Delinquency before and after, and the pending scheduled payments the activation
        moves, read from a dry run of the activation itself."""
        loan, as_of = self.loan, get_business_date()

        def state(current):
            return {
                "summary": loan_selectors.loan_summary(current, as_of=as_of),
                "pending": {
                    p.pk: p
                    for p in ScheduledPayment.objects.filter(
                        loan=current, status=ScheduledPaymentStatus.PENDING
                    ).order_by("scheduled_date", "pk")
                },
            }

        before = state(loan)
        try:
            after = services.preview_activation(loan=loan, actor=self.request.user, inspect=state)
        except DomainError as exc:
            return {"before": before["summary"], "error": message_for(exc)[1]}
        moved = []
        for pk, old in before["pending"].items():
            new = after["pending"].get(pk)
            if new is None:
                moved.append({"payment": old, "to": None})
            elif (new.scheduled_date, new.amount) != (old.scheduled_date, old.amount):
                moved.append({"payment": old, "to": new})
        return {"before": before["summary"], "after": after["summary"], "moved": moved}

    def done(self, form_list, **kwargs):
        try:
            result = services.activate_modification(loan=self.loan, actor=self.request.user)
        except DomainError as exc:
            show_error(self.request, exc)
            return HttpResponseRedirect(reverse("admin:loans_loan_modify", args=[self.loan.pk]))
        if result.activated:
            messages.success(
                self.request,
                f"The modification of {self.loan} is active; its new schedule is in force.",
            )
        else:
            messages.warning(self.request, f"{self.loan} had no modification to activate.")
        return HttpResponseRedirect(reverse("admin:loans_loan_change", args=[self.loan.pk]))


def modify_loan_view(model_admin, request, loan):
    """``/admin/loans/loan/<id>/modify/`` (registered with ``register_loan_view``)."""
    return ModificationWizard.as_view(model_admin=model_admin, loan=loan)(request)


def schedule_preview_view(model_admin, request, loan):
    """The live preview of the terms step: the schedule the terms in the query string would
    produce, as an HTML fragment (nothing is saved)."""
    if not request.user.has_perm("loans.modify_loan"):
        raise PermissionDenied
    draft = selectors.draft_modification(loan)
    form = TermsForm(request.GET, prefix="terms")
    rows, errors = None, []
    if draft is None:
        errors = ["There is no modification in progress."]
    elif not form.is_valid():
        errors = error_sentences(form)
    else:
        try:
            rows = selectors.preview_rows(draft, form.changes())
        except DomainError as exc:
            errors = [message_for(exc, labels=form_labels(form))[1]]
    return TemplateResponse(
        request,
        "admin/modifications/schedule_preview.html",
        {"preview_rows": rows, "errors": errors, "previewed": True},
    )


def cancel_modification_view(model_admin, request, loan):
    """Confirm and cancel the newest modification (a draft or an activated one)."""
    if not request.user.has_perm("loans.modify_loan"):
        raise PermissionDenied
    newest = selectors.newest_modification(loan)
    if request.method == "POST":
        try:
            modification = services.cancel_modification(loan=loan, actor=request.user)
        except DomainError as exc:
            show_error(request, exc)
        else:
            model_admin.message_user(
                request,
                f"Modification {modification.pk} of {loan} cancelled.",
                messages.SUCCESS,
            )
        clear_wizard(request, loan)
        return model_admin.back_to_loan(loan)
    if newest is None:
        question = "This loan has no modification to cancel."
    elif newest.status == "DRAFT":
        question = (
            f"Abandon the modification in progress (dated {newest.modification_date:%Y-%m-%d})? "
            "Its draft terms are discarded; nothing else changes."
        )
    else:
        question = (
            f"Cancel the activated modification dated {newest.modification_date:%Y-%m-%d}? The "
            "previous terms and schedule are restored and the transactions it reversed are "
            "reinstated."
        )
    return model_admin.render_command(
        request,
        loan,
        "admin/loans/loan/confirm_command.html",
        {
            "title": f"Cancel modification of {loan}",
            "question": question,
            "confirm_label": "Yes, cancel the modification",
        },
    )


def activate_modification_view(model_admin, request, loan):
    """Confirm and activate the loan's draft modification (``activate_modification``)."""
    if not request.user.has_perm("loans.modify_loan"):
        raise PermissionDenied
    if request.method == "POST":
        try:
            result = services.activate_modification(loan=loan, actor=request.user)
        except DomainError as exc:
            show_error(request, exc)
        else:
            if result.activated:
                model_admin.message_user(
                    request,
                    f"The modification of {loan} is active; its new schedule is in force.",
                    messages.SUCCESS,
                )
            else:
                model_admin.message_user(request, f"{loan} had no modification to activate.")
            clear_wizard(request, loan)
        return model_admin.back_to_loan(loan)
    return model_admin.render_command(
        request,
        loan,
        "admin/loans/loan/confirm_command.html",
        {
            "title": f"Activate the modification of {loan}",
            "question": "Put the draft terms in force from the modification date?",
            "confirm_label": "Yes, activate the modification",
        },
    )
