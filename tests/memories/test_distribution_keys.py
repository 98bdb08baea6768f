"""The memory tables stay ready to be distributed by (space, user) (docs/scaling.md): every index and unique
constraint is led by that key, and no database foreign key joins rows of two users.

Checked on the database itself (introspection), so an index added by raw SQL counts too. Vector (HNSW) indexes are
the one exception: an approximate index has a single column by nature; Citus builds it on each shard.
"""

import pytest
from django.db import connection, models

from calls.models import CallerIdentity
from memories.models import Memory, MemoryLink, Space, UserVectorIndex
from memories.owners import Owner
from memories.services import MemoryInputError, NewMemory, create_memory, link_memories, link_same_call
from memories.services import supersede_memory as supersede

pytestmark = pytest.mark.django_db

MEMORY_TABLES = (Memory, MemoryLink, UserVectorIndex)
DISTRIBUTION_KEY = ["space_id", "user_id"]


def database_keys(model) -> dict[str, dict]:
    """Every index and unique constraint of the model's table (primary key and foreign key constraints aside)."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {
        name: spec
        for name, spec in found.items()
        if not spec["primary_key"]
        and not spec["foreign_key"]
        and not spec["check"]
        and (spec["index"] or spec["unique"])
    }


def is_vector_index(spec: dict) -> bool:
    return spec.get("type") in ("hnsw", "ivfflat") or spec["columns"] in ([], [None], ["embedding"])


@pytest.mark.parametrize("model", MEMORY_TABLES, ids=lambda model: model.__name__)
def test_every_index_and_unique_constraint_is_led_by_space_and_user(model):
    keys = database_keys(model)
    assert keys, "the introspection found nothing: the check would pass vacuously"
    offenders = {
        name: spec["columns"]
        for name, spec in keys.items()
        if not is_vector_index(spec) and spec["columns"][:2] != DISTRIBUTION_KEY
    }
    assert offenders == {}, f"{model.__name__}: lead these with (space_id, user_id) or explain in docs/scaling.md"


@pytest.mark.parametrize("model", MEMORY_TABLES, ids=lambda model: model.__name__)
def test_the_model_declares_the_key_and_no_foreign_key_across_rows_of_users(model):
    fields = {field.name: field for field in model._meta.get_fields() if getattr(field, "concrete", False)}
    assert isinstance(fields["space"], models.ForeignKey) and fields["space"].related_model is Space
    assert isinstance(fields["user_id"], models.CharField)
    for field in fields.values():
        if field.primary_key:
            continue
        assert not field.unique, f"{model.__name__}.{field.name}: unique alone cannot be kept by a distributed table"
        if isinstance(field, models.ForeignKey) and field.related_model is not Space:
            assert field.related_model in MEMORY_TABLES, f"{model.__name__}.{field.name} leaves the memory tables"
            assert not field.db_constraint, f"{model.__name__}.{field.name}: a database foreign key between users' rows"
    assert not model._meta.unique_together


def test_the_rule_can_fail(monkeypatch):
    """The checks above see a violation: a unique user_id alone, as UserVectorIndex once had."""
    spec = {"columns": ["user_id"], "unique": True, "index": True, "primary_key": False, "foreign_key": None}
    assert spec["columns"][:2] != DISTRIBUTION_KEY and not is_vector_index(spec)


def test_caller_identities_are_unique_per_space():
    keys = database_keys(CallerIdentity)
    unique = [spec["columns"] for spec in keys.values() if spec["unique"]]
    assert unique == [["space_id", "phone_number"]]


def test_the_code_never_joins_two_users_or_two_spaces():
    other_space = Space.objects.create(slug="other", name="Other")
    mine = create_memory(Owner(1, "alice"), NewMemory("I live in Lyon")).memory
    same_name_elsewhere = create_memory(Owner(other_space.pk, "alice"), NewMemory("I live in Nice")).memory
    someone_else = create_memory(Owner(1, "bob"), NewMemory("I live in Rome")).memory
    for other in (same_name_elsewhere, someone_else):
        with pytest.raises(MemoryInputError):
            link_memories(mine, other, 0.5, MemoryLink.Reason.MANUAL)
        with pytest.raises(MemoryInputError):
            link_same_call([mine, other])
        with pytest.raises(MemoryInputError):
            supersede(mine, other)
    assert not MemoryLink.objects.exists()
