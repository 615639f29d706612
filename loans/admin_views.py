"""The operator's pages of the loan core, beside ``loans.admin``: create a loan (with a live
schedule preview from the pure engine), post a charge, credit or advancement, reverse a
transaction from its row, and export the filtered changelist as CSV.

Like every admin page here they parse input, call one service and report; the per-loan pages
are plugged in with ``register_loan_view`` / ``register_loan_button``.
"""

from __future__ import annotations

import csv
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from loans import charts, selectors, services, terms
from loans.admin import (
    LoanAdmin,
    LoanButton,
    admin_url,
    loan_perm,
    register_loan_button,
    register_loan_view,
)
from loans.admin_messages import message_for, show_error
from loans.exceptions import DomainError
from loans.formatting import article, money, words
from loans.forms import (
    LoanCreateForm,
    ReversalForm,
    SetupTermsForm,
    TransactionForm,
    error_sentences,
    form_labels,
)
from loans.models import (
    PAYING_TYPES,
    USER_REVERSIBLE_TYPES,
    Loan,
    LoanStatus,
    TransactionType,
)
from loans.schedules import generate_schedule

# ------------------------------------------------------------------ create a loan


def _page(model_admin: LoanAdmin, request, template: str, context: dict):
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "has_view_permission": True,
            **context,
        },
    )


def preview_schedule(values: dict):
    """``(rows, totals)`` of the schedule the terms produce (nothing saved). Raises the
    services' ``InvalidRequestError`` for invalid terms."""
    cleaned = terms.validate_terms({**terms.SETUP_DEFAULTS, **values})
    schedule = generate_schedule(terms.terms_from(cleaned))
    rows = [
        {
            "period": p.number,
            "from_date": p.from_date,
            "due_date": p.due_date,
            "principal": p.principal,
            "interest": p.interest,
            "total": p.total,
            "balance_after": p.balance_after,
        }
        for p in schedule.periods
    ]
    totals = {
        "payment": schedule.payment,
        "count": len(rows),
        "interest": schedule.total_interest,
        "total": schedule.total,
        "maturity": rows[-1]["due_date"] if rows else None,
    }
    return rows, totals


def create_loan_view(model_admin: LoanAdmin, request):
    if not loan_perm(request, "post_transaction"):
        raise PermissionDenied
    as_of = selectors.get_business_date()
    form = LoanCreateForm(
        request.POST or None,
        initial={"contract_date": as_of},
    )
    preview = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            loan = services.create_loan(
                actor=request.user,
                setup=form.changes(),
                borrower_id=data["borrower_id"],
                borrower_data=form.borrower_data(),
                external_id=data["external_id"] or None,
                schedule_engine=data["schedule_engine"],
            )
        except DomainError as exc:
            show_error(request, exc, form=form)
        else:
            model_admin.message_user(
                request,
                f"Loan {loan} ({loan.external_id}) created for {loan.borrower}: pending, payment "
                f"{money(loan.setup.payment)}. Check the schedule, then activate it.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:loans_loan_change", args=[loan.pk]))
    if form.is_bound:
        preview = _preview_context(form)
    return _page(
        model_admin,
        request,
        "admin/loans/loan/create_loan.html",
        {
            "title": "Create a loan",
            "form": form,
            "as_of": as_of,
            "preview_url": reverse("admin:loans_loan_create_preview"),
            **(preview or {}),
        },
    )


def _preview_context(form) -> dict:
    """The preview of a bound form's terms: its rows, or the errors in the form's words."""
    terms_form = SetupTermsForm(form.data)
    if not terms_form.is_valid():
        return {"preview_errors": error_sentences(terms_form)}
    try:
        rows, totals = preview_schedule(terms_form.changes())
    except DomainError as exc:
        return {"preview_errors": [message_for(exc, labels=form_labels(terms_form))[1]]}
    return {"preview_rows": rows, "preview_totals": totals}


def create_preview_view(model_admin: LoanAdmin, request):
    """The live preview of the create page: an HTML fragment of the schedule the terms in the
    query string produce (the page's static script fetches it as the operator types)."""
    if not loan_perm(request, "post_transaction"):
        raise PermissionDenied

    class _Bound:
        data = request.GET

    return TemplateResponse(
        request,
        "admin/loans/loan/includes/new_schedule_preview.html",
        {**_preview_context(_Bound()), "previewed": True},
    )


# ------------------------------------------------------------------ transactions

TRANSACTION_PAGES = {
    TransactionType.REPAYMENT: ("post-repayment", "post_repayment", "Post repayment"),
    TransactionType.CHARGE: ("post-charge", "post_charge", "Post charge"),
    TransactionType.CREDIT: ("post-credit", "post_credit", "Post credit"),
    TransactionType.ADVANCEMENT: ("post-advancement", "post_advancement", "Post advancement"),
}
EXPLANATIONS = {
    TransactionType.REPAYMENT: "A payment received: allocated to the oldest installment first, "
    "fees, then interest, then principal.",
    TransactionType.CHARGE: "A fee assessed on the loan: it is due with the installment that "
    "holds its date.",
    TransactionType.CREDIT: "A credit that reduces the balance (not a payment received).",
    TransactionType.ADVANCEMENT: "Additional principal advanced: the schedule is re-derived.",
}


def _posted_message(tx, loan, as_of) -> str:
    text = f"{tx.type.capitalize()} of {money(tx.amount)} on {tx.date:%Y-%m-%d} posted"
    if tx.type in (TransactionType.REPAYMENT, TransactionType.CREDIT):
        return (
            f"{text}: principal {money(tx.principal_portion)}, interest "
            f"{money(tx.interest_portion)}, fees {money(tx.fees_portion)}."
        )
    outstanding = selectors.loan_summary(loan, as_of=as_of).total_outstanding
    return f"{text}; total outstanding now {money(outstanding)}."


def transaction_view(tx_type: str):
    def view(model_admin: LoanAdmin, request, loan: Loan):
        if not loan_perm(request, "post_transaction"):
            raise PermissionDenied
        as_of = selectors.get_business_date()
        form = TransactionForm(request.POST or None, initial={"transaction_date": as_of})
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            try:
                tx = services.post_transaction(
                    loan=loan,
                    type=tx_type,
                    on=data["transaction_date"],
                    amount=data["amount"],
                    external_id=data["external_id"] or None,
                    note=data["note"],
                    actor=request.user,
                    as_of=as_of,
                )
            except DomainError as exc:
                show_error(request, exc, form=form)
            else:
                model_admin.message_user(
                    request, _posted_message(tx, loan, as_of), messages.SUCCESS
                )
                return model_admin.back_to_loan(loan)
        label = TRANSACTION_PAGES[tx_type][2]
        return model_admin.render_command(
            request,
            loan,
            "admin/loans/loan/post_transaction.html",
            {
                "title": f"{label} on {loan}",
                "form": form,
                "summary": selectors.loan_summary(loan, as_of=as_of),
                "as_of": as_of,
                "explanation": EXPLANATIONS[tx_type],
                "submit_label": label,
                "form_id": f"{TRANSACTION_PAGES[tx_type][0]}-form",
            },
        )

    return view


def transaction_button(tx_type: str):
    _suffix, name, label = TRANSACTION_PAGES[tx_type]

    def button(request, loan: Loan) -> LoanButton | None:
        if (
            loan.status != LoanStatus.ACTIVE
            or loan.modification_in_progress
            or not loan_perm(request, "post_transaction")
            or (tx_type == TransactionType.ADVANCEMENT and loan.is_terminated)
        ):
            return None
        return LoanButton(label, admin_url(name, loan))

    return button


def reverse_transaction_view(model_admin: LoanAdmin, request, loan: Loan, tx_id: int):
    """Reverse one transaction of the loan (``reverse_transaction``), with a required note."""
    if not loan_perm(request, "post_transaction"):
        raise PermissionDenied
    tx = loan.transactions.filter(pk=tx_id).first()
    if tx is None:
        model_admin.message_user(request, f"{loan} has no transaction {tx_id}.", messages.ERROR)
        return model_admin.back_to_loan(loan)
    form = ReversalForm(request.POST or None)
    if form.is_bound and form.is_valid():
        try:
            services.reverse_transaction(
                loan=loan,
                transaction_id=tx.pk,
                actor=request.user,
                note=form.cleaned_data["note"],
                reversal_external_id=form.cleaned_data["reversal_external_id"] or None,
            )
        except DomainError as exc:
            show_error(request, exc, form=form)
        else:
            model_admin.message_user(
                request,
                f"{tx.type.capitalize()} {tx.pk} of {money(tx.amount)} on {tx.date:%Y-%m-%d} "
                f"reversed ({form.cleaned_data['note']}); the schedule is re-derived without it.",
                messages.SUCCESS,
            )
            return model_admin.back_to_loan(loan)
    refusal = None
    if tx.reversed:
        refusal = f"It was already reversed on {tx.reversed_on:%Y-%m-%d}."
    elif tx.type not in USER_REVERSIBLE_TYPES:
        refusal = f"{article(words(tx.type)).capitalize()} transaction cannot be reversed here."
    return model_admin.render_command(
        request,
        loan,
        "admin/loans/loan/reverse_transaction.html",
        {
            "title": f"Reverse transaction {tx.pk} of {loan}",
            "tx": tx,
            "form": form,
            "refusal": refusal,
        },
    )


def can_reverse(request, loan: Loan, tx) -> bool:
    return (
        not tx.reversed
        and tx.type in USER_REVERSIBLE_TYPES
        and not loan.modification_in_progress
        and loan_perm(request, "post_transaction")
    )


# ------------------------------------------------------------------ CSV export

CSV_HEADER = [
    "id",
    "displayId",
    "externalId",
    "borrower",
    "status",
    "subStatus",
    "servicingStatus",
    "scheduleEngine",
    "chargedOff",
    "delinquencyBucket",
    "principalOutstanding",
    "totalOutstanding",
    "amountPastDue",
    "daysPastDue",
]
CSV_FIELDS = [
    "id",
    "display_id",
    "external_id",
    "borrower__first_name",
    "borrower__last_name",
    "status",
    "sub_status",
    "servicing_status",
    "schedule_engine",
    "charged_off",
    "delinquency_bucket",
]
EXPORT_CHUNK = 500


class _Echo:
    """csv.writer's file: each ``writerow`` returns the line instead of storing it."""

    def write(self, value):
        return value


def export_rows(queryset, *, as_of):
    """The CSV lines of the loans, ``EXPORT_CHUNK`` at a time: the loans are read with
    ``iterator()`` (a server-side cursor on PostgreSQL) and each chunk's figures in one grouped
    query, so memory does not grow with the number of loans."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)

    def lines(chunk):
        figures = selectors.page_summaries([row[0] for row in chunk], as_of=as_of)
        out = []
        for pk, display, external, first, last, *states in chunk:
            f = figures.get(pk, {})
            oldest = f.get("oldest_past_due_date")
            out.append(
                writer.writerow(
                    [pk, display or "", external, f"{first} {last}".strip()]
                    + ["" if value is None else value for value in states]
                    + [
                        _plain(f.get("principal_outstanding")),
                        _plain(f.get("total_outstanding")),
                        _plain(f.get("amount_past_due")),
                        (as_of - oldest).days if oldest else 0,
                    ]
                )
            )
        return "".join(out)

    chunk: list[tuple] = []
    for row in queryset.values_list(*CSV_FIELDS).iterator(chunk_size=EXPORT_CHUNK):
        chunk.append(row)
        if len(chunk) == EXPORT_CHUNK:
            yield lines(chunk)
            chunk = []
    if chunk:
        yield lines(chunk)


def _plain(value) -> str:
    """A CSV amount: two decimals, no thousands separator (spreadsheets read it as a number)."""
    if value is None:
        return "0.00"
    return money(value).replace(",", "")


def export_csv_view(model_admin: LoanAdmin, request):
    """The loans of the changelist as filtered and searched (same query string), streamed."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    params = request.GET.copy()
    request.GET = params  # the changelist reads its filters from here
    changelist = model_admin.get_changelist_instance(request)
    queryset = changelist.get_queryset(request).order_by("pk")
    as_of = selectors.get_business_date()
    response = StreamingHttpResponse(
        export_rows(queryset, as_of=as_of), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="loans-{as_of:%Y-%m-%d}.csv"'
    return response


for _tx_type, (_suffix, _name, _label) in TRANSACTION_PAGES.items():
    register_loan_view(_suffix, transaction_view(_tx_type), _name)
    if _tx_type != TransactionType.REPAYMENT:  # the core's loan page has its own button
        register_loan_button(transaction_button(_tx_type))
register_loan_view(
    "transactions/<int:tx_id>/reverse", reverse_transaction_view, "reverse_transaction"
)


# ------------------------------------------------------------------ the loan page's chart


def paid_points(transactions) -> list[tuple]:
    """The cumulative amount the borrower paid in, one point per transaction that moves it:
    repayments, credits and payoffs add (PAYING_TYPES), credit-balance refunds give money back;
    reversed transactions count for nothing."""
    points, total = [], Decimal("0")
    for tx in transactions:
        if tx.reversed:
            continue
        if tx.type in PAYING_TYPES:
            total += tx.amount
        elif tx.type == TransactionType.CREDIT_BALANCE_REFUND:
            total -= tx.amount
        else:
            continue
        points.append((tx.date, total))
    return points


def balance_chart(loan: Loan, schedule, transactions) -> charts.Chart | None:
    """Outstanding principal along the current schedule (its balance after each installment)
    and the cumulative amount paid (paid_points), over the loan's life."""
    if schedule is None:
        return None
    periods = [p for p in schedule.periods.all() if not p.frozen]
    if not periods:
        return None
    start = periods[0].from_date
    opening = periods[0].balance_after + periods[0].principal_due
    outstanding = [(start, opening)] + [(p.due_date, p.balance_after) for p in periods]
    paid = [(start, Decimal("0"))] + paid_points(transactions)
    return charts.line_chart(
        "balance-chart",
        "Balance over time",
        [
            charts.Series("Principal outstanding (schedule)", outstanding),
            charts.Series("Paid (cumulative)", paid),
        ],
        width=760,
    )
