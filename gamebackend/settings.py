"""Settings for gamebackend, driven entirely by the environment.

Two profiles:

* single machine (nothing configured): SQLite in WAL mode, in-process channel layer,
  Celery over kombu's filesystem transport, everything under ``GAME_VAR_DIR``;
* cluster node (``DATABASE_URL`` and/or ``REDIS_URL``): PostgreSQL, channels-redis,
  Redis as Celery broker, sessions and cache.

Every setting is documented in the README's configuration table.
"""

from __future__ import annotations

import dj_database_url

from gamebackend import conf

BASE_DIR = conf.BASE_DIR
GAME_VAR_DIR = conf.var_dir()

DATABASE_URL = conf.env_str("DATABASE_URL")
REDIS_URL = conf.env_str("REDIS_URL")
GAME_CLUSTER = bool(DATABASE_URL or REDIS_URL)
GAME_PROFILE = "cluster" if GAME_CLUSTER else "single"

SECRET_KEY = conf.resolve_secret(
    "DJANGO_SECRET_KEY", "django_secret_key", cluster=GAME_CLUSTER, directory=GAME_VAR_DIR
)
GAME_JWT_SECRET = conf.resolve_secret(
    "GAME_JWT_SECRET", "jwt_secret", cluster=GAME_CLUSTER, directory=GAME_VAR_DIR
)
DEBUG = conf.env_bool("DJANGO_DEBUG", False)

GAME_BIND = conf.parse_bind()
# Server processes of this node (``runnode --processes``) and which one this is; each
# has its own actor system and node id (``game.p1@host:port``).
GAME_PROCESSES = conf.env_int("GAME_PROCESSES", 1, minimum=1)
GAME_PROCESS_INDEX = conf.env_int("GAME_PROCESS_INDEX", 0, minimum=0)
GAME_NODE_ID = conf.process_node_id(
    conf.env_str("GAME_NODE_ID") or conf.default_node_id(GAME_BIND),
    GAME_PROCESS_INDEX,
    GAME_PROCESSES,
)

ALLOWED_HOSTS = conf.csv_list(
    conf.env_str("DJANGO_ALLOWED_HOSTS", f"{GAME_BIND.host},localhost,127.0.0.1")
)

# --- Applications -----------------------------------------------------------------------

INSTALLED_APPS = [
    "daphne",
    # The Django admin with the console's own AdminSite (console/sites.py) as admin.site.
    "console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "gamebackend",
    "gamebackend.audit",
    "gamebackend.moderation",
    "gamebackend.health",
    "gamebackend.players",
    "gamebackend.accounts",
    "gamebackend.rooms",
    "gamebackend.gateway",
    "gamebackend.flow",
    "gamebackend.snapshots",
    "gamebackend.events",
    "gamebackend.play",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A Content-Security-Policy on every HTML page (console/middleware.py).
    "console.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a lockout into the lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "gamebackend.urls"
ASGI_APPLICATION = "gamebackend.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.node",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------

# How long a SQLite writer waits for the lock before "database is locked".
SQLITE_BUSY_TIMEOUT_S = 20
# Reuse PostgreSQL connections for this long (the worker and HTTP threads are long-lived).
POSTGRES_CONN_MAX_AGE_S = 60

if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=POSTGRES_CONN_MAX_AGE_S, conn_health_checks=True
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(GAME_VAR_DIR / "db.sqlite3"),
            "OPTIONS": {
                # WAL lets the web process read while the Celery worker writes.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                # Take the write lock at BEGIN so two writers queue instead of deadlocking.
                "transaction_mode": "IMMEDIATE",
                "timeout": SQLITE_BUSY_TIMEOUT_S,
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer, cache, sessions ------------------------------------------------------

# Messages a channel may hold before channels-redis refuses more (a slow consumer).
CHANNEL_CAPACITY = 1000
# Seconds a message may wait in a channel before channels-redis drops it.
CHANNEL_EXPIRY_S = 60

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": "game",
                "capacity": CHANNEL_CAPACITY,
                "expiry": CHANNEL_EXPIRY_S,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "game",
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_CAPACITY, "expiry": CHANNEL_EXPIRY_S},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Celery -------------------------------------------------------------------------------

CELERY_BROKER_DIR = GAME_VAR_DIR / "broker"
# How often the single-machine worker looks for new messages in the broker folder.
FILESYSTEM_POLL_S = 0.005
CELERY_RESULTS_DIR = GAME_VAR_DIR / "results"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
else:
    for _sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    # The host part means nothing to the filesystem transport, but kombu's virtual
    # transports declare a default hostname ("localhost") and warn "No hostname was
    # supplied. Reverting to default" each time a connection without one is copied (the
    # worker's consumer, every producer pool): naming it keeps the log clean.
    # kombu's filesystem transport with atomic message writes (gamebackend/fsbroker.py),
    # registered under its own URL scheme in every process that reads these settings.
    from kombu.transport import TRANSPORT_ALIASES

    TRANSPORT_ALIASES.setdefault("gamefs", "gamebackend.fsbroker:Transport")
    CELERY_BROKER_URL = "gamefs://localhost/"
    CELERY_RESULT_BACKEND = f"file://{CELERY_RESULTS_DIR}"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # One folder both ways: producers and the worker share it on this machine.
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
        # Broadcast (remote control) files too, or kombu writes them into the CWD.
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        # kombu polls the folder every second by default: a flush batch would wait up to
        # a second before the worker sees it (docs/DURABILITY.md; the lag is measured in
        # BENCHMARKS.md). A directory listing every FILESYSTEM_POLL_S costs little.
        "polling_interval": FILESYSTEM_POLL_S,
    }
# JSON only: pickle from a broker is remote code execution.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
# A task is acknowledged after it ran, so a worker crash re-delivers it (tasks are idempotent).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
GAME_CELERY_CONCURRENCY = conf.env_int("GAME_CELERY_CONCURRENCY", 4, minimum=1)
# Periodic tasks (retention): runnode's supervisor enqueues them (management/periodic.py)
# in both profiles; they are idempotent, so two nodes sending one twice is harmless.
GAME_RETENTION_EVERY_S = conf.env_float("GAME_RETENTION_EVERY_S", 3600.0, minimum=1.0)

# --- Game runtime -------------------------------------------------------------------------

GAME_MAX_MESSAGE_BYTES = conf.env_int("GAME_MAX_MESSAGE_BYTES", 64 * 1024, minimum=1024)
GAME_MAILBOX_SIZE = conf.env_int("GAME_MAILBOX_SIZE", 1024, minimum=1)
GAME_ADMIN_USER = conf.env_str("GAME_ADMIN_USER", "operator")
GAME_WORLD_SIZE = conf.env_float("GAME_WORLD_SIZE", 10_000.0, minimum=1.0)

# --- Gateway (docs/PROTOCOL.md) -------------------------------------------------------------

GAME_HEARTBEAT_S = conf.env_float("GAME_HEARTBEAT_S", 15.0, minimum=0.05)
GAME_HEARTBEAT_MISSES = conf.env_int("GAME_HEARTBEAT_MISSES", 3, minimum=1)
GAME_OUTBOX_MAX = conf.env_int("GAME_OUTBOX_MAX", 1024, minimum=1)
GAME_RESUME_GRACE_S = conf.env_float("GAME_RESUME_GRACE_S", 60.0, minimum=0.0)
# Sessions, two levels (gateway/sessionstore): L1 per node, L2 shared and outliving a node.
GAME_SESSION_L1_SIZE = conf.env_int("GAME_SESSION_L1_SIZE", 10_000, minimum=1)
GAME_SESSION_L1_TTL_S = conf.env_float("GAME_SESSION_L1_TTL_S", 30.0, minimum=0.1)
GAME_SESSION_L2_TTL_S = conf.env_int("GAME_SESSION_L2_TTL_S", 1800, minimum=1)
# L2 writes are batched every this many ms: what a kill -9 of a node can lose.
GAME_SESSION_FLUSH_MS = conf.env_int("GAME_SESSION_FLUSH_MS", 20, minimum=1)
# L2's Redis (cluster profile); defaults to REDIS_URL. Empty: a SQLite file in GAME_VAR_DIR.
GAME_SESSION_REDIS_URL = conf.env_str("GAME_SESSION_REDIS_URL") or REDIS_URL
# GAME_SESSION_REDIS_URL names a Redis Cluster node: use redis-py's cluster client.
GAME_SESSION_REDIS_CLUSTER = conf.env_bool("GAME_SESSION_REDIS_CLUSTER", False)
# A ticket's iat must be this close to the server clock, either way (anti-replay window).
GAME_TICKET_MAX_AGE_S = conf.env_float("GAME_TICKET_MAX_AGE_S", 30.0, minimum=1.0)
# Lifetime of issued tickets and the longest `exp - iat` accepted (<= GAME_TICKET_MAX_AGE_S).
GAME_TICKET_TTL_S = conf.ticket_ttl(GAME_TICKET_MAX_AGE_S)
GAME_ALLOWED_ORIGINS = frozenset(
    conf.csv_list(
        conf.env_str(
            "GAME_ALLOWED_ORIGINS",
            f"http://{GAME_BIND.host}:{GAME_BIND.port},http://localhost:{GAME_BIND.port}",
        )
    )
)
# Guests (no account) may get tickets: on by default only on a single machine.
GAME_ALLOW_GUESTS = conf.env_bool("GAME_ALLOW_GUESTS", not GAME_CLUSTER)
# Players' refresh tokens (docs/PROTOCOL.md): each refresh extends the session this long.
GAME_REFRESH_TOKEN_TTL_S = conf.env_int("GAME_REFRESH_TOKEN_TTL_S", 30 * 86400, minimum=60)
# Player logins: this many failures of a username from one address lock that pair out
# for GAME_PLAYER_LOCKOUT_S (the console's django-axes does the same for staff).
GAME_PLAYER_LOGIN_FAILURE_LIMIT = conf.env_int("GAME_PLAYER_LOGIN_FAILURE_LIMIT", 5, minimum=1)
GAME_PLAYER_LOCKOUT_S = conf.env_int("GAME_PLAYER_LOCKOUT_S", 900, minimum=1)
# Actors' on_stop must finish within this at shutdown (inside the 10 s stop budget).
GAME_SHUTDOWN_TIMEOUT_S = conf.env_float("GAME_SHUTDOWN_TIMEOUT_S", 6.0, minimum=0.0)
GAME_ACCESS_LOG = conf.env_bool("GAME_ACCESS_LOG", True)

# --- Request bodies (gamebackend/bodylimit.py) ---------------------------------------------

# Longest request body per path, refused with 413 before it is read: the auth API takes
# small JSON, the console its forms; anything else has no business sending much.
GAME_MAX_AUTH_BODY_BYTES = conf.env_int("GAME_MAX_AUTH_BODY_BYTES", 4 * 1024, minimum=256)
GAME_MAX_CONSOLE_BODY_BYTES = conf.env_int(
    "GAME_MAX_CONSOLE_BODY_BYTES", 1024 * 1024, minimum=16 * 1024
)
GAME_MAX_BODY_BYTES = conf.env_int("GAME_MAX_BODY_BYTES", 64 * 1024, minimum=1024)

# --- Durable state (docs/DURABILITY.md) ----------------------------------------------------

# A flush batch leaves when this many entities are dirty, or GAME_FLUSH_MS after the first.
GAME_FLUSH_BATCH = conf.env_int("GAME_FLUSH_BATCH", 64, minimum=1)
GAME_FLUSH_MS = conf.env_float("GAME_FLUSH_MS", 10.0, minimum=0.0)
# Entities the node holds unflushed (coalesced, newest version each) plus in flight before
# it refuses new players with close 1013.
GAME_FLUSH_BUFFER_MAX = conf.env_int("GAME_FLUSH_BUFFER_MAX", 100_000, minimum=1)
# A sent batch whose rows are not committed after this long is sent again (from the journal).
GAME_FLUSH_REDELIVER_S = conf.env_float("GAME_FLUSH_REDELIVER_S", 5.0, minimum=0.1)
# A batch failing this many times in the worker goes to the dead-letter table.
GAME_FLUSH_MAX_RETRIES = conf.env_int("GAME_FLUSH_MAX_RETRIES", 5, minimum=0)
# Periodic snapshots of online entities, and what the beat task keeps.
GAME_SNAPSHOT_EVERY_S = conf.env_float("GAME_SNAPSHOT_EVERY_S", 60.0, minimum=0.1)
GAME_SNAPSHOT_KEEP = conf.env_int("GAME_SNAPSHOT_KEEP", 20, minimum=1)
GAME_SNAPSHOT_DAILY_DAYS = conf.env_int("GAME_SNAPSHOT_DAILY_DAYS", 7, minimum=0)
# The in-process event bus: worker tasks and queue bound; the event log's retention.
GAME_EVENT_WORKERS = conf.env_int("GAME_EVENT_WORKERS", 8, minimum=1)
GAME_EVENT_QUEUE_MAX = conf.env_int("GAME_EVENT_QUEUE_MAX", 10_000, minimum=1)
GAME_EVENT_LOG_DAYS = conf.env_int("GAME_EVENT_LOG_DAYS", 14, minimum=1)

# --- Rooms (docs/ROOMS.md) -------------------------------------------------------------------

# A room with no members stops after this long (its battle ends).
GAME_ROOM_IDLE_S = conf.env_float("GAME_ROOM_IDLE_S", 30.0, minimum=0.0)
# Cluster profile: a room's directory lease; a dead node's rooms move after at most this.
GAME_ROOM_LEASE_S = conf.env_float("GAME_ROOM_LEASE_S", 10.0, minimum=0.3)

# --- The node's server (gamebackend/server/) ------------------------------------------------

GAME_SERVER = conf.server_choice()
# A connection must complete each request head (and a WebSocket its upgrade) within this.
GAME_HANDSHAKE_TIMEOUT_S = conf.env_float("GAME_HANDSHAKE_TIMEOUT_S", 10.0, minimum=0.1)
# Concurrent TCP connections from one client address (trusted proxies are exempt).
GAME_MAX_CONNS_PER_IP = conf.env_int("GAME_MAX_CONNS_PER_IP", 64, minimum=1)

# --- Flow control (docs/FLOW.md) ------------------------------------------------------------

# Rate limits at the gateway and the auth API; off only for benchmarks' baselines.
GAME_RATE_LIMITS = conf.env_bool("GAME_RATE_LIMITS", True)
# Rate-limit rejections of one connection within 10 s before it is closed with 4429.
GAME_ABUSE_THRESHOLD = conf.env_int("GAME_ABUSE_THRESHOLD", 50, minimum=1)
# A worker counts as alive when it answered a ping this recently (readiness).
GAME_WORKER_PING_MAX_AGE_S = conf.env_float("GAME_WORKER_PING_MAX_AGE_S", 30.0, minimum=1.0)
# Set by `manage.py runnode` for its children: where it reports the worker's state
# (gamebackend/health/supervision.py); empty when the web server runs unsupervised.
GAME_SUPERVISOR_STATE_FILE = conf.env_str("GAME_SUPERVISOR_STATE_FILE")

# --- Security -----------------------------------------------------------------------------

GAME_SECURE = conf.env_bool("DJANGO_SECURE", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
if GAME_SECURE:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = conf.env_bool("DJANGO_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # TLS ends at the load balancer, which says so in this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
CSRF_TRUSTED_ORIGINS = conf.csv_list(conf.env_str("DJANGO_CSRF_TRUSTED_ORIGINS"))

# Proxies (comma-separated CIDRs) whose X-Forwarded-For names the client: per-IP limits
# and the console lockout then key on the client, not the proxy (gamebackend/clientaddr.py).
GAME_TRUSTED_PROXIES = conf.env_networks("GAME_TRUSTED_PROXIES")

# django-axes: lock an account+IP out of the console after repeated failed logins.
AXES_CLIENT_IP_CALLABLE = "gamebackend.clientaddr.request_client_address"
AXES_FAILURE_LIMIT = conf.env_int("GAME_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# The styled lockout page that says when the account unlocks (console/views.py).
AXES_LOCKOUT_CALLABLE = "console.views.lockout"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- I18N, static -------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = GAME_VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Serve the console's assets straight from the apps: no collectstatic step to forget.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Logging ------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": conf.env_str("GAME_LOG_LEVEL", "INFO").upper()},
    "loggers": {"axes": {"level": "WARNING"}},
}
