"""A local, deterministic, lexical embedding provider: feature hashing of words and character trigrams.

No network, no key, no model. The same text always gives the same vector; texts sharing words (or parts of
words) get a high cosine; vectors have unit length. It is a lexical stand-in, not a semantic model (asked about
"pets", it finds "peanuts" before "dog"): the test suite runs on it because it costs microseconds. The embedded
default is the semantic all-MiniLM-L6-v2 (embeddings.providers.minilm).
"""

import hashlib
import re

import numpy as np

from embeddings.codec import encode_vector
from embeddings.providers.base import EmbeddingProvider

WORD_PATTERN = re.compile(r"[\w']+", re.UNICODE)
# Words too common to tell two texts apart; they would only add noise to the lexical match.
STOP_WORDS = frozenset(
    "a an and are as at be but by did do does for from had has have i i'm im in is it it's its me my of on "
    "or our so that the their them they this to was we were what when where which who will with you your".split()
)
WORD_WEIGHT = 1.0
TRIGRAM_WEIGHT = 0.35
# Crude suffix stripping, so "invoice" and "invoices", "travel" and "travelling" share their word feature.
SUFFIXES = (("ies", "y"), ("ing", ""), ("ed", ""), ("ss", "ss"), ("s", ""), ("ly", ""))


def stem(word: str) -> str:
    for suffix, replacement in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":  # "travell" -> "travel"
        word = word[:-1]
    return word


def _bucket_and_sign(feature: str, dimensions: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return (value >> 1) % dimensions, (1.0 if value & 1 else -1.0)


class LocalHashingProvider(EmbeddingProvider):
    name = "hashing"

    def __init__(self, model: str = "local-hash-v1", dimensions: int = 384, **_: object):
        self.model = model
        self.dimensions = dimensions

    def embed(self, texts: list[str], timeout: float | None = None) -> list[bytes]:
        return [encode_vector(self.vector(text)) for text in texts]

    def vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimensions, dtype=np.float64)
        words = [word for word in WORD_PATTERN.findall(text.lower()) if word not in STOP_WORDS]
        for word in words or WORD_PATTERN.findall(text.lower()) or [text.strip().lower()]:
            index, sign = _bucket_and_sign("w:" + stem(word), self.dimensions)
            vector[index] += sign * WORD_WEIGHT
            padded = f"<{word}>"
            for start in range(len(padded) - 2):
                index, sign = _bucket_and_sign("t:" + padded[start : start + 3], self.dimensions)
                vector[index] += sign * TRIGRAM_WEIGHT
        norm = np.linalg.norm(vector)
        if norm == 0:  # text made only of symbols: still a valid, deterministic unit vector
            index, _ = _bucket_and_sign("empty:" + text, self.dimensions)
            vector[index] = 1.0
            norm = 1.0
        return (vector / norm).astype(np.float32)
