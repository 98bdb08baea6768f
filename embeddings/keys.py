"""Cache keys for embeddings: a hash of everything that determines the vector, never the text itself."""

import hashlib

# Bump when the key recipe or the value format changes; old entries then simply stop being read.
KEY_SCHEMA_VERSION = 1
KEY_NAMESPACE = "emb"


def embedding_cache_key(provider: str, model: str, dimensions: int, text: str) -> str:
    """`emb:v1:<sha256>` of (provider, model, dimensions, exact text).

    Two models, or one model at two dimensions, never share a key; the text is hashed exactly as given (no
    normalisation), so the key is as precise as the provider's own input.
    """
    digest = hashlib.sha256()
    for part in (provider, model, str(dimensions)):
        digest.update(part.encode())
        digest.update(b"\x00")
    digest.update(text.encode())
    return f"{KEY_NAMESPACE}:v{KEY_SCHEMA_VERSION}:{digest.hexdigest()}"
