"""The vector codec: an embedding travels and is cached as little-endian float32 bytes.

6,144 bytes for 1,536 dimensions, against about 34 KB of JSON or 13.8 KB of a pickled list, and nothing
that could execute code when read back.
"""

import numpy as np

FLOAT32_LE = np.dtype("<f4")


def encode_vector(vector: "np.ndarray | list[float]") -> bytes:
    return np.asarray(vector, dtype=FLOAT32_LE).tobytes()


def decode_vector(data: bytes, dimensions: int) -> np.ndarray:
    """Bytes back to a read-only float32 array; ValueError when the length does not match `dimensions`."""
    if len(data) != dimensions * FLOAT32_LE.itemsize:
        raise ValueError(f"expected {dimensions * FLOAT32_LE.itemsize} bytes for {dimensions} dims, got {len(data)}")
    return np.frombuffer(data, dtype=FLOAT32_LE)


def is_valid_vector_bytes(data: object, dimensions: int) -> bool:
    return isinstance(data, bytes) and len(data) == dimensions * FLOAT32_LE.itemsize


def vector_problem(data: object, dimensions: int) -> str:
    """Why `data` is not a usable embedding ("" when it is): wrong type or length, NaN or infinity, all zeros.

    One dot product answers the last two (NaN or infinity anywhere makes it non-finite; all zeros make it 0), so
    this is cheap enough for every cache hit. A zero vector has no direction: no query could ever find it.
    """
    if not is_valid_vector_bytes(data, dimensions):
        length = len(data) if isinstance(data, bytes) else None
        return f"expected {dimensions * FLOAT32_LE.itemsize} bytes, got {length}"
    vector = np.frombuffer(data, dtype=FLOAT32_LE)
    square = float(np.dot(vector, vector))
    if not np.isfinite(square):
        return "it contains NaN or infinity"
    if square == 0.0:
        return "it is all zeros"
    return ""
