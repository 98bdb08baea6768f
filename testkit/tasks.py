"""Running the task worker to the end of its queue, as tests and benchmarks need it."""

from io import StringIO

from django.core.management import call_command


def drain_task_queue() -> str:
    """Run every queued task that is due (and the periodic jobs once) in this process; returns the worker's output."""
    out = StringIO()
    call_command("run_worker", "--batch", "--interval", "0", stdout=out, stderr=out)
    return out.getvalue()
