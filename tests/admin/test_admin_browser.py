"""End to end, in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium).

Logs in, checks the cache page's numbers against the statistics, clears the cache through the confirmation
page, edits the prewarm list and warms it, and replays a failed webhook event; shows that view-only staff are
offered no destructive action while a superuser forgets a user; draws the charts. Screenshots of every step are
kept in test-artifacts/admin-e2e/<stack>/<test>/.
"""

import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from calls.models import WebhookEvent
from embeddings.generation import generate_embeddings_batch
from embeddings.prewarm import cached_query_texts
from embeddings.statistics import collect_statistics
from memories.owners import DEFAULT_SPACE_ID, default_owner
from testkit.elevenlabs import transcription_payload
from tests.conftest import PRODUCTION_STACK
from tests.factories import make_staff

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = (
    Path(__file__).resolve().parents[2]
    / "test-artifacts"
    / "admin-e2e"
    / ("production" if PRODUCTION_STACK else "embedded")
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "Debian's chromium and chromium-driver are needed: run scripts/install-services"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1400",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


class Steps:
    """One test's walk through the admin; its screenshots go to test-artifacts/admin-e2e/<stack>/<folder>/."""

    def __init__(self, driver, base_url, folder: str):
        self.driver = driver
        self.base_url = base_url
        self.count = 0
        self.folder = ARTIFACTS / folder
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)

    def open(self, path):
        self.driver.get(self.base_url + path)

    def shot(self, name):
        self.count += 1
        self.driver.save_screenshot(str(self.folder / f"{self.count:02d}-{name}.png"))

    def text(self, element_id):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id).text

    def click(self, css):
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, css).click()

    def submit(self, css):
        """Click something that loads a new page, and wait until it has."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        old_page = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.CSS_SELECTOR, css).click()

        def left_the_old_page(_driver) -> bool:
            try:
                old_page.is_enabled()
            except StaleElementReferenceException:
                return True
            except WebDriverException as error:  # Chromium asked mid-navigation says it this way
                if "does not belong to the document" in str(error):
                    return True
                raise
            return False

        WebDriverWait(self.driver, 15).until(left_the_old_page)

    def type(self, css, value):
        from selenium.webdriver.common.by import By

        field = self.driver.find_element(By.CSS_SELECTOR, css)
        field.clear()
        field.send_keys(value)

    @property
    def page(self):
        return self.driver.page_source


def test_operator_flows_in_a_real_browser(browser, live_server):
    from selenium.webdriver.support.ui import Select

    User.objects.create_superuser("operator", password="correct horse battery staple")
    generate_embeddings_batch(["user preferences", "CRM system", "a text nobody prewarms"])
    generate_embeddings_batch(["CRM system"])
    failed = WebhookEvent.objects.create(
        event_type="post_call_transcription",
        conversation_id="conv_e2e",
        dedupe_key="post_call_transcription:conv_e2e",
        status="failed",
        attempts=5,
        last_error="EmbeddingProviderError: embedding provider answered HTTP 503",
        body_sha256="0" * 64,
        payload=transcription_payload(conversation_id="conv_e2e", user_id="usr_e2e"),
    )
    steps = Steps(browser, live_server.url, "operator-flows")

    steps.open("/admin/login/?next=/admin/")
    steps.type("#id_username", "operator")
    steps.type("#id_password", "correct horse battery staple")
    steps.shot("login")
    steps.submit("input[type=submit]")
    assert "Operations" in steps.page
    steps.shot("index")

    steps.submit("#embedding-cache-link")
    stats = collect_statistics()
    assert steps.text("stat-entries") == str(stats.entries) == "3"
    assert steps.text("stat-hits") == str(stats.hits) == "1"
    assert steps.text("stat-misses") == str(stats.misses) == "3"
    assert steps.text("stat-provider-calls") == str(stats.provider_calls)
    steps.shot("cache-page")

    steps.submit("#clear-cache")
    assert "Clear the embedding cache?" in steps.page
    steps.shot("clear-confirmation")
    steps.submit("#confirm-clear")
    assert "3 entries removed" in steps.page
    assert steps.text("stat-entries") == "0"
    assert collect_statistics().entries == 0
    steps.shot("cache-cleared")

    steps.open("/admin/embeddings/prewarmquery/add/")
    steps.type("#id_text", "favourite products")
    steps.submit("input[name=_save]")
    assert "favourite products" in steps.page
    steps.open("/admin/embeddings/prewarmquery/?q=favourite")
    steps.type("textarea[name='form-0-notes']", "added in the browser test")
    steps.submit("input[name=_save]")
    steps.shot("prewarm-list-edited")
    steps.open("/admin/embeddings/prewarmquery/?q=favourite")
    steps.click("input.action-select")
    Select(browser.find_element("name", "action")).select_by_value("warm_selected")
    steps.submit("button[name=index]")
    assert "Prewarm: warmed 1, already cached 0, failed 0." in steps.page
    assert cached_query_texts(["favourite products"]) == {"favourite products"}
    assert 'alt="True"' in steps.page  # the "cached now" column
    steps.shot("prewarm-warmed")

    steps.open("/admin/calls/webhookevent/?status__exact=failed")
    assert "conv_e2e" in steps.page
    steps.click("input.action-select")
    Select(browser.find_element("name", "action")).select_by_value("replay_selected")
    steps.submit("button[name=index]")
    assert "Queued 1 events for processing" in steps.page
    steps.shot("event-replayed")
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("received", 0)

    screenshots = sorted(path.name for path in steps.folder.glob("*.png"))
    assert len(screenshots) == steps.count == 8


def log_in(steps: Steps, username: str, password: str) -> None:
    steps.open("/admin/login/?next=/admin/")
    steps.type("#id_username", username)
    steps.type("#id_password", password)
    steps.submit("input[type=submit]")


def action_values(browser) -> set[str]:
    from selenium.webdriver.common.by import By

    return {
        option.get_attribute("value") for option in browser.find_elements(By.CSS_SELECTOR, "select[name=action] option")
    }


def test_each_permission_level_sees_only_the_actions_it_may_take(browser, live_server):
    from django.contrib.auth.models import Permission
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from memories.models import Memory
    from memories.services import NewMemory, create_memory

    create_memory(default_owner("usr_browser"), NewMemory("Prefers email over phone calls"))
    WebhookEvent.objects.create(
        event_type="post_call_transcription",
        conversation_id="conv_perm",
        dedupe_key="post_call_transcription:conv_perm",
        space_id=DEFAULT_SPACE_ID,
        status="failed",
        body_sha256="0" * 64,
        payload=transcription_payload(conversation_id="conv_perm", user_id="usr_browser"),
    )
    viewer = make_staff("viewer", password="viewer password 123")
    viewer.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["memories", "calls"], codename__startswith="view")
    )
    User.objects.create_superuser("root", password="root password 123")
    steps = Steps(browser, live_server.url, "permission-levels")

    log_in(steps, "viewer", "viewer password 123")
    steps.open("/admin/memories/memory/")
    assert "Prefers email over phone calls" in steps.page
    assert "forget_users" not in action_values(browser) and "delete_selected" not in action_values(browser)
    assert not browser.find_elements(By.CSS_SELECTOR, "a.addlink")
    steps.shot("viewer-memories")
    steps.open("/admin/calls/webhookevent/")
    assert "conv_perm" in steps.page and "replay_selected" not in action_values(browser)
    steps.shot("viewer-events")
    browser.delete_all_cookies()  # log out (Django logs out on POST only)

    log_in(steps, "root", "root password 123")
    steps.open("/admin/memories/memory/")
    assert {"forget_users", "delete_selected"} <= action_values(browser)
    steps.click("input.action-select")
    Select(browser.find_element("name", "action")).select_by_value("forget_users")
    steps.submit("button[name=index]")
    assert "Forget these users?" in steps.page and "usr_browser" in steps.page
    steps.shot("root-forget-confirmation")
    steps.submit("#confirm-forget")
    assert "Forgot usr_browser" in steps.page
    assert not Memory.objects.filter(user_id="usr_browser").exists()
    steps.shot("root-forgot")


def test_the_charts_in_a_real_browser(browser, live_server):
    from datetime import timedelta

    from django.utils import timezone
    from selenium.webdriver.common.by import By

    from core.models import DailyCount
    from embeddings.models import CacheStatsSample
    from memories.tasks import MEMORIES_PER_DAY

    today = timezone.now().date()
    for offset, value in enumerate([12, 30, 7, 41]):
        DailyCount.objects.create(name=MEMORIES_PER_DAY, day=today - timedelta(days=3 - offset), value=value)
    for minutes, hits, misses in [(300, 0, 0), (240, 80, 20), (180, 120, 80), (120, 130, 170), (60, 200, 180)]:
        row = CacheStatsSample.objects.create(hits=hits, misses=misses, provider_calls=misses, evictions=0)
        CacheStatsSample.objects.filter(pk=row.pk).update(taken_at=timezone.now() - timedelta(minutes=minutes))
    User.objects.create_superuser("root", password="root password 123")
    steps = Steps(browser, live_server.url, "charts")
    log_in(steps, "root", "root password 123")

    chart = browser.find_element(By.ID, "chart-memories-per-day")
    assert chart.is_displayed() and chart.size["width"] > 200
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.bar")) == 4
    steps.shot("index-activity-charts")
    steps.open("/admin/embedding-cache/")
    for key in ("hit-rate-24h", "provider-calls-24h", "evictions-24h", "hit-rate-7d"):
        assert browser.find_element(By.ID, f"chart-{key}").is_displayed()
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-hit-rate-24h rect.bar")
    assert len(bars) == 4  # four hours with samples
    browser.execute_script("document.getElementById('cache-history').scrollIntoView()")
    steps.shot("cache-charts")
