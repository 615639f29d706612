"""Every API operation x {anonymous, authenticated without the permission, permitted}, the two
staff groups, and the admin's command pages (issue 6).

The operations come from the OpenAPI schema (``tests.api_catalog``), so an operation added later
is checked without editing this file. ``EXPECTED`` holds the exceptions to the default rule:

* anonymous -> 401 everywhere;
* authenticated without the permission (a "Servicing viewer") -> 403 on commands (unsafe
  methods); reads -> 200, or 404 for a path parameter this file has no value for;
* permitted (a "Servicing operator") -> anything but 401, 403 and 5xx.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from loans.groups import COMMAND_CODENAMES, OPERATOR_GROUP, VIEWER_GROUP
from loans.models import Transaction, TransactionType
from tests.api_catalog import UNSAFE, api_operations, fill, is_public
from tests.conftest import token_client

pytestmark = pytest.mark.django_db

# (METHOD, path template) -> {"anonymous" | "viewer" | "operator": expected status or set}
EXPECTED: dict[tuple[str, str], dict] = {
    # Public: the empty body is invalid whoever sends it.
    ("POST", "/api/v1/auth/token"): {"anonymous": 400, "viewer": 400, "operator": 400},
    # A read for every authenticated user (the admin's Portfolio page shows the same figures).
    ("GET", "/api/v1/portfolio/summary"): {"anonymous": 401, "viewer": 200, "operator": 200},
}

OPERATIONS = api_operations()


@pytest.fixture
def group_users(django_user_model):
    """Users who hold their permissions through the groups the migration created."""
    users = {}
    for role, group in (("viewer", VIEWER_GROUP), ("operator", OPERATOR_GROUP)):
        user = django_user_model.objects.create_user(
            username=f"group-{role}", password="a-long-pass-123", is_staff=True
        )
        user.groups.add(Group.objects.get(name=group))
        users[role] = user
    return users


@pytest.fixture
def path_values(baseline_b):
    repayment = Transaction.objects.filter(loan=baseline_b, type=TransactionType.REPAYMENT).first()
    return {
        "loan_id": baseline_b.pk,
        "external_id": baseline_b.external_id,
        "tx_id": repayment.pk,
        "setup_id": baseline_b.setup_id,
    }


# Query parameters an operation needs to get past validation (its permission is what is tested).
QUERY = {"/modifications/pre-mod-test": "date=2026-02-18"}


def call(client, method: str, url: str):
    query = next((q for suffix, q in QUERY.items() if url.endswith(suffix)), None)
    if query:
        url = f"{url}?{query}"
    return getattr(client, method.lower())(url, {} if method in UNSAFE else None, format="json")


def test_the_schema_lists_every_loan_core_operation():
    assert len(OPERATIONS) >= 26
    assert ("POST", "/api/v1/loans/{loan_id}/transactions") in OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_anonymous(anon_api, path_values, method, path):
    expected = EXPECTED.get((method, path), {}).get("anonymous", 401)
    response = call(anon_api, method, fill(path, path_values))
    assert response.status_code == expected, response.content
    body = response.json()
    assert set(body) == {"code", "detail", "errors"}
    if expected == 401:
        assert body["code"] == "not_authenticated"
        assert response.headers["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_authenticated_without_the_permission(group_users, path_values, method, path):
    default = 403 if method in UNSAFE and not is_public(method, path) else {200, 404}
    expected = EXPECTED.get((method, path), {}).get("viewer", default)
    response = call(token_client(group_users["viewer"]), method, fill(path, path_values))
    if isinstance(expected, set):
        assert response.status_code in expected, response.content
        if response.status_code == 404:
            assert "{" in path  # only an unknown path parameter may be missing
    else:
        assert response.status_code == expected, response.content
    if response.status_code == 403:
        assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_permitted(group_users, path_values, method, path):
    client = token_client(group_users["operator"])
    client.raise_request_exception = False
    response = call(client, method, fill(path, path_values))
    expected = EXPECTED.get((method, path), {}).get("operator")
    if expected is not None:
        assert response.status_code == expected, response.content
    assert response.status_code not in (401, 403), response.content
    assert response.status_code < 500, response.content


def test_the_groups_hold_exactly_their_permissions():
    operator = Group.objects.get(name=OPERATOR_GROUP)
    viewer = Group.objects.get(name=VIEWER_GROUP)
    view_perms = set(
        Permission.objects.filter(
            content_type__app_label__in=["loans", "servicing", "modifications"],
            codename__startswith="view_",
        )
        .exclude(codename="view_idempotencyrecord")
        .values_list("content_type__app_label", "codename")
    )
    commands = {("loans", c) for c in COMMAND_CODENAMES}
    assert {
        (p.content_type.app_label, p.codename) for p in operator.permissions.all()
    } == commands | view_perms
    assert {(p.content_type.app_label, p.codename) for p in viewer.permissions.all()} == view_perms
    assert ("loans", "view_loan") in view_perms


def test_sync_after_migrate_is_idempotent_and_grants_new_view_permissions():
    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType

    from loans.groups import sync_groups_after_migrate

    # A model another app adds later: its view permission appears after a later migrate.
    content_type, _ = ContentType.objects.get_or_create(app_label="servicing", model="future")
    later = Permission.objects.create(
        content_type=content_type, codename="view_future", name="Can view future"
    )
    for _ in range(2):
        sync_groups_after_migrate(sender=None, app_config=apps.get_app_config("servicing"))

    assert later in Group.objects.get(name=VIEWER_GROUP).permissions.all()
    assert later in Group.objects.get(name=OPERATOR_GROUP).permissions.all()
    assert Group.objects.filter(name__in=[VIEWER_GROUP, OPERATOR_GROUP]).count() == 2


# ------------------------------------------------------------------ admin


def test_admin_hides_command_buttons_without_the_permission(client, viewer, operator, baseline_b):
    url = f"/admin/loans/loan/{baseline_b.pk}/change/"
    client.force_login(viewer)
    page = client.get(url)
    assert page.status_code == 200
    assert b"post-repayment/" not in page.content

    client.force_login(operator)
    assert b"post-repayment/" in client.get(url).content


def test_admin_refuses_a_forced_command(client, viewer, baseline_b):
    client.force_login(viewer)
    before = Transaction.objects.count()
    url = f"/admin/loans/loan/{baseline_b.pk}/post-repayment/"

    assert client.get(url).status_code == 403
    response = client.post(url, {"transaction_date": "2026-02-18", "amount": "10.00"})

    assert response.status_code == 403
    assert Transaction.objects.count() == before


def test_admin_commands_need_the_csrf_token(operator, baseline_b):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    before = Transaction.objects.count()

    response = client.post(
        f"/admin/loans/loan/{baseline_b.pk}/post-repayment/",
        {"transaction_date": "2026-02-18", "amount": "10.00"},
    )

    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert Transaction.objects.count() == before


def test_session_authenticated_api_commands_need_the_csrf_token(operator, baseline_b):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post(
        f"/api/v1/loans/{baseline_b.pk}/transactions?command=repayment",
        {"transactionDate": "2026-02-18", "transactionAmount": "10.00"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "CSRF" in response.json()["detail"]
