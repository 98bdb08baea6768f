from django.db import migrations

SEED_QUERIES = [
    "user preferences",
    "recent conversation topics",
    "CRM system",
    "billing information",
    "contact details",
    "support history",
    "product interests",
    "communication preferences",
]


def seed(apps, schema_editor):
    PrewarmQuery = apps.get_model("embeddings", "PrewarmQuery")
    for text in SEED_QUERIES:
        PrewarmQuery.objects.get_or_create(text=text, defaults={"notes": "seeded"})


def unseed(apps, schema_editor):
    apps.get_model("embeddings", "PrewarmQuery").objects.filter(text__in=SEED_QUERIES, notes="seeded").delete()


class Migration(migrations.Migration):
    dependencies = [("embeddings", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
