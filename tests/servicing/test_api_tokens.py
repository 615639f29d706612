"""API tokens (issue 16, finding 7): hashed at rest, expiring after ``API_TOKEN_TTL``, dead after
a password change; the wire format stays ``POST /auth/token`` -> ``{token}`` and
``Authorization: Token <key>``."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from loans.models import IdempotencyRecord
from servicing.models import ApiToken

pytestmark = pytest.mark.django_db

LOGIN = {"username": "operator", "password": "operator-pass-123"}
ISSUED = datetime(2026, 2, 18, 9, 0, tzinfo=UTC)


def login(client: APIClient, body=LOGIN) -> str:
    response = client.post("/api/v1/auth/token", body, format="json")
    assert response.status_code == 200, response.content
    assert list(response.json()) == ["token"]
    return response.json()["token"]


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def assert_401(response, detail: str) -> None:
    assert response.status_code == 401, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"code": "authentication_failed", "detail": detail, "errors": []}
    assert response["WWW-Authenticate"] == "Token"


def all_text_in_database() -> str:
    """Every value of every table, as text: the raw key must be in none of them."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_the_key_is_stored_only_as_its_sha256(anon_api, operator, business_date):
    key = login(anon_api, LOGIN)
    assert re.fullmatch(r"[0-9a-f]{40}", key)
    token = ApiToken.objects.get()
    assert token.user == operator
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    assert token.prefix == key[:8]
    assert key not in all_text_in_database()
    assert with_token(key).get("/api/v1/business-date").json() == {"date": "2026-02-18"}


def test_each_login_issues_a_new_key_and_an_idempotency_key_stores_none(anon_api, operator):
    first = login(anon_api)
    response = anon_api.post(
        "/api/v1/auth/token", LOGIN, format="json", HTTP_IDEMPOTENCY_KEY="login-1"
    )
    second = response.json()["token"]
    assert first != second
    assert "Idempotent-Replayed" not in response
    assert ApiToken.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 0
    assert second not in all_text_in_database()


def test_an_unknown_key_is_refused(operator):
    assert_401(with_token("0" * 40).get("/api/v1/business-date"), "Invalid token.")


def test_a_token_expires_after_the_ttl(anon_api, operator, business_date, settings):
    settings.API_TOKEN_TTL = timedelta(hours=10)
    with time_machine.travel(ISSUED, tick=False):
        key = login(anon_api)
    assert ApiToken.objects.get().expires_at == ISSUED + timedelta(hours=10)
    client = with_token(key)
    with time_machine.travel(ISSUED + timedelta(hours=10) - timedelta(seconds=1), tick=False):
        assert client.get("/api/v1/business-date").status_code == 200
    with time_machine.travel(ISSUED + timedelta(hours=10), tick=False):
        assert_401(client.get("/api/v1/business-date"), "Token has expired; ask for a new one.")
        assert ApiToken.objects.count() == 0  # deleted when presented
        # A new login gives a new, working token.
        assert with_token(login(anon_api)).get("/api/v1/business-date").status_code == 200


def test_a_login_deletes_the_users_expired_tokens(anon_api, operator, viewer, settings):
    settings.API_TOKEN_TTL = timedelta(minutes=5)
    with time_machine.travel(ISSUED, tick=False):
        login(anon_api)
        login(anon_api, {"username": "viewer", "password": "viewer-pass-123"})
    with time_machine.travel(ISSUED + timedelta(minutes=6), tick=False):
        login(anon_api)
    assert sorted(ApiToken.objects.values_list("user__username", flat=True)) == [
        "operator",
        "viewer",
    ]


def test_a_password_change_kills_the_users_tokens(anon_api, operator, viewer, business_date):
    first, second = login(anon_api), login(anon_api)
    viewer_key = login(anon_api, {"username": "viewer", "password": "viewer-pass-123"})
    operator.set_password("a-new-operator-pass-456")
    operator.save()
    assert_401(
        with_token(first).get("/api/v1/business-date"),
        "Token is no longer valid: the password has changed.",
    )
    # Every token of the user is deleted at the first refusal; the viewer's lives on.
    assert list(ApiToken.objects.values_list("user__username", flat=True)) == ["viewer"]
    assert_401(with_token(second).get("/api/v1/business-date"), "Invalid token.")
    assert with_token(viewer_key).get("/api/v1/business-date").status_code == 200
    new = login(anon_api, {"username": "operator", "password": "a-new-operator-pass-456"})
    assert with_token(new).get("/api/v1/business-date").status_code == 200


def test_a_password_change_in_the_admin_kills_the_users_tokens(
    client, anon_api, operator, django_user_model, business_date
):
    key = login(anon_api)
    admin = django_user_model.objects.create_superuser("root-admin", password="root-pass-123")
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{operator.pk}/password/",
        {
            "password1": "changed-in-admin-789",
            "password2": "changed-in-admin-789",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content[:500]
    assert_401(
        with_token(key).get("/api/v1/business-date"),
        "Token is no longer valid: the password has changed.",
    )


def test_an_inactive_users_token_is_refused(anon_api, operator):
    key = login(anon_api)
    operator.is_active = False
    operator.save()
    assert_401(with_token(key).get("/api/v1/business-date"), "User inactive or deleted.")


def test_an_admin_revokes_a_token_from_the_token_list(anon_api, operator, admin_client):
    key = login(anon_api)
    token = ApiToken.objects.get()
    page = admin_client.get("/admin/servicing/apitoken/")
    assert page.status_code == 200
    text = page.content.decode()
    assert token.prefix in text and key not in text
    assert admin_client.get("/admin/servicing/apitoken/add/").status_code == 403
    response = admin_client.post(
        "/admin/servicing/apitoken/",
        {"action": "delete_selected", "_selected_action": [token.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert ApiToken.objects.count() == 0
    assert_401(with_token(key).get("/api/v1/business-date"), "Invalid token.")
