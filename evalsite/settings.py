"""Settings for juice-eval, driven by environment variables with safe defaults.

Defaults are for a newcomer's first run: SQLite under var/ and a filesystem Celery broker that
needs no server. Set DATABASE_URL=postgres://… and CELERY_BROKER_URL=redis://… for real use.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("JUICE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h] or (
    ["127.0.0.1", "localhost", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "generation",
    "raters",
    "analysis",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "raters.auth.AuthenticationMiddleware",  # Django's, keeping sessions of a moved backend
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# 429 after repeated failed sign-ins; a friendly 503 while the database is unreachable.
MIDDLEWARE.insert(1, "evalsite.ratelimit.LoginRateLimitMiddleware")
MIDDLEWARE.append("evalsite.resilience.DatabaseUnavailableMiddleware")
LOGIN_RATE_LIMIT = (5, 20, 300)  # failures per username, per address, window in seconds
# Behind nginx: "HTTP_X_FORWARDED_FOR" (nginx sets it to $remote_addr), else REMOTE_ADDR.
LOGIN_RATE_LIMIT_CLIENT_IP_HEADER = os.environ.get("DJANGO_CLIENT_IP_HEADER", "")
# Behind nginx: clips are handed to its `internal` location (docs/production.md, evalsite.accel).
JUICE_MEDIA_ACCEL_PREFIX = os.environ.get("JUICE_MEDIA_ACCEL_PREFIX", "")
# Rating hot path: how often a web process sweeps abandoned assignments back into the pool
# while handing out tasks, and how long the study-wide "what is left" count is reused.
JUICE_EXPIRY_SWEEP_SECONDS = float(os.environ.get("JUICE_EXPIRY_SWEEP_SECONDS", "5"))
JUICE_PROGRESS_CACHE_SECONDS = float(os.environ.get("JUICE_PROGRESS_CACHE_SECONDS", "2"))
# ... and how long a web process reuses a study's settings (edits reach raters that late).
JUICE_STUDY_CACHE_SECONDS = float(os.environ.get("JUICE_STUDY_CACHE_SECONDS", "2"))
# A paused or closed study still takes answers to tasks claimed before the stop this long.
JUICE_CLOSE_GRACE_MINUTES = float(os.environ.get("JUICE_CLOSE_GRACE_MINUTES", "10"))
if os.environ.get("DJANGO_CACHE_URL", "").startswith("redis"):
    # Shared by every web worker, so login failures are counted site-wide.
    CACHES = {
        "default": {
            "BACKEND": "evalsite.cache.RedisCache",
            "LOCATION": os.environ["DJANGO_CACHE_URL"],
        }
    }
    # Sessions read from the shared cache, written through to the database: a rating request
    # then costs no session query. (Not with the per-process default cache: a logout in one
    # worker would not reach the others.)
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

ROOT_URLCONF = "evalsite.urls"
WSGI_APPLICATION = "evalsite.wsgi.application"
ASGI_APPLICATION = "evalsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "evalsite" / "templates"],
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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'juice.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A fresh clone has no var/ yet, and SQLite cannot create a file in a missing folder.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Worker and web server write concurrently: wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters bound on the server let psycopg prepare a statement after a few runs on a
    # connection: the rating hot path's joins are then planned once per connection instead of
    # on every request (planning was most of their database time). Behind a PgBouncer in
    # transaction mode, set DATABASE_PREPARE_THRESHOLD="" to turn preparing off.
    threshold = os.environ.get("DATABASE_PREPARE_THRESHOLD", "5")
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=int(threshold) if threshold else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's model backend, loading the rater profile with the user (one query per request).
AUTHENTICATION_BACKENDS = ["raters.auth.ProfileBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "raters:home"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON with a nesting limit (evalsite.parsers): deep nesting is a 400, not a 500.
    "DEFAULT_PARSER_CLASSES": [
        "evalsite.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS: dict[str, object] = {
    "TITLE": "juice-eval API",
    "VERSION": "0.1.0",
    # One name for the left/right/tie choice that both JUICE questions share (silences W001,
    # which `check --deploy --fail-level WARNING` would fail on).
    "ENUM_NAME_OVERRIDES": {"SideEnum": ["left", "right", "tie"]},
}

# Celery: generation goes to the `gpu` queue, one task at a time per worker process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_DIR = Path(os.environ.get("CELERY_BROKER_DIR", VAR_DIR / "broker"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "out"),
        "data_folder_out": str(CELERY_BROKER_DIR / "out"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
        # Broadcast control messages (ping, revoke) live here too, not in the working folder.
        "control_folder": str(CELERY_BROKER_DIR / "control"),
    }
else:
    # Redelivery after a lost worker: a little longer than the slowest generation chunk.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
        "unacked_restore_interval": int(os.environ.get("CELERY_UNACKED_RESTORE_INTERVAL", "10")),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    # Light bookkeeping stays off the GPU machines; exact names win over the glob.
    "generation.requeue_stuck": {"queue": "default"},
    "generation.import_chunk": {"queue": "default"},
    "generation.delete_orphan_files": {"queue": "default"},
    "raters.expire_assignments": {"queue": "default"},
    "raters.prepare_clip": {"queue": "default"},
    "generation.*": {"queue": "gpu"},
}
CELERY_TASK_ALWAYS_EAGER = False
# Run `celery -A evalsite beat` on one machine to sweep stuck jobs; the progress page can too.
CELERY_BEAT_SCHEDULE = {
    "requeue-stuck-generation-jobs": {"task": "generation.requeue_stuck", "schedule": 300.0},
    "delete-orphan-video-files": {"task": "generation.delete_orphan_files", "schedule": 86400.0},
    # Web processes also sweep lazily while handing out tasks (JUICE_EXPIRY_SWEEP_SECONDS).
    "expire-abandoned-assignments": {"task": "raters.expire_assignments", "schedule": 60.0},
}

# Generation jobs: attempts before a job fails, first retry delay (doubles each time), the age
# after which a running job counts as stuck, the torch device ("" picks cuda when present) and
# what the U-Nets compute in (float32, or bfloat16/float16 on GPUs: docs/production.md).
JUICE_JOB_MAX_ATTEMPTS = int(os.environ.get("JUICE_JOB_MAX_ATTEMPTS", "3"))
JUICE_RETRY_BACKOFF_S = float(os.environ.get("JUICE_RETRY_BACKOFF_S", "5"))
JUICE_JOB_STUCK_AFTER_S = int(os.environ.get("JUICE_JOB_STUCK_AFTER_S", "3600"))
JUICE_DEVICE = os.environ.get("JUICE_DEVICE", "")
JUICE_PRECISION = os.environ.get("JUICE_PRECISION", "float32")
# Threads that encode MP4s and posters while the model samples the next batch (x264 is a
# subprocess: each thread keeps one CPU core busy).
JUICE_ENCODE_WORKERS = max(1, int(os.environ.get("JUICE_ENCODE_WORKERS", "2")))

# Imported videos (generation/imports.py): longer, larger or bigger files are refused, and a
# staff upload (a zip, or a manifest with its files) may be at most JUICE_IMPORT_UPLOAD_MAX_MB.
JUICE_IMPORT_MAX_SECONDS = float(os.environ.get("JUICE_IMPORT_MAX_SECONDS", "60"))
JUICE_IMPORT_MAX_PIXELS = int(os.environ.get("JUICE_IMPORT_MAX_PIXELS", str(1920 * 1088)))
JUICE_IMPORT_MAX_BYTES = int(os.environ.get("JUICE_IMPORT_MAX_MB", "500")) * 1024 * 1024
JUICE_IMPORT_UPLOAD_MAX_MB = int(os.environ.get("JUICE_IMPORT_UPLOAD_MAX_MB", "1024"))
# Where staff uploads are unpacked; the `default` queue's workers read them from there, so on
# several machines it is a shared disk, like MEDIA_ROOT.
JUICE_IMPORT_DIR = Path(os.environ.get("JUICE_IMPORT_DIR", VAR_DIR / "imports"))

# Where the built-in family's trained checkpoints live (kind `emu`).
JUICE_CHECKPOINT_DIR = Path(
    os.environ.get("JUICE_CHECKPOINT_DIR", BASE_DIR / "generation" / "checkpoints")
)

if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
