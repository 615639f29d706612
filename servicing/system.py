"""The system user: the actor of what the clock does on its own (the nightly close of business,
the dispatcher's repayments, late fees). It cannot log in."""

from __future__ import annotations

from django.contrib.auth import get_user_model

SYSTEM_USERNAME = "system"


def system_user():
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"is_active": False, "first_name": "System", "last_name": "(servicing clock)"},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user
