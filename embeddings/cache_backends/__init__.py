"""Django cache backends for the embedding cache alias.

Both implement the standard cache API (for bytes values) plus `EmbeddingCacheBackend`, the few extra
operations the embedding cache needs: a counted multi-get in one round trip, shared counters, a clear that
touches embedding entries only, and a description of size and policy.
"""
