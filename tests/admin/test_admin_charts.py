"""Pictures in the admin: the cache over 24 hours and 7 days, memories and calls per day, all from samples and
counts the worker writes (a page view computes nothing but the drawing)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.tasks import CALLS_PER_DAY, count_calls_per_day
from core.charts import Point, bar_chart
from core.daily import daily_points
from core.models import DailyCount
from embeddings.models import CacheStatsSample
from embeddings.statistics import cache_history
from memories.tasks import MEMORIES_PER_DAY, count_memories_per_day
from tests.factories import make_memory

pytestmark = pytest.mark.django_db


def sample(minutes_ago: float, hits: int, misses: int, calls: int, evictions: int) -> None:
    row = CacheStatsSample.objects.create(hits=hits, misses=misses, provider_calls=calls, evictions=evictions)
    CacheStatsSample.objects.filter(pk=row.pk).update(taken_at=timezone.now() - timedelta(minutes=minutes_ago))


def test_history_is_built_from_differences_between_samples_and_survives_a_reset():
    sample(200, hits=0, misses=0, calls=0, evictions=0)
    sample(150, hits=90, misses=10, calls=10, evictions=0)  # 2 to 3 hours ago: 90% hits
    sample(90, hits=100, misses=100, calls=100, evictions=5)  # 1 to 2 hours ago: 10 / 100
    sample(30, hits=3, misses=1, calls=1, evictions=0)  # a clear reset the counters: 3 hits, 1 miss since
    history = cache_history(timedelta(hours=24), 24)
    rates = [point.value for point in history.hit_rate]
    assert rates[-3:] == [pytest.approx(0.9), pytest.approx(0.1), pytest.approx(0.75)]
    assert [point.value for point in history.provider_calls][-3:] == [10, 90, 1]
    assert [point.value for point in history.evictions][-3:] == [0, 5, 0]
    assert rates[:-3] == [None] * 21  # no samples: gaps, not zeros


def test_daily_counts_are_written_by_the_worker_jobs_and_read_back(client):
    make_memory("alice", "Lives in Berlin")
    make_memory("alice", "Works as a nurse")
    count_memories_per_day()
    count_calls_per_day()
    today = timezone.now().date()
    assert DailyCount.objects.get(name=MEMORIES_PER_DAY, day=today).value == 2
    assert DailyCount.objects.get(name=CALLS_PER_DAY, day=today).value == 0
    points = daily_points(MEMORIES_PER_DAY)
    assert len(points) == 14 and points[-1].value == 2 and points[-2].value == 0 and points[0].value is None
    count_memories_per_day()  # idempotent
    assert DailyCount.objects.filter(name=MEMORIES_PER_DAY).count() == 2


def test_the_pages_draw_the_charts_without_counting_anything(client):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    DailyCount.objects.create(name=MEMORIES_PER_DAY, day=timezone.now().date(), value=42)
    sample(90, hits=0, misses=0, calls=0, evictions=0)
    sample(30, hits=8, misses=2, calls=2, evictions=1)
    with CaptureQueriesContext(connection) as queries:
        index = client.get("/admin/").content.decode()
    assert not any("memories_memory" in query["sql"] for query in queries.captured_queries)
    assert 'id="chart-memories-per-day"' in index and 'id="chart-calls-per-day"' in index
    assert f"{timezone.now():%b} {timezone.now().day}: 42</title>" in index
    page = client.get("/admin/embedding-cache/").content.decode()
    for chart in ("hit-rate", "provider-calls", "evictions"):
        assert f'id="chart-{chart}-24h"' in page and f'id="chart-{chart}-7d"' in page
    assert ": 80%</title>" in page  # the last hour's hit rate
    assert "<script" not in page.split('id="cache-history"')[1].split("</div>")[0]


def test_a_chart_is_plain_svg_with_a_tooltip_per_bar_and_gaps_for_missing_data():
    svg = str(bar_chart("c", "Calls <per> day", [Point("Mon", 3), Point("Tue", None), Point("Wed", 0)]))
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "Calls &lt;per&gt; day" in svg
    assert svg.count('class="bar"') == 2 and "<title>Mon: 3</title>" in svg and "Tue" in svg
    assert "no data yet" in str(bar_chart("e", "Empty", [Point("Mon", None)]))
