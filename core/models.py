from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """A task worker's sign of life, refreshed every WORKER_HEARTBEAT_SECONDS while it runs (core.worker).

    What the compose healthcheck (`manage.py worker_health`), /metrics and the sweeper of stale tasks read. A
    worker that stops cleanly says so; one that dies simply stops beating.
    """

    class State(models.TextChoices):
        RUNNING = "running", "running"
        DATABASE_DOWN = "database_down", "waiting for the database"
        STOPPED = "stopped", "stopped"

    worker_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    beat_at = models.DateTimeField(default=timezone.now, db_index=True)
    tasks_run = models.PositiveBigIntegerField(default=0)
    current_task = models.CharField(max_length=64, blank=True, help_text="The task result id being run.")

    class Meta:
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return f"{self.worker_id} on {self.hostname} ({self.state})"


class DailyCount(models.Model):
    """How many of something happened on a day (UTC), written by the worker's periodic jobs (each app counts its
    own: memories stored, calls received) and read by the admin index's charts: page views never count."""

    day = models.DateField()
    name = models.CharField(max_length=64)
    value = models.PositiveBigIntegerField(default=0)
    counted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "day"]
        constraints = [models.UniqueConstraint(fields=["name", "day"], name="daily_count_unique_name_day")]

    def __str__(self) -> str:
        return f"{self.name} on {self.day}: {self.value}"
