# CallerIdentity and WebhookEvent belong to the calls app now (calls.0001_initial); their tables stay.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("memories", "0006_user_vector_indexes"),
        ("calls", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="CallerIdentity"),
                migrations.DeleteModel(name="WebhookEvent"),
            ],
            database_operations=[],
        ),
    ]
