from django.db import models


class PrewarmQuery(models.Model):
    """A query whose embedding is kept warm, so the conversation-initiation path never waits on a provider."""

    text = models.CharField(max_length=500, unique=True)
    enabled = models.BooleanField(default=True, db_index=True)
    notes = models.TextField(blank=True)
    last_warmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["text"]
        verbose_name = "prewarm query"
        verbose_name_plural = "prewarm queries"
        permissions = [("clear_embedding_cache", "Can clear the embedding cache")]

    def __str__(self) -> str:
        return self.text


class CacheStatsSample(models.Model):
    """A reading of the cumulative cache counters, so the admin can show rates (evictions per minute)."""

    taken_at = models.DateTimeField(auto_now_add=True, db_index=True)
    hits = models.BigIntegerField()
    misses = models.BigIntegerField()
    evictions = models.BigIntegerField()
    provider_calls = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-taken_at"]
        get_latest_by = "taken_at"

    def __str__(self) -> str:
        return f"{self.taken_at:%Y-%m-%d %H:%M:%S}: {self.evictions} evictions"
