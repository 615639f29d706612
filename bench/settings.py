"""Settings for the gunicorn benchmark (``bench_detail``): the project's settings with the
benchmark's URLconf (the API plus the hand-written anchor view)."""

from servicing.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# No collectstatic before a benchmark: static URLs without the manifest (the measured views
# serve JSON; the manifest only names files).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
