"""The audit trail (issue 6): every command appends exactly one LoanEvent naming the command,
the actor, the business date, its input and the field-level before/after values it changed;
the trail is read at GET /api/v1/loans/{id}/events (newest first) and shown read-only in the
admin. Nothing can add, edit or delete it through the API or the admin, a superuser included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import pytest
from django.test import Client

from loans import services
from loans.models import (
    Loan,
    LoanEvent,
    LoanStatus,
    LoanSubStatus,
    ServicingStatus,
    StopServicingReason,
    Transaction,
    TransactionType,
)
from modifications.models import Modification
from tests import test_concurrency as c
from tests.factories import set_business_date

pytestmark = pytest.mark.django_db


def _reverse(loan, operator):
    tx = Transaction.objects.get(loan=loan, type=TransactionType.REPAYMENT)
    services.reverse_transaction(
        loan=loan, transaction_id=tx.pk, actor=operator, note="x", as_of=c.AS_OF
    )


@dataclass(frozen=True)
class Command:
    name: str  # LoanEvent.command
    prepare: Callable  # (operator) -> loan
    run: Callable  # (loan, operator) -> None
    changes: Callable | dict = field(default_factory=dict)  # exact, or (loan_before) -> dict
    input: dict = field(default_factory=dict)  # items the input must contain
    on_loan: bool = True


def _mod_activation_changes(loan):
    draft = Modification.objects.get(loan=loan)
    return {
        "setup": [loan.setup_id, draft.setup_id],
        "modTotal": [0, 1],
        "modificationInProgress": [True, False],
        "modification.status": ["DRAFT", "ACTIVE"],
    }


def _mod_cancel_changes(loan):
    modification = Modification.objects.get(loan=loan)
    return {
        "modification.status": ["ACTIVE", "CANCELLED"],
        "setup": [modification.setup_id, modification.previous_setup_id],
        "modTotal": [1, 0],
        "reinstatedTransactionIds": [[], modification.reversed_transaction_ids],
    }


COMMANDS = [
    Command(
        "post_repayment",
        c._active,
        c._repay,
        input={"type": "REPAYMENT", "amount": "50.00", "date": "2026-02-18"},
    ),
    Command(
        "reverse_transaction",
        c._active_with_repayment,
        _reverse,
        changes={"transaction.reversed": [False, True]},
    ),
    Command(
        "activate_loan",
        c._pending,
        c._activate,
        changes={
            "status": [LoanStatus.PENDING, LoanStatus.ACTIVE],
            "setup.active": [False, True],
        },
    ),
    Command(
        "update_setup",
        c._pending,
        c._update_setup,
        changes={"loan_amount": ["1000.00", "1500.00"], "payment": ["88.85", "133.27"]},
        input={"loanAmount": "1500.00"},
    ),
    Command(
        "set_business_date",
        c._active,
        c._set_business_date,
        changes={"date": ["2026-02-18", "2026-02-19"]},
        input={"date": "2026-02-19"},
        on_loan=False,
    ),
    Command(
        "cancel_servicing",
        c.with_servicing_items,
        c._cancel_servicing,
        changes={
            "servicing_status": [ServicingStatus.ACTIVE, ServicingStatus.NOT_SERVICING],
            "stop_servicing_reason": [None, StopServicingReason.API_REQUEST],
        },
        input={"reason": StopServicingReason.API_REQUEST},
    ),
    Command(
        "resume_servicing",
        c.not_servicing,
        c._resume_servicing,
        changes={
            "servicing_status": [ServicingStatus.NOT_SERVICING, ServicingStatus.ACTIVE],
            "stop_servicing_reason": [StopServicingReason.API_REQUEST, None],
        },
        input={"note": "x"},
    ),
    Command(
        "schedule_payment",
        c._active,
        c._schedule_payment,
        input={"amount": "40.00", "scheduledDate": "2026-03-02", "method": "ACH"},
    ),
    Command(
        "terminate_contract",
        c._active,
        c._terminate,
        changes={
            "subStatus": [None, LoanSubStatus.CONTRACT_TERMINATION],
            "nextDueDate": ["2026-02-21", "2026-02-18"],  # collapsed onto the business date
            "outstanding": ["619.39", "619.39"],
        },
        input={"note": "x"},
    ),
    Command(
        "undo_contract_termination",
        c.terminated,
        c._undo_termination,
        changes={
            "subStatus": [LoanSubStatus.CONTRACT_TERMINATION, None],
            "transaction.reversed": [False, True],
            "nextDueDate": ["2026-02-18", "2026-02-21"],
            "outstanding": ["619.39", "619.39"],
        },
        input={"note": "x"},
    ),
    Command(
        "create_modification",
        c._active,
        c._create_modification,
        changes={"modificationInProgress": [False, True]},
        input={"modificationDate": "2026-02-07"},
    ),
    Command(
        "roll_payment",
        c.with_draft_modification,
        c._roll_payment,
        input={"amount": "60.00", "method": "loan.rollPayment.termExact"},
    ),
    Command(
        "activate_modification",
        c.with_draft_modification,
        c._activate_modification,
        changes=_mod_activation_changes,
    ),
    Command(
        "cancel_modification",
        c.with_draft_modification,
        c._cancel_modification,
        changes={
            "modification.status": ["DRAFT", "CANCELLED"],
            "modificationInProgress": [True, False],
        },
        input={"note": "x"},
    ),
    Command(
        "cancel_modification",
        c.with_active_modification,
        c._cancel_modification,
        changes=_mod_cancel_changes,
        input={"note": "x"},
    ),
]

IDS = [
    f"{cmd.name}{'' if i == 0 or COMMANDS[i - 1].name != cmd.name else ' (active)'}"
    for i, cmd in enumerate(COMMANDS)
]


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_every_command_writes_exactly_one_event(command, operator):
    set_business_date(c.AS_OF)
    loan = command.prepare(operator)
    loan = Loan.objects.get(pk=loan.pk)
    expected = command.changes(loan) if callable(command.changes) else command.changes
    last = LoanEvent.objects.order_by("-id").values_list("id", flat=True).first()

    command.run(Loan.objects.get(pk=loan.pk), operator)

    new = list(LoanEvent.objects.filter(id__gt=last))
    assert len(new) == 1, [e.command for e in new]
    (event,) = new
    assert event.command == command.name
    assert event.actor_id == operator.pk
    assert event.created_at is not None
    assert event.loan_id == (loan.pk if command.on_loan else None)
    assert event.business_date == (c.AS_OF if command.on_loan else date(2026, 2, 19))
    for key, value in command.input.items():
        assert event.input[key] == value, (key, event.input)
    if command.name == "roll_payment":  # the solved term and the given payment
        assert set(event.changes) == {"loan_term", "payment", "payment_is_given"}
        for before, after in event.changes.values():
            assert before != after
        assert event.changes["payment"][1] == "60.00"
        assert event.changes["payment_is_given"] == [False, True]
    else:
        assert event.changes == expected


def test_a_command_that_changes_nothing_writes_no_event(operator):
    set_business_date(c.AS_OF)
    loan = c.not_servicing(operator)
    before = LoanEvent.objects.count()
    result = c.servicing_services.cancel_servicing(loan=loan.pk, actor=operator, as_of=c.AS_OF)
    assert result.changed is False
    assert LoanEvent.objects.count() == before


def test_a_refused_command_writes_no_event(operator):
    set_business_date(c.AS_OF)
    loan = c._active(operator)
    before = LoanEvent.objects.count()
    with pytest.raises(services.ConflictError):
        services.undo_contract_termination(loan=loan, actor=operator, as_of=c.AS_OF)
    assert LoanEvent.objects.count() == before


# ------------------------------------------------------------------ API


@pytest.fixture
def traced(operator):
    """An active loan with a repayment, terminated: four events, oldest first."""
    set_business_date(c.AS_OF)
    loan = c._active_with_repayment(operator)
    c._terminate(loan, operator)
    return Loan.objects.get(pk=loan.pk)


@pytest.mark.parametrize("form", ["id", "external-id"])
def test_events_endpoint_lists_newest_first(api, traced, form, operator):
    base = (
        f"/api/v1/loans/{traced.pk}"
        if form == "id"
        else f"/api/v1/loans/external-id/{traced.external_id}"
    )
    response = api.get(f"{base}/events")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [e["command"] for e in body] == [
        "terminate_contract",
        "post_repayment",
        "activate_loan",
        "create_loan",
    ]
    assert [e["id"] for e in body] == sorted((e["id"] for e in body), reverse=True)
    assert {e["loanId"] for e in body} == {traced.pk}
    assert {e["actor"] for e in body} == {operator.username}
    newest = body[0]
    assert set(newest) == {
        "id",
        "loanId",
        "command",
        "actor",
        "createdAt",
        "businessDate",
        "reason",
        "input",
        "changes",
        "result",
    }
    assert newest["businessDate"] == "2026-02-18"
    assert newest["reason"] == "x"
    assert newest["changes"]["subStatus"] == [None, "CONTRACT_TERMINATION"]


def test_events_of_another_loan_and_loanless_events_are_not_listed(api, traced, operator):
    other = c._active(operator)
    c._set_business_date(other, operator)
    body = api.get(f"/api/v1/loans/{traced.pk}/events").json()
    assert len(body) == 4
    assert {e["loanId"] for e in body} == {traced.pk}


def test_events_of_an_unknown_loan_is_404(api, db):
    response = api.get("/api/v1/loans/999999/events")
    assert response.status_code == 404
    assert response.json()["code"] == "loan_not_found"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("form", ["id", "external-id"])
def test_events_endpoint_is_read_only(api, traced, method, form):
    base = (
        f"/api/v1/loans/{traced.pk}"
        if form == "id"
        else f"/api/v1/loans/external-id/{traced.external_id}"
    )
    before = list(LoanEvent.objects.order_by("id").values())
    response = getattr(api, method)(f"{base}/events", {"command": "x"}, format="json")
    assert response.status_code == 405, response.content
    body = response.json()
    assert body["code"] == "method_not_allowed"
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["errors"] == []
    assert list(LoanEvent.objects.order_by("id").values()) == before


def test_events_need_authentication(anon_api, traced):
    response = anon_api.get(f"/api/v1/loans/{traced.pk}/events")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# ------------------------------------------------------------------ admin


@pytest.fixture
def superuser_client(django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "root-pass-123")
    client = Client()
    client.force_login(user)
    return client


def test_loan_page_shows_the_events_read_only_newest_first(superuser_client, traced):
    html = superuser_client.get(f"/admin/loans/loan/{traced.pk}/change/").content.decode()
    section = html[html.index('id="loan-events"') :]
    section = section[: section.index("</fieldset>")]
    assert "Audit trail (newest first)" in section
    positions = [
        section.index(f"<td>{name}</td>")
        for name in ("terminate_contract", "post_repayment", "activate_loan", "create_loan")
    ]
    assert positions == sorted(positions)
    assert "<input" not in section and "<form" not in section and "<a " not in section


def test_event_admin_refuses_add_change_and_delete_for_a_superuser(superuser_client, traced):
    event = LoanEvent.objects.filter(loan=traced).first()
    before = list(LoanEvent.objects.order_by("id").values())
    base = "/admin/loans/loanevent"

    assert superuser_client.get(f"{base}/add/").status_code == 403
    assert superuser_client.post(f"{base}/add/", {"command": "forged"}).status_code == 403
    change = superuser_client.get(f"{base}/{event.pk}/change/")
    assert change.status_code == 200  # viewable ...
    html = change.content.decode()
    assert 'name="_save"' not in html and 'name="command"' not in html  # ... not editable
    forged = superuser_client.post(
        f"{base}/{event.pk}/change/", {"command": "forged", "reason": "forged"}
    )
    assert forged.status_code == 403
    assert superuser_client.get(f"{base}/{event.pk}/delete/").status_code == 403
    assert superuser_client.post(f"{base}/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    listing = superuser_client.get(f"{base}/")
    assert listing.status_code == 200
    assert f"{base}/add/" not in listing.content.decode()
    assert "delete_selected" not in listing.content.decode()
    bulk = superuser_client.post(
        f"{base}/", {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    assert list(LoanEvent.objects.order_by("id").values()) == before
