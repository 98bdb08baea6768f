import json

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from embeddings.statistics import collect_statistics


class Command(BaseCommand):
    help = "Print the embedding cache statistics (shared by every process) as a table, or JSON with --json."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args, **options):
        stats = collect_statistics()
        if options["json"]:
            self.stdout.write(json.dumps(stats.as_dict(), indent=2, default=str))
        else:
            rows = [
                ("backend", stats.backend),
                (
                    "provider",
                    f"{stats.provider.get('provider')} / {stats.provider.get('model')} "
                    f"({stats.provider.get('dimensions')} dims)",
                ),
                ("entries", stats.entries),
                ("bytes", "n/a" if stats.bytes is None else f"{stats.bytes} ({filesizeformat(stats.bytes)})"),
                ("size limit", size_limit(stats)),
                ("policy", stats.policy),
                ("hits", stats.hits),
                ("misses", stats.misses),
                ("hit rate", "n/a" if stats.hit_rate is None else f"{stats.hit_rate:.2%}"),
                ("provider calls", stats.provider_calls),
                ("provider errors", stats.provider_errors),
                ("cache errors", stats.cache_errors),
                (f"evictions ({stats.evictions_scope or 'n/a'})", stats.evictions),
                ("expired", stats.expired),
                (
                    "mean provider latency (ms)",
                    f"{1000 * stats.latency_sum_seconds / stats.latency_count:.1f}" if stats.latency_count else "n/a",
                ),
            ]
            width = max(len(name) for name, _ in rows)
            for name, value in rows:
                self.stdout.write(f"{name.ljust(width)}  {value}")
        if not stats.available:
            raise CommandError(f"the embedding cache is unreachable: {stats.error}")


def size_limit(stats) -> str:
    if stats.max_entries:
        return f"{stats.max_entries} entries"
    if stats.maxmemory:
        return f"{stats.maxmemory} bytes ({filesizeformat(stats.maxmemory)}, Redis maxmemory, server-wide)"
    return "none"
