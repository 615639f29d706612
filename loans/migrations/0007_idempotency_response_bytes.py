# Issue 16: an Idempotency-Key stores the response's exact bytes (replays are byte-identical and
# any content can be stored) and, for a claim committed on its own, a lease.

import json

from django.db import migrations, models


def body_to_bytes(apps, schema_editor):
    IdempotencyRecord = apps.get_model("loans", "IdempotencyRecord")
    for record in IdempotencyRecord.objects.filter(response_body__isnull=False).iterator():
        record.response_content = json.dumps(record.response_body).encode()
        record.content_type = "application/json"
        record.save(update_fields=["response_content", "content_type"])


class Migration(migrations.Migration):

    dependencies = [
        ("loans", "0006_setup_interest_recalculation"),
    ]

    operations = [
        migrations.AddField(
            model_name="idempotencyrecord",
            name="content_type",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.AddField(
            model_name="idempotencyrecord",
            name="locked_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="idempotencyrecord",
            name="response_content",
            field=models.BinaryField(blank=True, null=True),
        ),
        migrations.RunPython(body_to_bytes, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="idempotencyrecord",
            name="response_body",
        ),
    ]
