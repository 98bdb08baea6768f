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
