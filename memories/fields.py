"""EmbeddingField: a pgvector `vector(N)` column on PostgreSQL, compact float32 bytes on SQLite.

One model and one migration serve both stacks; Python code always sees a read-only float32 numpy array. N is
EMBEDDING_DIMENSIONS, read when the table is created (the first migrate): the size follows the model, and never
appears in a migration, so another size needs no new migration but `manage.py reembed_memories --dimensions`.
"""

from typing import Any

import numpy as np
from django.conf import settings
from pgvector import Vector
from pgvector.django import VectorField

from embeddings.codec import FLOAT32_LE, decode_vector, encode_vector


class EmbeddingField(VectorField):
    description = "Embedding (pgvector on PostgreSQL, float32 bytes elsewhere)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("dimensions", None)
        super().__init__(*args, **kwargs)

    @property
    def dimensions(self) -> int:
        return settings.EMBEDDING_DIMENSIONS

    @dimensions.setter
    def dimensions(self, value: object) -> None:
        """VectorField sets it; the size comes from settings instead."""

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("dimensions", None)
        return name, path, args, kwargs

    def db_type(self, connection: Any) -> str:
        if connection.vendor == "postgresql":
            return super().db_type(connection)
        return "blob"

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        array = np.asarray(value, dtype=FLOAT32_LE)
        if array.shape != (self.dimensions,):
            raise ValueError(f"embedding has {array.size} dimensions, the column holds {self.dimensions}")
        if connection.vendor == "postgresql":
            return Vector._to_db(array)
        return encode_vector(array)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> np.ndarray | None:
        if value is None:
            return None
        if isinstance(value, bytes | memoryview):
            return decode_vector(bytes(value), len(value) // FLOAT32_LE.itemsize)
        return np.asarray(Vector._from_db(value), dtype=np.float32)

    def to_python(self, value: Any) -> np.ndarray | None:
        if value is None or isinstance(value, np.ndarray):
            return value
        if isinstance(value, bytes | memoryview):
            return decode_vector(bytes(value), len(value) // FLOAT32_LE.itemsize)
        return np.asarray(value if isinstance(value, list) else Vector._from_db(value), dtype=np.float32)
