"""The Celery app of the servicing clock (DESIGN §8, §10, §11).

Workers: ``celery -A servicing worker``; the one beat: ``celery -A servicing beat``. Settings
come from Django's (``CELERY_*``): Redis in production, kombu's filesystem transport for
``make run`` (no server), eager in tests. The beat schedule: the nightly close of business at
``COB_TIME`` in ``SERVICING_TIME_ZONE``, the dispatcher every minute.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicing.settings")

app = Celery("servicing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["servicing"])


def beat_schedule(settings) -> dict:
    hour, minute = (int(part) for part in settings.COB_TIME.split(":"))
    return {
        "nightly-close-of-business": {
            "task": "servicing.tasks.nightly_close_of_business",
            "schedule": crontab(hour=hour, minute=minute),
        },
        "dispatch-due": {
            "task": "servicing.tasks.dispatch_due",
            "schedule": 60.0,
        },
    }


@app.on_after_configure.connect
def _configure(sender, **kwargs):
    from django.conf import settings

    sender.conf.timezone = settings.SERVICING_TIME_ZONE
    sender.conf.beat_schedule = beat_schedule(settings)
    # The embedded broker's folder and beat's schedule file live under .celery/ (gitignored).
    (settings.BASE_DIR / ".celery").mkdir(exist_ok=True)
    if sender.conf.broker_url.startswith("filesystem"):
        settings.CELERY_BROKER_DIR.mkdir(parents=True, exist_ok=True)
