import numpy as np

from embeddings.providers.hashing import LocalHashingProvider


def cosine(a, b):
    return float(np.dot(a, b))


def test_same_text_same_vector_unit_length_configured_dimensions():
    provider = LocalHashingProvider(dimensions=256)
    first = provider.vector("I prefer email over phone calls")
    assert first.shape == (256,)
    assert first.dtype == np.float32
    assert np.isclose(np.linalg.norm(first), 1.0, atol=1e-5)
    assert np.array_equal(first, LocalHashingProvider(dimensions=256).vector("I prefer email over phone calls"))


def test_similar_words_give_similar_vectors():
    provider = LocalHashingProvider(dimensions=1536)
    query = provider.vector("billing invoice problem")
    related = provider.vector("I have a problem with my invoices and billing")
    unrelated = provider.vector("my dog loves walks in the park")
    assert cosine(query, related) > cosine(query, unrelated) + 0.2
    # character trigrams: an inflected form still matches
    assert cosine(provider.vector("invoice"), provider.vector("invoices")) > 0.5


def test_embed_returns_float32_bytes_in_order():
    provider = LocalHashingProvider(dimensions=8)
    data = provider.embed(["alpha", "beta"])
    assert [len(item) for item in data] == [32, 32]
    assert np.array_equal(np.frombuffer(data[1], "<f4"), provider.vector("beta"))


def test_symbol_only_text_still_gets_a_unit_vector():
    vector = LocalHashingProvider(dimensions=16).vector("?!")
    assert np.isclose(np.linalg.norm(vector), 1.0)
