"""movierec settings: one file, every deploy-specific value read from the environment.

The defaults are safe for development (SQLite, console email, DEBUG on). With DEBUG off the
site refuses to start on the development secret key.
"""
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEV_SECRET_KEY = "dev-insecure-movierec-secret-key-change-me"
DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("DEBUG is off but SECRET_KEY is the development default: set SECRET_KEY.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "accounts",
    "catalog",
    "recommendations",
]

MIDDLEWARE = [
    "movierec.observability.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "movierec.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "movierec.urls"
WSGI_APPLICATION = "movierec.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while an import or a worker writes; IMMEDIATE transactions
    # take the write lock when they begin, so two processes writing at once wait for each other
    # (up to the timeout) instead of one failing at once with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 30,
                                       "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Redis: cache, Celery broker -------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# The longest one Redis call may wait (connect or answer). After a failure the site stops
# calling Redis for REDIS_BREAKER_SECONDS (movierec.cache_backends: one breaker per process).
REDIS_TIMEOUT = float(os.environ.get("REDIS_TIMEOUT", "0.25"))
REDIS_BREAKER_SECONDS = float(os.environ.get("REDIS_BREAKER_SECONDS", "10"))
_REDIS_OPTIONS = {"socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": REDIS_TIMEOUT}
_REDIS_CACHE = {
    "LOCATION": REDIS_URL,
    # Several deployments (or test runs) can share one Redis with their own prefix and queue.
    "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "movierec"),
    "OPTIONS": _REDIS_OPTIONS,
}
_LOCMEM_CACHE = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "movierec"}
# "default" (rate limits, throttles) fails open when Redis is down; "recommendations"
# (recommendations.cache) raises, so the recommendation code can notice the outage and compute.
CACHES = {
    "default": {"BACKEND": "movierec.cache_backends.FailOpenRedisCache", **_REDIS_CACHE} if REDIS_URL else _LOCMEM_CACHE,
    "recommendations": {"BACKEND": "movierec.cache_backends.GuardedRedisCache", **_REDIS_CACHE}
    if REDIS_URL
    else _LOCMEM_CACHE,
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "3600"))
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "3300"))
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Survives Redis going away while it holds delayed or prefetched messages (see movierec.celery).
CELERY_WORKER_CONSUMER = "movierec.celery:BrokerOutageTolerantConsumer"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# A request must not hang when Redis is down: one try bounded by REDIS_TIMEOUT, then the caller
# logs and moves on (a refresh that could not be sent is re-sent by the pending-refresh sweep).
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_TRANSPORT_OPTIONS = dict(_REDIS_OPTIONS)

# --- Email -----------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "movierec <noreply@movierec.local>")

# --- Accounts (django-allauth) ---------------------------------------------------------------
# Database sessions that record their user, so deleting an account deletes its sessions.
SESSION_ENGINE = "accounts.sessions"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": os.environ.get("LOGIN_FAILED_RATE_LIMIT", "5/5m/ip,5/5m/key"),
    "login": "30/m/ip",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
}
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# A duplicate sign-up email is answered with a form error, as the product asks, at the price of
# revealing that the address has an account (allauth's default hides it). The password reset
# form never reveals it (accounts.forms.ResetPasswordForm).
ACCOUNT_PREVENT_ENUMERATION = False
ACCOUNT_FORMS = {"reset_password": "accounts.forms.ResetPasswordForm"}
# Confirming the email address (in the browser that signed up) signs the new user in.
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
# ...and takes them to the onboarding (tell us your tastes) first.
ACCOUNT_SIGNUP_REDIRECT_URL = "onboarding:start"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[movierec] "
ACCOUNT_CONFIRM_EMAIL_ON_GET = False

# --- REST API --------------------------------------------------------------------------------
# How many reverse proxies sit in front of the site (the client IP for throttles and allauth's
# rate limits is read from X-Forwarded-For that many hops back).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT
API_DESCRIPTION = (BASE_DIR / "movierec" / "api_description.md").read_text(encoding="utf-8")
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Token first: an unauthenticated request gets 401 with WWW-Authenticate: Token.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "movierec.api.TokenAuthentication",  # knox's, one query a request
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["movierec.api.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "movierec.api.Pagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "movierec.api.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["movierec.api.AnonThrottle", "movierec.api.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "120/min"),
        "user": os.environ.get("API_THROTTLE_USER", "600/min"),
        "login": os.environ.get("API_THROTTLE_LOGIN", "10/min"),
    },
    # Throttles tell clients apart by IP: 0 = the connecting address (a client-sent
    # X-Forwarded-For is ignored); behind N proxies, the address N hops back in X-Forwarded-For.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
# API tokens (django-rest-knox): one per sign-in, stored hashed, valid API_TOKEN_TTL_DAYS; a
# password change or reset and a sign-out on the website revoke all of the account's tokens.
API_TOKEN_TTL_DAYS = float(os.environ.get("API_TOKEN_TTL_DAYS", "30"))
# Signing in past this many live tokens deletes the oldest (clients that sign in on every run).
API_TOKENS_PER_USER = int(os.environ.get("API_TOKENS_PER_USER", "10"))
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "movierec API",
    "DESCRIPTION": API_DESCRIPTION,
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "movierec.api.add_error_responses",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- History import (catalog.history_import) ----------------------------------------------------
# Its preview posts one field per film it lists (up to MAX_ROWS = 20,000); Django's default of
# 1,000 fields answered 400 to anyone importing more than about a thousand films. The request
# body stays capped by DATA_UPLOAD_MAX_MEMORY_SIZE.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20_100

# --- MovieLens downloads (manage.py fetch_movielens) -----------------------------------------
MOVIELENS_BASE_URL = os.environ.get("MOVIELENS_BASE_URL", "https://files.grouplens.org/datasets/movielens")
MOVIELENS_CACHE_DIR = Path(os.environ.get("MOVIELENS_CACHE_DIR", BASE_DIR / ".cache" / "movielens"))

# --- Posters from TMDB (manage.py fetch_posters, catalog.tmdb) --------------------------------
TMDB_API_KEY = os.environ.get("TMDB_API_KEY", "")  # a v3 API key or a v4 read access token
TMDB_API_URL = os.environ.get("TMDB_API_URL", "https://api.themoviedb.org/3")
TMDB_IMAGE_URL = os.environ.get("TMDB_IMAGE_URL", "https://image.tmdb.org/t/p")
TMDB_POSTER_SIZE = os.environ.get("TMDB_POSTER_SIZE", "w500")
# TMDB's upper limit sits around 50 requests per second; 20 leaves room for two runs at once.
TMDB_REQUESTS_PER_SECOND = float(os.environ.get("TMDB_REQUESTS_PER_SECOND", "20"))
TMDB_MAX_POSTER_BYTES = int(os.environ.get("TMDB_MAX_POSTER_BYTES", str(2_000_000)))
TMDB_TIMEOUT = float(os.environ.get("TMDB_TIMEOUT", "10"))

# --- Recommendations -------------------------------------------------------------------------
RECOMMENDER_ARTIFACT_DIR = os.environ.get("RECOMMENDER_ARTIFACT_DIR", "models")
# After each publish, only the current version and this many earlier servable ones keep their artifacts.
RECOMMENDER_ROLLBACK_VERSIONS = int(os.environ.get("RECOMMENDER_ROLLBACK_VERSIONS", "3"))
RECOMMENDER_REFIT_MIN_NEW_RATINGS = int(os.environ.get("RECOMMENDER_REFIT_MIN_NEW_RATINGS", "500"))
# Cached top-N per user in Redis (keys carry the model version; old versions expire).
RECOMMENDER_CACHE_TOP_N = int(os.environ.get("RECOMMENDER_CACHE_TOP_N", "60"))
RECOMMENDER_CACHE_TTL = int(os.environ.get("RECOMMENDER_CACHE_TTL", str(3 * 24 * 3600)))
RECOMMENDER_ACTIVE_USER_DAYS = int(os.environ.get("RECOMMENDER_ACTIVE_USER_DAYS", "180"))
# Processes that warm the lists after a publish (forked from the worker, sharing the model): one
# per core by default; 1 warms in the worker's own process.
RECOMMENDER_WARM_PROCESSES = int(os.environ.get("RECOMMENDER_WARM_PROCESSES", "0")) or (os.cpu_count() or 1)
# Celery tasks a warm in a worker asks to help it (idle worker processes, here or on other
# machines, take chunks of users from a shared board in Redis): one per other core by default.
RECOMMENDER_WARM_HELPERS = int(os.environ.get("RECOMMENDER_WARM_HELPERS", str(max(RECOMMENDER_WARM_PROCESSES - 1, 1))))
RECOMMENDER_REFRESH_DEBOUNCE_SECONDS = float(os.environ.get("RECOMMENDER_REFRESH_DEBOUNCE_SECONDS", "1"))
# A refresh sent this long (after its debounce) without running was lost: the sweep sends it again.
RECOMMENDER_REFRESH_LOST_SECONDS = float(os.environ.get("RECOMMENDER_REFRESH_LOST_SECONDS", "30"))
# The refit lock expires this long after its worker stops extending it (e.g. it was killed).
RECOMMENDER_REFIT_LOCK_TTL = int(os.environ.get("RECOMMENDER_REFIT_LOCK_TTL", "60"))

# --- Measuring recommendations (recommendations.impressions, recommendations.experiments) -------
# Log every recommendation shown (buffered in Redis, written in batches by a periodic task).
IMPRESSIONS_ENABLED = env_bool("IMPRESSIONS_ENABLED", True)
# An open, watchlist, rating or hide counts for a film shown this many hours before it at most.
IMPRESSIONS_OUTCOME_WINDOW_HOURS = float(os.environ.get("IMPRESSIONS_OUTCOME_WINDOW_HOURS", "24"))
# Raw impressions older than this are added up per day, row, version and arm, then deleted.
IMPRESSIONS_RETENTION_DAYS = int(os.environ.get("IMPRESSIONS_RETENTION_DAYS", "30"))
# Events one flush moves from Redis to the database; the buffer keeps at most IMPRESSIONS_BUFFER_MAX.
IMPRESSIONS_FLUSH_BATCH = int(os.environ.get("IMPRESSIONS_FLUSH_BATCH", "5000"))
IMPRESSIONS_BUFFER_MAX = int(os.environ.get("IMPRESSIONS_BUFFER_MAX", "1000000"))

# --- Deployment security (all on when DEBUG is off) -----------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", not DEBUG) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Logs and metrics ------------------------------------------------------------------------
# "json": one JSON object per line (request id, user id, view, duration on request lines), for
# log collectors; "text" for a terminal. Celery workers and beat log the same way.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "movierec.observability.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "[%(asctime)s] %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_context"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler would print its records a second time, as plain text.
        "django": {"handlers": [], "level": "INFO"},
        # Routine lines (the refresh sweep every 30 s, every task received and done) would bury
        # what matters; the pipeline logs refits, publishes and warms itself.
        "celery.beat": {"level": os.environ.get("TASK_LOG_LEVEL", "WARNING")},
        "celery.worker.strategy": {"level": os.environ.get("TASK_LOG_LEVEL", "WARNING")},
        "celery.app.trace": {"level": os.environ.get("TASK_LOG_LEVEL", "WARNING")},
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# /metrics answers staff and these addresses or networks (the Prometheus scraper).
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1")
