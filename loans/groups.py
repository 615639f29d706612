"""The two staff groups of issue 6 and their permissions.

"Servicing operator": every command permission and the view permissions of the servicing apps'
models. "Servicing viewer": the view permissions only. A migration (``0002_groups``) creates
them; ``sync_groups`` runs again after every ``migrate`` (``LoansConfig.ready``), so the view
permissions of models the servicing and modifications apps add later are granted too. It only
adds: what an administrator granted by hand is never removed.
"""

from __future__ import annotations

OPERATOR_GROUP = "Servicing operator"
VIEWER_GROUP = "Servicing viewer"
COMMAND_CODENAMES = (
    "cancel_servicing",
    "resume_servicing",
    "terminate_contract",
    "modify_loan",
    "post_transaction",
    "set_business_date",
    "run_close_of_business",
    "manage_autopay",
    "charge_off",
)
SERVICING_APPS = ("loans", "servicing", "modifications")
# Stored API responses of other users: nobody's business but the owner's.
PRIVATE_VIEW_CODENAMES = ("view_idempotencyrecord",)


def sync_groups(group_model, permission_model) -> None:
    """Create the groups if needed and add the permissions they must hold. Idempotent; works
    with historical models (in a migration) and with the real ones."""
    view = permission_model.objects.filter(
        content_type__app_label__in=SERVICING_APPS, codename__startswith="view_"
    ).exclude(codename__in=PRIVATE_VIEW_CODENAMES)
    commands = permission_model.objects.filter(
        content_type__app_label="loans", codename__in=COMMAND_CODENAMES
    )
    operator, _ = group_model.objects.get_or_create(name=OPERATOR_GROUP)
    viewer, _ = group_model.objects.get_or_create(name=VIEWER_GROUP)
    operator.permissions.add(*commands, *view)
    viewer.permissions.add(*view)


def sync_groups_after_migrate(sender, app_config=None, using="default", apps=None, **kwargs):
    """post_migrate receiver: runs after ``django.contrib.auth`` created the app's permissions
    (auth's receiver is connected first)."""
    if app_config is None or app_config.label not in SERVICING_APPS:
        return
    from django.apps import apps as global_apps

    apps = apps or global_apps
    try:
        group_model = apps.get_model("auth", "Group")
        permission_model = apps.get_model("auth", "Permission")
    except LookupError:  # auth not migrated (a partial migrate)
        return
    sync_groups(group_model, permission_model)
