import numpy as np
import pytest

from embeddings.codec import decode_vector, encode_vector, is_valid_vector_bytes
from embeddings.keys import embedding_cache_key


def test_key_depends_on_provider_model_dimensions_and_exact_text():
    base = embedding_cache_key("openai", "text-embedding-3-small", 1536, "user preferences")
    assert base == embedding_cache_key("openai", "text-embedding-3-small", 1536, "user preferences")
    others = {
        embedding_cache_key("local", "text-embedding-3-small", 1536, "user preferences"),
        embedding_cache_key("openai", "text-embedding-3-large", 1536, "user preferences"),
        embedding_cache_key("openai", "text-embedding-3-small", 512, "user preferences"),
        embedding_cache_key("openai", "text-embedding-3-small", 1536, "User preferences"),
        embedding_cache_key("openai", "text-embedding-3-small", 1536, "user preferences "),
    }
    assert base not in others
    assert len(others) == 5


def test_key_never_contains_the_text_and_carries_a_schema_version():
    key = embedding_cache_key("openai", "m", 3, "my secret phone number")
    assert "secret" not in key
    assert key.startswith("emb:v1:")
    assert len(key) == len("emb:v1:") + 64


def test_parts_cannot_run_into_each_other():
    assert embedding_cache_key("a", "bc", 1, "x") != embedding_cache_key("ab", "c", 1, "x")


def test_codec_is_little_endian_float32_and_round_trips():
    vector = np.linspace(-1, 1, 1536, dtype=np.float32)
    data = encode_vector(vector)
    assert len(data) == 6144
    assert data[:4] == b"\x00\x00\x80\xbf"  # -1.0 as little-endian float32
    assert np.array_equal(decode_vector(data, 1536), vector)


def test_codec_rejects_wrong_length():
    with pytest.raises(ValueError, match="expected 12 bytes"):
        decode_vector(b"\x00" * 8, 3)
    assert not is_valid_vector_bytes(b"\x00" * 8, 3)
    assert not is_valid_vector_bytes("not bytes", 3)
    assert is_valid_vector_bytes(b"\x00" * 12, 3)
