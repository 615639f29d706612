"""Settings, read from the environment.

DEBUG defaults to off. With DEBUG off the process refuses to start without SECRET_KEY and turns
on secure cookies and HSTS, and the SSL redirect once SECURE_PROXY_SSL_HEADER says how to tell
https (each can be set through its own variable). DATABASE_URL selects the database: SQLite (the embedded default,
``db.sqlite3`` beside manage.py) or PostgreSQL (production).
"""

import os
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def read_env_file(path: Path) -> None:
    """Load KEY=VALUE lines from a local ``.env`` (written by ``make install`` for development);
    variables already in the environment win. Production sets real variables and has no file."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            os.environ.setdefault(key.strip(), value.strip().strip("'\""))


if os.environ.get("IGNORE_ENV_FILE", "") not in {"1", "true"}:
    read_env_file(BASE_DIR / ".env")


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")
DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or TESTING:
        SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

# Loopback names are allowed by default with DEBUG off too (no risk: a browser never sends them
# to a public server): without ALLOWED_HOSTS, gunicorn answered every request, a health check or
# an operator on the machine itself included, with 400. A public name must still be listed.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "formtools",
    "axes",
    "csp",
    "loans",
    "servicing",
    "modifications",
]

MIDDLEWARE = [
    "servicing.middleware.RequestIdMiddleware",
    "servicing.middleware.RejectNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "servicing.middleware.ApiNoStoreMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "servicing.urls"
WSGI_APPLICATION = "servicing.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "loans.context_processors.business_date",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and not env_bool(
    "POSTGRES_JIT", False
):
    # Short OLTP queries: PostgreSQL's JIT compiles for hundreds of ms when a plan's estimated
    # cost passes jit_above_cost, for queries that run in about 1 ms (measured on the admin
    # changelist with 100,000 loans). POSTGRES_JIT=1 keeps the server's setting.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "servicing.sqlite3"
    # Wait for a writer instead of failing with "database is locked" under the dev server, and
    # begin every transaction IMMEDIATE: `make run` writes from web, worker and beat, and a
    # transaction that read before it wrote failed at once (SQLite does not wait on a reader's
    # upgrade while another process writes), whatever the timeout.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# YYYY-MM-DD dates and 24-hour times on every admin page (servicing/formats/en/formats.py).
FORMAT_MODULE_PATH = ["servicing.formats"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "servicing.storage.ManifestStaticFilesStorage"
        )
    },
}
# Production before collectstatic (no manifest): whitenoise serves the apps' files directly
# (servicing/storage.py), so the admin works instead of a 500 on every page.
WHITENOISE_USE_FINDERS = DEBUG or (not TESTING and not (STATIC_ROOT / "staticfiles.json").is_file())

if DEBUG or TESTING:
    # Development serves static files from the apps (no collectstatic, so no STATIC_ROOT yet).
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

LOGIN_URL = "/admin/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "servicing.tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["loans.api_policies.CommandPermission"],
    # A JSON API: no form or multipart bodies (smaller attack surface, one documented media type).
    "DEFAULT_PARSER_CLASSES": ["loans.api_parsers.JSONParser"],
    # Every response under /api/ is JSON (no browsable HTML pages; /docs is the UI).
    "DEFAULT_RENDERER_CLASSES": ["loans.api_parsers.JSONRenderer"],
    # Proxies in front of the app whose X-Forwarded-For entries are trusted for throttling.
    # Default 0: the client's address is REMOTE_ADDR and the header (which the client can
    # write) is ignored. Behind one load balancer set NUM_PROXIES=1.
    "NUM_PROXIES": int(os.environ.get("NUM_PROXIES", "0")),
    "DEFAULT_PAGINATION_CLASS": "loans.api_policies.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["loans.api_common.FilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "loans.api_schema.AutoSchema",
    "EXCEPTION_HANDLER": "loans.api_common.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("THROTTLE_ANON", "60/minute"),
        "user": os.environ.get("THROTTLE_USER", "100000/hour"),
    },
    "COERCE_DECIMAL_TO_STRING": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if TESTING:
    REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = []

SPECTACULAR_SETTINGS = {
    "TITLE": "Loan servicing back office API",
    "DESCRIPTION": "Commands and reads for servicing consumer installment loans.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}

# Choice sets of the servicing app share field names ("status", "channel") with the loan core.
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {
        "LoanStatusEnum": "loans.models.LoanStatus",
        "ScheduledPaymentStatusEnum": "servicing.models.ScheduledPaymentStatus",
        "CommunicationStatusEnum": "servicing.models.CommunicationStatus",
        "CommunicationScheduleStatusEnum": "servicing.models.CommunicationScheduleStatus",
        "PaymentMethodEnum": "servicing.models.PaymentMethod",
        "RollPaymentMethodEnum": "modifications.services.ROLL_METHODS",
        "DelinquencyBucketEnum": "loans.models.DelinquencyBucket",
        "JobStatusEnum": "servicing.models.JobStatus",
        "AutopayStatusEnum": "servicing.models.AutopayStatus",
        "AttemptStatusEnum": "servicing.models.AttemptStatus",
        "JobKindEnum": "servicing.models.JobKind",
        "ItemKindEnum": "servicing.models.ItemKind",
    }
)

# Caches. The throttle counts live in the default cache, which every process must share, or
# each gunicorn worker counts on its own. CACHE_URL=redis://host:6379/0 (production: Redis);
# without it the embedded default is Django's DatabaseCache, one table in the database the
# processes already share (``manage.py createcachetable``; the test runner creates it).
if os.environ.get("CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["CACHE_URL"],
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
        }
    }

# Lockout of repeated login failures (admin login and POST /auth/token): django-axes. After
# AXES_FAILURE_LIMIT failures from one address, or for one username from anywhere, further
# attempts are refused for AXES_COOLOFF_MINUTES (a successful login resets the count).
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "servicing.security.lockout"
AXES_CLIENT_IP_CALLABLE = "servicing.security.client_ip"
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_VERBOSE = False

# Content-Security-Policy (django-csp): scripts only from our own static files (no inline
# script anywhere, the wizard's live preview included); styles may be inline (the admin's).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# A worker is killed after this many seconds (gunicorn.conf.py reads it): an Idempotency-Key
# still IN_PROGRESS after it has no live holder and may be claimed again.
REQUEST_TIMEOUT_SECONDS = int(os.environ.get("REQUEST_TIMEOUT_SECONDS", "60"))

# How long an API token (POST /api/v1/auth/token) is valid after it was issued; it dies sooner
# when its user's password changes (servicing/tokens.py). Default 10 hours: a working day.
API_TOKEN_TTL = timedelta(seconds=int(os.environ.get("API_TOKEN_TTL_SECONDS", str(10 * 3600))))

# How long a stored Idempotency-Key response is replayed.
IDEMPOTENCY_KEY_TTL_SECONDS = int(os.environ.get("IDEMPOTENCY_KEY_TTL_SECONDS", str(24 * 3600)))

# Security: safe defaults whenever DEBUG is off.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG and not TESTING:
    # The redirect to https needs Django to tell https from http. Behind a TLS-terminating
    # proxy that is SECURE_PROXY_SSL_HEADER (without it every request looks like http and the
    # redirect loops); gunicorn serving TLS itself sets SECURE_SSL_REDIRECT=1. So the redirect
    # is on by default only once the proxy header is configured: plain http on 127.0.0.1 (a
    # health check, an acceptance run, a proxy that redirects on its own) is answered, and
    # ``check --deploy`` warns (security.W008) until one of the two is set.
    SECURE_SSL_REDIRECT = env_bool(
        "SECURE_SSL_REDIRECT", bool(os.environ.get("SECURE_PROXY_SSL_HEADER"))
    )
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# Only behind a proxy that sets (and strips from clients) X-Forwarded-Proto: otherwise a client
# could claim HTTPS. SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO (value "https").
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"], "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "servicing.middleware.RequestIdFilter"}},
    "formatters": {
        "default": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "default",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# ---------------------------------------------------------------- the servicing clock (§10, §11)
# Celery: Redis in production. With DEBUG on (``make run``) and no CELERY_BROKER_URL, kombu's
# filesystem transport under .celery/ is the embedded broker: no server to start. Tests execute
# tasks eagerly (in-process) unless CELERY_TASK_ALWAYS_EAGER=0.
CELERY_BROKER_DIR = Path(os.environ.get("CELERY_BROKER_DIR", BASE_DIR / ".celery" / "broker"))
CELERY_BROKER_URL = os.environ.get(
    "CELERY_BROKER_URL", "filesystem://" if DEBUG or TESTING else "redis://127.0.0.1:6379/0"
)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"data_folder_in": str(CELERY_BROKER_DIR), "data_folder_out": str(CELERY_BROKER_DIR)}
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"max_retries": 1, "socket_connect_timeout": 2, "socket_timeout": 5}
)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", TESTING)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-batch leaves its message to another worker
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

SERVICING_TIME_ZONE = os.environ.get("SERVICING_TIME_ZONE", "UTC")
COB_TIME = os.environ.get("COB_TIME", "00:05")  # HH:MM in SERVICING_TIME_ZONE
COB_BATCH_SIZE = int(os.environ.get("COB_BATCH_SIZE", "100"))
# PostgreSQL: the close of business's loan-days commit without waiting for the WAL flush
# (servicing.statements.asynchronous_commit says why that is safe); 0 to wait for each one.
COB_ASYNCHRONOUS_COMMIT = os.environ.get("COB_ASYNCHRONOUS_COMMIT", "1") != "0"
AUTOPAY_HORIZON_DAYS = int(os.environ.get("AUTOPAY_HORIZON_DAYS", "35"))
DISPATCH_BATCH_SIZE = int(os.environ.get("DISPATCH_BATCH_SIZE", "200"))
DISPATCH_IN_FLIGHT_TIMEOUT_SECONDS = int(
    os.environ.get("DISPATCH_IN_FLIGHT_TIMEOUT_SECONDS", "600")
)
DISPATCH_CLAIM_SECONDS = int(os.environ.get("DISPATCH_CLAIM_SECONDS", "300"))
# Dispatcher tasks started per beat tick (each claims its own batches): about the worker count.
DISPATCH_PARALLEL = int(os.environ.get("DISPATCH_PARALLEL", "1"))
PAYMENT_PROVIDER = os.environ.get("PAYMENT_PROVIDER", "servicing.providers.SimulatedAchProvider")
EMAIL_PROVIDER = os.environ.get("EMAIL_PROVIDER", "servicing.providers.EmailBackendProvider")
SMS_PROVIDER = os.environ.get("SMS_PROVIDER", "servicing.providers.SmsOutboxProvider")
CALL_PROVIDER = os.environ.get("CALL_PROVIDER", "servicing.providers.CallOutboxProvider")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "servicing@localhost")
