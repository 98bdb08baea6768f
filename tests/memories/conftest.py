import numpy as np
import pytest

from memories.owners import default_owner
from memories.vector_plans import plans
from tests.factories import make_memory, near, random_unit_vector
from tests.memories.hybrid_data import TEXTS


@pytest.fixture
def alice():
    rng = np.random.default_rng(5)
    base = random_unit_vector(rng)
    sectors = ["episodic", "semantic", "emotional"]
    kinds = ["utterance", "note", "summary", "fact"]
    rows = [
        make_memory(
            "alice",
            text,
            embedding=near(base, 0.5 + 0.04 * index, rng),
            sector=sectors[index % 3],
            extra_sectors=[sectors[(index + 1) % 3]] if index % 4 == 0 else [],
            kind=kinds[index % 4],
        )
        for index, text in enumerate(TEXTS)
    ]
    make_memory("alice", "My dog used to be called Max", superseded_by=rows[0])  # history: never a candidate
    make_memory("bob", "Bob's dog Rex is afraid of thunder too")  # another user
    plans.forget()
    return default_owner("alice"), base, rng
