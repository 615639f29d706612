# Issue 16: the throttle counts live in the default cache; without CACHE_URL that is Django's
# DatabaseCache, whose table ``migrate`` creates here (same as ``manage.py createcachetable``,
# which does nothing when the table exists or the cache is another backend).

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):

    dependencies = [
        ("servicing", "0003_choice_labels"),
    ]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
