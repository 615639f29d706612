"""Create the "Servicing operator" and "Servicing viewer" groups (issue 6).

Permissions are normally created after ``migrate`` (post_migrate), so this migration creates
the missing ones first. The servicing and modifications apps' models may not exist yet:
``loans.groups.sync_groups_after_migrate`` grants their view permissions after every migrate.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPERATOR_GROUP = "Servicing operator"
VIEWER_GROUP = "Servicing viewer"
COMMAND_CODENAMES = (
    "cancel_servicing",
    "resume_servicing",
    "terminate_contract",
    "modify_loan",
    "post_transaction",
    "set_business_date",
)
SERVICING_APPS = ("loans", "servicing", "modifications")
# Stored API responses of other users: nobody's business but the owner's.
PRIVATE_VIEW_CODENAMES = ("view_idempotencyrecord",)


def create_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        if app_config.label in SERVICING_APPS:
            app_config.models_module = True
            create_permissions(app_config, apps=apps, verbosity=0)
            app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.filter(
        content_type__app_label__in=SERVICING_APPS, codename__startswith="view_"
    ).exclude(codename__in=PRIVATE_VIEW_CODENAMES)
    commands = Permission.objects.filter(
        content_type__app_label="loans", codename__in=COMMAND_CODENAMES
    )
    operator, _ = Group.objects.get_or_create(name=OPERATOR_GROUP)
    viewer, _ = Group.objects.get_or_create(name=VIEWER_GROUP)
    operator.permissions.add(*commands, *view)
    viewer.permissions.add(*view)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[OPERATOR_GROUP, VIEWER_GROUP]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("loans", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
