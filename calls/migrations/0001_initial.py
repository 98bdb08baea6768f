# The call integration's models moved here from the memories app; their tables keep their names, so this only
# changes Django's state. Content types (and with them permissions and admin log entries) and queued tasks
# follow the models to their new app.

import django.utils.timezone
from django.db import migrations, models

MOVED_MODELS = ("calleridentity", "webhookevent")
TASK_PATHS = ("memories.tasks.process_webhook_event_task", "calls.tasks.process_webhook_event_task")


def follow_the_models(apps, schema_editor, source="memories", target="calls"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label=source, model__in=MOVED_MODELS).update(app_label=target)
    DBTaskResult = apps.get_model("django_tasks_database", "DBTaskResult")
    old, new = TASK_PATHS if source == "memories" else reversed(TASK_PATHS)
    DBTaskResult.objects.filter(task_path=old).update(task_path=new)


def back_to_memories(apps, schema_editor):
    follow_the_models(apps, schema_editor, source="calls", target="memories")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("memories", "0006_user_vector_indexes"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="CallerIdentity",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("phone_number", models.CharField(max_length=32, unique=True)),
                        ("user_id", models.CharField(db_index=True, max_length=128)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("calls", models.PositiveIntegerField(default=0)),
                    ],
                    options={"verbose_name_plural": "caller identities", "db_table": "memories_calleridentity"},
                ),
                migrations.CreateModel(
                    name="WebhookEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("event_type", models.CharField(db_index=True, max_length=64)),
                        ("conversation_id", models.CharField(blank=True, db_index=True, max_length=128)),
                        ("agent_id", models.CharField(blank=True, max_length=128)),
                        ("user_id", models.CharField(blank=True, db_index=True, max_length=128)),
                        ("dedupe_key", models.CharField(editable=False, max_length=200, unique=True)),
                        ("event_timestamp", models.DateTimeField(blank=True, null=True)),
                        ("received_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("received", "received, waiting for the worker"),
                                    ("processing", "processing"),
                                    ("retrying", "failed transiently, will retry"),
                                    ("processed", "processed"),
                                    ("recorded", "recorded (nothing to process)"),
                                    ("ignored", "ignored (nothing usable)"),
                                    ("failed", "failed after the last attempt"),
                                ],
                                db_index=True,
                                default="received",
                                max_length=16,
                            ),
                        ),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("last_error", models.TextField(blank=True)),
                        ("processed_at", models.DateTimeField(blank=True, null=True)),
                        ("body_bytes", models.PositiveBigIntegerField(default=0)),
                        ("body_sha256", models.CharField(max_length=64)),
                        ("payload", models.JSONField(blank=True, help_text="The event as received; never audio.", null=True)),
                        ("memories_created", models.PositiveIntegerField(default=0)),
                        ("memories_reinforced", models.PositiveIntegerField(default=0)),
                    ],
                    options={"ordering": ["-received_at", "-id"], "db_table": "memories_webhookevent"},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(follow_the_models, back_to_memories),
    ]
