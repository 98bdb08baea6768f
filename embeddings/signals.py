"""Forget per-process singletons when tests change the settings they were built from."""

from django.core.signals import setting_changed
from django.dispatch import receiver

from embeddings.cache import get_embedding_cache
from embeddings.providers import get_provider


@receiver(setting_changed)
def reset_embedding_singletons(setting: str, **kwargs) -> None:
    if setting.startswith(("EMBEDDING_", "OPENAI_")) or setting == "CACHES":
        get_provider.cache_clear()
        get_embedding_cache.cache_clear()
