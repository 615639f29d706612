"""The admin's activate page: a PENDING loan is activated by the core (``activate_loan``, under
``post_transaction``), a draft modification by ``activate_modification`` (under
``modify_loan``); neither runs under the other's permission (issue 9's defect: a user with
``post_transaction`` only activated a modification through the admin)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from loans.models import LoanEvent, LoanStatus, Schedule, Transaction, TransactionType
from modifications import services
from modifications.models import Modification, ModificationStatus
from tests.factories import make_loan, set_business_date
from tests.modifications.conftest import MOD_DATE

pytestmark = pytest.mark.django_db


def staff_with(django_user_model, *codenames, username):
    user = django_user_model.objects.create_user(
        username=username, password="pass-123-pass", is_staff=True
    )
    user.user_permissions.add(
        *Permission.objects.filter(codename__startswith="view_"),
        *Permission.objects.filter(content_type__app_label="loans", codename__in=codenames),
    )
    return django_user_model.objects.get(pk=user.pk)


def activate_url(loan) -> str:
    return f"/admin/loans/loan/{loan.pk}/activate/"


@pytest.fixture
def pending(operator):
    set_business_date(date(2026, 2, 18))
    return make_loan(actor=operator, external_id="ACT-PENDING")


@pytest.fixture
def draft(operator, modifiable):
    services.create_modification(loan=modifiable, modification_date=MOD_DATE, actor=operator)
    modifiable.refresh_from_db()
    return modifiable


def test_pending_loan_activated_with_post_transaction(client, django_user_model, pending):
    client.force_login(staff_with(django_user_model, "post_transaction", username="poster"))
    assert client.get(activate_url(pending)).status_code == 200
    response = client.post(activate_url(pending))
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == LoanStatus.ACTIVE
    disbursement = Transaction.objects.get(loan=pending)
    assert (disbursement.type, disbursement.amount, disbursement.date) == (
        TransactionType.DISBURSEMENT,
        Decimal("1000.00"),
        date(2026, 1, 1),
    )
    assert list(Schedule.objects.filter(loan=pending).values_list("version", flat=True)) == [1]
    assert LoanEvent.objects.filter(loan=pending, command="activate_loan").count() == 1


def test_pending_loan_refused_without_post_transaction(client, django_user_model, pending):
    client.force_login(staff_with(django_user_model, "modify_loan", username="modifier"))
    assert client.get(activate_url(pending)).status_code == 403
    assert client.post(activate_url(pending)).status_code == 403
    pending.refresh_from_db()
    assert pending.status == LoanStatus.PENDING
    assert not Transaction.objects.filter(loan=pending).exists()
    assert not Schedule.objects.filter(loan=pending).exists()
    assert list(LoanEvent.objects.filter(loan=pending).values_list("command", flat=True)) == [
        "create_loan"
    ]


def test_draft_modification_activated_with_modify_loan(client, django_user_model, draft):
    client.force_login(staff_with(django_user_model, "modify_loan", username="modifier"))
    assert client.get(activate_url(draft)).status_code == 200
    response = client.post(activate_url(draft))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.mod_total, draft.modification_in_progress) == (1, False)
    modification = Modification.objects.get(loan=draft)
    assert modification.status == ModificationStatus.ACTIVE
    assert draft.setup_id == modification.setup_id
    assert LoanEvent.objects.filter(loan=draft, command="activate_modification").count() == 1


def test_draft_modification_refused_with_post_transaction_only(client, django_user_model, draft):
    """The defect of issue 9: ``post_transaction`` + ``view_loan`` without ``modify_loan``."""
    client.force_login(staff_with(django_user_model, "post_transaction", username="poster"))
    events = LoanEvent.objects.filter(loan=draft).count()
    for url in (activate_url(draft), f"/admin/loans/loan/{draft.pk}/activate-modification/"):
        assert client.get(url).status_code == 403
        assert client.post(url).status_code == 403
    draft.refresh_from_db()
    assert (draft.mod_total, draft.modification_in_progress) == (0, True)
    assert Modification.objects.get(loan=draft).status == ModificationStatus.DRAFT
    assert LoanEvent.objects.filter(loan=draft).count() == events


def test_api_refuses_the_same_user(django_user_model, draft):
    from tests.conftest import token_client

    api = token_client(staff_with(django_user_model, "post_transaction", username="poster"))
    response = api.post(f"/api/v1/loans/{draft.pk}/activate", format="json")
    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.mod_total == 0
