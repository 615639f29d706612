"""Shared fixtures: users with and without permissions, API clients, loan factories, and the
Playwright launch settings for Debian's chromium."""

from __future__ import annotations

import os
import shutil
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.test import APIClient

from servicing.tokens import issue_token
from tests.factories import make_active_loan, make_loan, set_business_date

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
COMMAND_PERMISSIONS = [
    "cancel_servicing",
    "resume_servicing",
    "terminate_contract",
    "modify_loan",
    "post_transaction",
    "set_business_date",
    "run_close_of_business",
    "manage_autopay",
    "charge_off",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


def pytest_configure(config):
    """Users are created with a password in most tests' fixtures, and Django's PBKDF2 costs
    ~0.45 s of CPU a hash here (a third of the suite's time): the tests hash with MD5. Nothing
    here tests the production hasher; the settings module keeps Django's default."""
    from django.conf import settings
    from django.contrib.auth import hashers

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    hashers.get_hashers.cache_clear()
    hashers.get_hashers_by_algorithm.cache_clear()


def pytest_collection_modifyitems(config, items):
    on_postgres = connection.vendor == "postgresql"
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL=postgres://...)")
    skip_browser = pytest.mark.skip(reason="needs /usr/bin/chromium")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if (
            "browser" in item.keywords
            and not shutil.which("chromium")
            and not os.path.exists(CHROMIUM)
        ):
            item.add_marker(skip_browser)


@pytest.fixture
def operator(django_user_model):
    """A staff user holding every command permission (not a superuser)."""
    user = django_user_model.objects.create_user(
        username="operator", password="operator-pass-123", is_staff=True
    )
    perms = Permission.objects.filter(
        content_type__app_label="loans", codename__in=COMMAND_PERMISSIONS
    )
    view_perms = Permission.objects.filter(codename__startswith="view_")
    user.user_permissions.add(*perms, *view_perms)
    return django_user_model.objects.get(pk=user.pk)


@pytest.fixture
def viewer(django_user_model):
    """A staff user who may read but run no command."""
    user = django_user_model.objects.create_user(
        username="viewer", password="viewer-pass-123", is_staff=True
    )
    user.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    return django_user_model.objects.get(pk=user.pk)


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return client


@pytest.fixture
def api(operator) -> APIClient:
    return token_client(operator)


@pytest.fixture
def viewer_api(viewer) -> APIClient:
    return token_client(viewer)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture
def business_date(db):
    return set_business_date(date(2026, 2, 18))


@pytest.fixture
def baseline_b(db, operator):
    """Seed 002's Baseline B: 600.00 at 24 %, six biweekly equal-principal installments from
    2026-01-10, the first three paid on their due dates; business date 2026-02-18."""
    from loans.models import TransactionType
    from loans.services import post_transaction

    set_business_date(date(2026, 2, 18))
    loan = make_active_loan(
        actor=operator,
        external_id="BASELINE-B",
        loan_amount=Decimal("600.00"),
        loan_rate=Decimal("24"),
        loan_term=Decimal("6"),
        payment_frequency="BIWEEKLY",
        contract_date=date(2025, 12, 27),
        first_payment_date=date(2026, 1, 10),
        calc_type="EQUAL_PRINCIPAL",
    )
    for on, amount in [
        (date(2026, 1, 10), "105.54"),
        (date(2026, 1, 24), "104.62"),
        (date(2026, 2, 7), "103.69"),
    ]:
        post_transaction(
            loan=loan, type=TransactionType.REPAYMENT, on=on, amount=Decimal(amount), actor=operator
        )
    loan.refresh_from_db()
    return loan


__all__ = ["make_loan", "make_active_loan", "token_client"]
