"""Security settings (issue 6): ``check --deploy`` clean with production settings, throttling,
password validation. Production settings are computed at import from the environment, so they
are checked in a subprocess that does not import pytest."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from loans.api_common import APIView

ROOT = Path(__file__).resolve().parent.parent


def production_env(**extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DEBUG",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DJANGO_SETTINGS_MODULE",
            "DJANGO_ALLOW_ASYNC_UNSAFE",  # set by tests/conftest.py for Playwright
        }
    }
    env.update(
        IGNORE_ENV_FILE="1",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="servicing.example.com",
        DATABASE_URL="sqlite:///:memory:",
        DJANGO_SETTINGS_MODULE="servicing.settings",
        # Production is behind a TLS-terminating proxy (README "Production"): with its header
        # the redirect to https is on by default.
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
    )
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def run_manage(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_until_https_can_be_told():
    """Without SECURE_PROXY_SSL_HEADER (nor SECURE_SSL_REDIRECT=1) the redirect is off, and
    ``check --deploy`` says so: security.W008 and nothing else."""
    env = production_env(SECURE_PROXY_SSL_HEADER=None)
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W008" in result.stderr + result.stdout
    assert "System check identified 1 issue" in result.stderr + result.stdout
    forced = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**env, "SECURE_SSL_REDIRECT": "1"}
    )
    assert forced.returncode == 0, forced.stdout + forced.stderr


def test_production_settings_values():
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({"
        "'debug': s.DEBUG, 'ssl': s.SECURE_SSL_REDIRECT, 'session': s.SESSION_COOKIE_SECURE, "
        "'csrf': s.CSRF_COOKIE_SECURE, 'hsts': s.SECURE_HSTS_SECONDS, "
        "'csrf_mw': 'django.middleware.csrf.CsrfViewMiddleware' in s.MIDDLEWARE, "
        "'throttles': s.REST_FRAMEWORK['DEFAULT_THROTTLE_CLASSES'], "
        "'rates': s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'], "
        "'validators': len(s.AUTH_PASSWORD_VALIDATORS)}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(THROTTLE_ANON="7/minute", THROTTLE_USER="700/hour"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "debug": False,
        "ssl": True,
        "session": True,
        "csrf": True,
        "hsts": 31536000,
        "csrf_mw": True,
        "throttles": [
            "rest_framework.throttling.AnonRateThrottle",
            "rest_framework.throttling.UserRateThrottle",
        ],
        "rates": {"anon": "7/minute", "user": "700/hour"},
        "validators": 4,
    }


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    del env["SECRET_KEY"]
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


@pytest.fixture
def throttled():
    """Re-enable DRF throttling (off in tests) with small rates."""
    cache.clear()
    with (
        mock.patch.object(APIView, "throttle_classes", [AnonRateThrottle, UserRateThrottle]),
        mock.patch.object(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/min", "user": "3/min"}),
    ):
        yield
    cache.clear()


@pytest.mark.django_db
def test_anonymous_token_requests_are_throttled(anon_api, throttled):
    """DRF checks permissions before throttles, so anonymous requests meet the anon rate where
    they are allowed at all: the token endpoint, i.e. password guessing."""
    login = {"username": "nobody", "password": "guess-123"}
    statuses = [
        anon_api.post("/api/v1/auth/token", login, format="json").status_code for _ in range(3)
    ]
    assert statuses == [400, 400, 429]
    response = anon_api.post("/api/v1/auth/token", login, format="json")
    assert response.status_code == 429
    body = response.json()
    assert set(body) == {"code", "detail", "errors"}
    assert body["code"] == "throttled"
    assert body["errors"] == []
    assert body["detail"].startswith("Request was throttled.")
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.django_db
def test_authenticated_requests_are_throttled_per_user(api, viewer_api, business_date, throttled):
    assert [api.get("/api/v1/business-date").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert viewer_api.get("/api/v1/business-date").status_code == 200
    assert api.get("/api/v1/business-date").json()["code"] == "throttled"


@pytest.mark.parametrize("password", ["short", "12345678901", "password123", "operator-x"])
def test_weak_passwords_are_refused(django_user_model, password):
    user = django_user_model(username="operator-x")
    with pytest.raises(ValidationError):
        validate_password(password, user)


def test_a_strong_password_is_accepted(django_user_model):
    validate_password("correct horse battery staple 42", django_user_model(username="op"))
