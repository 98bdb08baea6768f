"""Test settings: the real settings module, read with a test secret and a throw-away data folder.

The stack comes from the environment exactly as in production: no DATABASE_URL/REDIS_URL = embedded,
both set = PostgreSQL + pgvector + Redis (see scripts/test).
"""

import os
import tempfile

TEST_SECRET_KEY = "tests-only-not-a-secret-but-long-and-varied-enough-0123456789"
os.environ["READ_DOTENV"] = "0"
os.environ.setdefault("SECRET_KEY", TEST_SECRET_KEY)
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="memoryplatform-tests-"))
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("TASKS_IN_PROCESS_WORKER", "0")  # tests run the worker explicitly
# Reinforce in the request: no background thread outliving a test (tests/memories covers the buffer itself).
os.environ.setdefault("MEMORY_REINFORCE_DELAY_SECONDS", "0")
# The lexical stand-in for a model (microseconds per text), at OpenAI's default size; tests of the semantic
# provider build it themselves.
os.environ.setdefault("EMBEDDING_PROVIDER", "hashing")
os.environ.setdefault("EMBEDDING_DIMENSIONS", "1536")
os.environ.setdefault("API_THROTTLE_RATE", "100000/minute")  # tests/memories/test_api.py lowers it to see a 429

from memoryplatform.settings import *  # noqa: E402, F403
from memoryplatform.settings import DATA_DIR, DATABASES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not SQLite's shared in-memory database: threads and subprocesses in the tests need real locking.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}

# The suite does not run collectstatic: serve the admin's files from the apps (WhiteNoise finders),
# without the manifest that collectstatic writes in production.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
