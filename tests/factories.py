"""Small factories for test data."""

from datetime import timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from memories.models import Memory, MemoryLink, Space
from memories.owners import DEFAULT_SPACE_ID

_rng = np.random.default_rng(20261124)


def random_unit_vector(rng: np.random.Generator | None = None) -> np.ndarray:
    vector = (rng or _rng).standard_normal(settings.EMBEDDING_DIMENSIONS).astype(np.float32)
    return vector / np.linalg.norm(vector)


def near(vector: np.ndarray, similarity: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """A unit vector whose cosine with `vector` is exactly `similarity`."""
    noise = random_unit_vector(rng)
    noise -= noise.dot(vector) * vector
    noise /= np.linalg.norm(noise)
    result = similarity * vector + np.sqrt(1 - similarity**2) * noise
    return (result / np.linalg.norm(result)).astype(np.float32)


def make_memory(user_id: str = "user-a", text: str | None = None, embedding=None, age_days: float = 0, **fields):
    """A memory saved directly (no dedupe, no provider): for setting up search and ranking scenarios."""
    created = timezone.now() - timedelta(days=age_days)
    memory = Memory(
        user_id=user_id,
        text=text or f"memory {Memory.objects.count() + 1} of {user_id}",
        embedding=random_unit_vector() if embedding is None else embedding,
        embedding_model="test",
        created_at=fields.pop("created_at", created),
        occurred_at=fields.pop("occurred_at", created),
        last_accessed_at=fields.pop("last_accessed_at", created),
        **fields,
    )
    memory.save()
    return memory


def make_link(first: Memory, second: Memory, weight: float = 0.8, reason: str = "similar", user_id: str | None = None):
    """A link row written as given: `user_id` may be forged to test that reads never cross users."""
    return MemoryLink.objects.create(
        from_memory=first, to_memory=second, weight=weight, reason=reason, user_id=user_id or first.user_id
    )


def make_staff(username: str, password: str | None = None, spaces: tuple[int, ...] = (DEFAULT_SPACE_ID,), **fields):
    """A staff user who may see `spaces` (the default space unless told otherwise): new staff see no space."""
    person = User.objects.create_user(username, password=password, **{"is_staff": True, **fields})
    for space_id in spaces:
        Space.objects.get(pk=space_id).staff.add(person)
    return person
