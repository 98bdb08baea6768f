"""Settings for the memory platform, read from the environment (see the table in README.md).

With no environment at all this is the embedded stack: a SQLite file and a shared local LRU cache under
`data/`, and the local hashing embedding provider. `DATABASE_URL`, `REDIS_URL` and `OPENAI_API_KEY` switch
each part to its production counterpart independently.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from memoryplatform.env import env_bool, env_float, env_int, env_list, env_str, load_dotenv

# The model and vector size of each built-in embedding provider when EMBEDDING_MODEL / EMBEDDING_DIMENSIONS are
# not set (the providers themselves are registered in embeddings.providers).
DEFAULT_MODELS = {
    "local": ("all-MiniLM-L6-v2", 384),
    "hashing": ("local-hash-v1", 384),
    "openai": ("text-embedding-3-small", 1536),
    "openai-compatible": ("text-embedding-3-small", 1536),
}

BASE_DIR = Path(__file__).resolve().parent.parent
if env_bool("READ_DOTENV", default=True):  # the tests turn it off: their stack comes from the environment only
    load_dotenv(BASE_DIR / ".env")

DATA_DIR = Path(env_str("DATA_DIR") or BASE_DIR / "data")

# --- Core ---------------------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_str("SECRET_KEY")
SECRET_KEY_MIN_LENGTH, SECRET_KEY_MIN_UNIQUE_CHARACTERS = 50, 5  # Django's own deployment check's bounds
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY, or DEBUG=1 for a development-only default "
            "(`scripts/run` writes both to .env for you)."
        )
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"
elif not DEBUG and (
    len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
    or SECRET_KEY.startswith("django-insecure-")
):
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak for DEBUG=0: use at least {SECRET_KEY_MIN_LENGTH} random characters, e.g. "
        '`python3 -c "import secrets; print(secrets.token_urlsafe(50))"`.'
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "memoryplatform.apps.PlatformAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_tasks",
    "django_tasks_db",
    "memoryplatform.apps.MemoryPlatformConfig",
    "core",
    "embeddings",
    "memories",
    "calls",
]

MIDDLEWARE = [
    "core.requests.RequestMiddleware",  # first: it times and logs everything below it
    "django.middleware.security.SecurityMiddleware",
    # The ElevenLabs tools and webhooks are answered here (calls.middleware): nothing below sees them, so a
    # middleware meant for every request goes above this line.
    "calls.middleware.ElevenLabsEndpointsMiddleware",
    "core.middleware.StaticFilesMiddleware",  # WhiteNoise, async-capable
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "memoryplatform.urls"
WSGI_APPLICATION = "memoryplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            # Reused like PostgreSQL's: opening one (and its PRAGMAs) for every Custom LLM turn cost a tenth of it.
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        }
    }

if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # Short OLTP queries only: JIT compilation (triggered by pgvector's high cost estimates) costs more
    # than the queries themselves (docs/benchmarks.md).
    _options.setdefault("options", "-c jit=off")
    # An unreachable server fails a request in seconds instead of the operating system's minutes.
    _options.setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1))
elif DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the web server and the worker read while the other writes; IMMEDIATE transactions take the write
    # lock up front instead of failing with "database is locked" half-way through; a writer waits for the lock
    # up to `timeout` seconds (every write transaction is short: no provider call is ever made inside one).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": env_float("SQLITE_LOCK_TIMEOUT", 20.0, minimum=0.1),
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Caches -------------------------------------------------------------------------------------------------
# "embeddings" is a dedicated alias: the embedding cache's statistics, size limit and clear act on it alone.

REDIS_URL = env_str("REDIS_URL")
EMBEDDING_CACHE_REDIS_URL = env_str("EMBEDDING_CACHE_REDIS_URL") or REDIS_URL
# Set when EMBEDDING_CACHE_REDIS_URL names a Redis database used by nothing else (docker-compose does this):
# the entry count is then DBSIZE instead of a SCAN over the keys.
EMBEDDING_CACHE_REDIS_DEDICATED = env_bool("EMBEDDING_CACHE_REDIS_DEDICATED", default=False)
EMBEDDING_CACHE_TTL = env_int("EMBEDDING_CACHE_TTL", 24 * 3600, minimum=0)
EMBEDDING_CACHE_MAX_ENTRIES = env_int("EMBEDDING_CACHE_MAX_ENTRIES", 100_000, minimum=1)
CACHE_SOCKET_TIMEOUT = env_float("CACHE_SOCKET_TIMEOUT", 0.25, minimum=0.01)
CACHE_SOCKET_CONNECT_TIMEOUT = env_float("CACHE_SOCKET_CONNECT_TIMEOUT", 0.25, minimum=0.01)
# After a cache error the cache is skipped for this many seconds; errors are logged at most this often.
EMBEDDING_CACHE_RETRY_AFTER = env_float("EMBEDDING_CACHE_RETRY_AFTER", 5.0, minimum=0)
EMBEDDING_CACHE_ERROR_LOG_EVERY = env_float("EMBEDDING_CACHE_ERROR_LOG_EVERY", 60.0, minimum=0)

_embedding_cache_timeout = EMBEDDING_CACHE_TTL or None  # 0 means no expiry: LRU eviction only

if REDIS_URL:
    _redis_options = {
        "SOCKET_CONNECT_TIMEOUT": CACHE_SOCKET_CONNECT_TIMEOUT,
        "SOCKET_TIMEOUT": CACHE_SOCKET_TIMEOUT,
    }
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "mp",
            "OPTIONS": {**_redis_options, "IGNORE_EXCEPTIONS": False},
        },
        "embeddings": {
            "BACKEND": "embeddings.cache_backends.redis.EmbeddingRedisCache",
            "LOCATION": EMBEDDING_CACHE_REDIS_URL,
            "KEY_PREFIX": "mp",
            "TIMEOUT": _embedding_cache_timeout,
            "OPTIONS": {
                **_redis_options,
                # Values are float32 bytes; this serializer refuses anything else, so nothing read back
                # from Redis is ever unpickled.
                "SERIALIZER": "embeddings.cache_backends.serializers.RawBytesSerializer",
                "DEDICATED_DB": EMBEDDING_CACHE_REDIS_DEDICATED,
            },
        },
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "memoryplatform-default",
        },
        "embeddings": {
            "BACKEND": "embeddings.cache_backends.sqlite_lru.SQLiteLRUCache",
            "LOCATION": env_str("EMBEDDING_CACHE_PATH") or str(DATA_DIR / "embedding-cache.sqlite3"),
            "TIMEOUT": _embedding_cache_timeout,
            "OPTIONS": {"MAX_ENTRIES": EMBEDDING_CACHE_MAX_ENTRIES},
        },
    }

# --- Background tasks (django-tasks; durable, in the database) --------------------------------------------------

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# The embedded stack runs the task worker in a thread of the web process (no extra command to start);
# production runs `manage.py db_worker` as its own process (the `worker` service of docker-compose).
TASKS_IN_PROCESS_WORKER = env_bool("TASKS_IN_PROCESS_WORKER", default=not DATABASE_URL)

# The task worker refreshes its heartbeat row this often; one silent for WORKER_STALE_SECONDS counts as dead.
WORKER_HEARTBEAT_SECONDS = env_float("WORKER_HEARTBEAT_SECONDS", 10.0, minimum=0.1)
WORKER_STALE_SECONDS = env_float("WORKER_STALE_SECONDS", 60.0, minimum=1)
# `run_worker` also writes its heartbeat to this file, for a container healthcheck (`manage.py worker_health`).
WORKER_HEARTBEAT_FILE = Path(env_str("WORKER_HEARTBEAT_FILE") or DATA_DIR / "worker-heartbeat.json")
# After a database error the worker waits, doubling from the first to the longest wait, until it is back.
WORKER_DATABASE_RETRY_SECONDS = env_float("WORKER_DATABASE_RETRY_SECONDS", 0.5, minimum=0.01)
WORKER_DATABASE_RETRY_MAX_SECONDS = env_float("WORKER_DATABASE_RETRY_MAX_SECONDS", 30.0, minimum=0.01)

# --- Embeddings ---------------------------------------------------------------------------------------------

OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")
# "local": all-MiniLM-L6-v2 on the CPU (no key, no server); "openai" (also any compatible server through
# OPENAI_BASE_URL); "hashing": a lexical stand-in for tests; or a dotted path to a provider class.
EMBEDDING_PROVIDER = env_str("EMBEDDING_PROVIDER") or ("openai" if OPENAI_API_KEY or OPENAI_BASE_URL else "local")
_default_model, _default_dimensions = DEFAULT_MODELS.get(EMBEDDING_PROVIDER, DEFAULT_MODELS["openai"])
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL") or _default_model
# The vector column's size is this value when the database is first migrated (manage.py reembed_memories
# --dimensions changes it later); the provider's vectors must have it.
EMBEDDING_DIMENSIONS = env_int("EMBEDDING_DIMENSIONS", _default_dimensions, minimum=1)
# "base64" returns raw float32 bytes (cached as they are); "float" for servers that reject base64.
EMBEDDING_ENCODING_FORMAT = env_str("EMBEDDING_ENCODING_FORMAT", "base64")
EMBEDDING_MAX_INPUT_CHARS = env_int("EMBEDDING_MAX_INPUT_CHARS", 24_000, minimum=1)
EMBEDDING_BATCH_MAX_INPUTS = env_int("EMBEDDING_BATCH_MAX_INPUTS", 2048, minimum=1)
EMBEDDING_BATCH_MAX_TOKENS = env_int("EMBEDDING_BATCH_MAX_TOKENS", 300_000, minimum=1)
EMBEDDING_REQUEST_TIMEOUT = env_float("EMBEDDING_REQUEST_TIMEOUT", 10.0, minimum=0.1)
EMBEDDING_MAX_RETRIES = env_int("EMBEDDING_MAX_RETRIES", 2, minimum=0)
EMBEDDING_TOTAL_TIMEOUT = env_float("EMBEDDING_TOTAL_TIMEOUT", 30.0, minimum=0.1)
EMBEDDING_PREWARM_ON_STARTUP = env_bool("EMBEDDING_PREWARM_ON_STARTUP", default=False)
# Bearer token(s) for /metrics and /metrics/embedding-cache (comma-separated, for rotation).
METRICS_TOKENS = env_list("METRICS_TOKEN")

# --- Memories: search, scoring, dedupe (docs/memories.md explains each) ---------------------------------------

MEMORY_SEARCH_BACKEND = env_str("MEMORY_SEARCH_BACKEND")  # empty: pgvector on PostgreSQL, exact numpy otherwise
# The lexical index's language: a PostgreSQL text search configuration ("english", "simple", "french", ...), read
# when the index is built (first migrate; `manage.py rebuild_text_index` after a change). SQLite stems English
# only ("english"); any other value indexes words as they are.
MEMORY_TEXT_SEARCH_CONFIG = env_str("MEMORY_TEXT_SEARCH_CONFIG", "english")
# A query word found in more of a user's memories than this is left out of the lexical match (PostgreSQL): it
# bounds the work per query for heavy users; such words weigh little in BM25, and the dense side still sees them.
MEMORY_LEXICAL_MAX_DOCUMENTS = env_int("MEMORY_LEXICAL_MAX_DOCUMENTS", 500, minimum=1)
MEMORY_HNSW_MIN_USER_MEMORIES = env_int("MEMORY_HNSW_MIN_USER_MEMORIES", 3000, minimum=0)
MEMORY_HNSW_EF_SEARCH = env_int("MEMORY_HNSW_EF_SEARCH", 200, minimum=1)
MEMORY_PLAN_CACHE_SECONDS = env_float("MEMORY_PLAN_CACHE_SECONDS", 60.0, minimum=0)
# Each web process holds the memories of the callers it serves (memories.caller_cache), up to this many MB, and
# answers their queries without a database round trip; 0 turns it off. Production stack only (it needs Redis).
MEMORY_CALLER_CACHE_MB = env_int("MEMORY_CALLER_CACHE_MB", 128, minimum=0)
# A caller's copy is reloaded after this long even if no write was seen (reinforcement counts, raw SQL writes).
MEMORY_CALLER_CACHE_SECONDS = env_float("MEMORY_CALLER_CACHE_SECONDS", 60.0, minimum=0)
# Dedicated HNSW indexes for the heaviest users (memories.user_indexes); 0 in either turns them off.
MEMORY_USER_INDEX_MIN_MEMORIES = env_int("MEMORY_USER_INDEX_MIN_MEMORIES", 10_000, minimum=0)
MEMORY_USER_INDEX_MAX = env_int("MEMORY_USER_INDEX_MAX", 20, minimum=0)
MEMORY_USER_INDEX_EF_SEARCH = env_int("MEMORY_USER_INDEX_EF_SEARCH", 40, minimum=1)
# Retrieval (memories.query; docs/memories.md): "hybrid" fuses the vector and the lexical index, "dense" uses the
# vector index alone. The defaults below are what the LoCoMo benchmark chose (docs/benchmarks.md).
MEMORY_RETRIEVAL = env_str("MEMORY_RETRIEVAL", "hybrid")
if MEMORY_RETRIEVAL not in ("hybrid", "dense"):
    raise ImproperlyConfigured(f"MEMORY_RETRIEVAL must be 'hybrid' or 'dense', got {MEMORY_RETRIEVAL!r}")
MEMORY_RRF_K = env_int("MEMORY_RRF_K", 60, minimum=1)
# What answers to a query are made of. Call summaries are left out: long and about everything, they matched nearly
# every question and pushed the caller's own words out of the answers (docs/benchmarks.md); they feed the
# conversation initiation's context instead.
MEMORY_ANSWER_KINDS = env_list("MEMORY_ANSWER_KINDS", ["utterance", "data_collection", "fact", "note"])
MEMORY_EXPAND_LINKS = env_bool("MEMORY_EXPAND_LINKS", default=True)
MEMORY_SCORE_WEIGHTS = {
    "relevance": env_float("MEMORY_WEIGHT_RELEVANCE", 1.0, minimum=0),
    "salience": env_float("MEMORY_WEIGHT_SALIENCE", 0.0, minimum=0),
    "recency": env_float("MEMORY_WEIGHT_RECENCY", 0.0, minimum=0),
    "link": env_float("MEMORY_WEIGHT_LINK", 0.0, minimum=0),
    "sector": env_float("MEMORY_WEIGHT_SECTOR", 0.0, minimum=0),
}
MEMORY_RECENCY_HALF_LIFE_DAYS = env_float("MEMORY_RECENCY_HALF_LIFE_DAYS", 30.0, minimum=0.01)
MEMORY_LINK_ATTENUATION = env_float("MEMORY_LINK_ATTENUATION", 0.5, minimum=0)
MEMORY_CANDIDATE_FACTOR = env_int("MEMORY_CANDIDATE_FACTOR", 3, minimum=1)
MEMORY_REINFORCE_STEP = env_float("MEMORY_REINFORCE_STEP", 0.02, minimum=0)
MEMORY_REINFORCE_CAP = env_float("MEMORY_REINFORCE_CAP", 0.9, minimum=0)
# Reinforcement of retrieved memories is applied in the background every this many seconds (0: in the request).
MEMORY_REINFORCE_DELAY_SECONDS = env_float("MEMORY_REINFORCE_DELAY_SECONDS", 1.0, minimum=0)
MEMORY_DEDUPE_SIMILARITY = env_float("MEMORY_DEDUPE_SIMILARITY", 0.95, minimum=0)
MEMORY_LINK_SIMILARITY = env_float("MEMORY_LINK_SIMILARITY", 0.75, minimum=0)
MEMORY_LINKS_PER_MEMORY = env_int("MEMORY_LINKS_PER_MEMORY", 3, minimum=0)
MEMORY_MAX_TEXT_CHARS = env_int("MEMORY_MAX_TEXT_CHARS", 4000, minimum=1)
# A caller turn longer than this is kept as several memories, cut between sentences (calls.extraction).
MEMORY_UTTERANCE_CHUNK_CHARS = env_int("MEMORY_UTTERANCE_CHUNK_CHARS", 1000, minimum=100)
MEMORY_QUERY_MAX_CHARS = env_int("MEMORY_QUERY_MAX_CHARS", 1000, minimum=1)
MEMORY_QUERY_MAX_LIMIT = 50

# --- ElevenLabs endpoints -----------------------------------------------------------------------------------
# Several comma-separated secrets are accepted at once so a secret can be rotated without downtime.

ELEVENLABS_TOOL_SECRET_HEADER = env_str("ELEVENLABS_TOOL_SECRET_HEADER", "X-Memory-Secret")
ELEVENLABS_TOOL_SECRETS = env_list("ELEVENLABS_TOOL_SECRETS")
ELEVENLABS_INITIATION_SECRETS = env_list("ELEVENLABS_INITIATION_SECRETS")
ELEVENLABS_WEBHOOK_SECRETS = env_list("ELEVENLABS_WEBHOOK_SECRETS")
# Post-call HMAC secrets of other ElevenLabs workspaces, each bound to a memory space: "<space slug>:<secret>,...".
# An event signed by one belongs to that space whatever agent it names (calls.spaces).
ELEVENLABS_WEBHOOK_SPACE_SECRETS = env_list("ELEVENLABS_WEBHOOK_SPACE_SECRETS")
ELEVENLABS_INITIATION_SECRET_HEADER = env_str("ELEVENLABS_INITIATION_SECRET_HEADER", "X-Memory-Secret")
# Memory spaces (memories.Space): how long each process remembers which space a secret or an agent belongs to
# (calls.spaces); a revoked secret or a moved agent takes effect within this time.
SPACE_LOOKUP_CACHE_SECONDS = env_float("SPACE_LOOKUP_CACHE_SECONDS", 5.0, minimum=0)
ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS = env_int("ELEVENLABS_WEBHOOK_TOLERANCE_SECONDS", 30 * 60, minimum=1)
# Region for phone numbers sent without a country code ("612 555 0100"); E.164 numbers need none.
PHONE_DEFAULT_REGION = env_str("PHONE_DEFAULT_REGION", "US")
# The memory tool answers within this many seconds: an embedding provider slower than that gets one attempt with
# what is left, then the tool answers its 503 sentence (ElevenLabs' tool timeout is 20 s; a caller notices ~1 s).
TOOL_TIME_BUDGET_SECONDS = env_float("TOOL_TIME_BUDGET_SECONDS", 3.0, minimum=0.1)
# Conversation initiation: the memory_context budget, and an optional first message for known callers
# ({memory_context} and {user_id} are filled in). Empty: the agent keeps its own first message.
INITIATION_CONTEXT_MAX_CHARS = env_int("INITIATION_CONTEXT_MAX_CHARS", 1500, minimum=0)
INITIATION_MEMORIES_PER_QUERY = env_int("INITIATION_MEMORIES_PER_QUERY", 2, minimum=0)
INITIATION_SALIENT_MEMORIES = env_int("INITIATION_SALIENT_MEMORIES", 5, minimum=0)
INITIATION_KNOWN_CALLER_FIRST_MESSAGE = env_str("INITIATION_KNOWN_CALLER_FIRST_MESSAGE")
# JSON bodies nested deeper than this are refused (ElevenLabs' payloads are under ten levels deep).
JSON_MAX_DEPTH = env_int("JSON_MAX_DEPTH", 64, minimum=8)
# Post-call webhooks: bodies up to this size are parsed as JSON; bigger ones (audio) are only scanned.
POST_CALL_MAX_JSON_BYTES = env_int("POST_CALL_MAX_JSON_BYTES", 8 * 1024 * 1024, minimum=1024)
# The largest body accepted (a one-hour call's MP3 is about 30 MB in base64), and how many bodies bigger than
# POST_CALL_MAX_JSON_BYTES (or of unknown length) one process reads at once; more wait up to a second, then 503.
POST_CALL_MAX_BYTES = env_int("POST_CALL_MAX_BYTES", 64 * 1024 * 1024, minimum=1024)
POST_CALL_MAX_CONCURRENT_LARGE_BODIES = env_int("POST_CALL_MAX_CONCURRENT_LARGE_BODIES", 2, minimum=1)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 5, minimum=1)
WEBHOOK_RETRY_BASE_SECONDS = env_float("WEBHOOK_RETRY_BASE_SECONDS", 10.0, minimum=0)
# A worker's claim on an event lasts this long; if the worker dies, the event is retried after it (calls.tasks).
# Longer than the slowest attempt: the provider's and the LLM's timeouts with their retries.
WEBHOOK_LEASE_SECONDS = env_float("WEBHOOK_LEASE_SECONDS", 300.0, minimum=1)
# An event due this long with no task waiting for it gets one; the sweeper looks this often.
WEBHOOK_REQUEUE_AFTER_SECONDS = env_float("WEBHOOK_REQUEUE_AFTER_SECONDS", 60.0, minimum=0)
WEBHOOK_SWEEP_SECONDS = env_float("WEBHOOK_SWEEP_SECONDS", 30.0, minimum=0.1)
# Retention: the payload (the full transcript) of a finished event is erased this many days after it finished,
# leaving its metadata; 0 keeps payloads until the user is forgotten. Failed and quarantined events are kept
# for an operator. Finished task results (calls.tasks' bookkeeping) are pruned after TASK_RESULT_RETENTION_DAYS.
WEBHOOK_PAYLOAD_RETENTION_DAYS = env_int("WEBHOOK_PAYLOAD_RETENTION_DAYS", 30, minimum=0)
TASK_RESULT_RETENTION_DAYS = env_int("TASK_RESULT_RETENTION_DAYS", 14, minimum=1)
RETENTION_SWEEP_SECONDS = env_float("RETENTION_SWEEP_SECONDS", 3600.0, minimum=1)
# The Custom LLM endpoint (/v1/chat/completions, served by the ASGI server): the agent's API key(s), the real LLM it
# forwards to (any OpenAI-compatible server; default: the embedding provider's OpenAI settings), a model to force
# (empty: the one ElevenLabs asks for), and how long and how many memories are looked up per turn.
ELEVENLABS_LLM_SECRETS = env_list("ELEVENLABS_LLM_SECRETS")
CUSTOM_LLM_BASE_URL = env_str("CUSTOM_LLM_BASE_URL") or OPENAI_BASE_URL
CUSTOM_LLM_API_KEY = env_str("CUSTOM_LLM_API_KEY") or OPENAI_API_KEY
CUSTOM_LLM_MODEL = env_str("CUSTOM_LLM_MODEL")
CUSTOM_LLM_TIMEOUT = env_float("CUSTOM_LLM_TIMEOUT", 60.0, minimum=1)
CUSTOM_LLM_MEMORY_BUDGET_SECONDS = env_float("CUSTOM_LLM_MEMORY_BUDGET_SECONDS", 0.3, minimum=0.01)
CUSTOM_LLM_MEMORIES = env_int("CUSTOM_LLM_MEMORIES", 5, minimum=1)
# Memory extraction with an LLM (OpenAI chat completions, structured output); empty = the rule-based one.
EXTRACTION_LLM_MODEL = env_str("EXTRACTION_LLM_MODEL")
EXTRACTION_LLM_TIMEOUT = env_float("EXTRACTION_LLM_TIMEOUT", 60.0, minimum=1)

# --- Auth, i18n, static -------------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or DATA_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # collectstatic fills it; WhiteNoise wants it to exist
# gunicorn serves the admin's static files itself (WhiteNoise); no separate web server is needed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- REST framework -----------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.CleanJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.StrictLimitOffsetPagination",
    "EXCEPTION_HANDLER": "memories.api.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.ScopedRateThrottle"],
    # Per operator (token or session) and scope; a burst beyond it is a 429 with Retry-After.
    "DEFAULT_THROTTLE_RATES": {"operator_api": env_str("API_THROTTLE_RATE", "600/minute")},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Memory platform for ElevenLabs voice agents",
    "DESCRIPTION": "Long-term caller memory: the ElevenLabs endpoints and the operator API.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"SectorEnum": "memories.sectors.Sector"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.document_errors",
        "calls.openapi.add_call_endpoints",
    ],
}

# --- Security (production) ----------------------------------------------------------------------------------

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics"]
    # Only for a trial over plain HTTP (docker compose on localhost) should these be turned off.
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 3600, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Logging: one JSON object per line --------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
# Per-endpoint request counts and latencies on /metrics (core.requests); 0 turns them off (the access log stays).
REQUEST_METRICS = env_bool("REQUEST_METRICS", True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "memoryplatform.logging.JSONFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
