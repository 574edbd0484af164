"""Django settings for Portway, built from the environment (see portway.conf)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from csp.constants import NONE, SELF

from portway import conf
from portway.admin_server import MAX_REQUEST_BODY_BYTES

PORTWAY = conf.load()
DATA_DIR: Path = PORTWAY.data_dir
DATA_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
BASE_DIR = Path(__file__).resolve().parent


def _secret_key() -> str:
    """The installation's signing key, created once and kept 0600 in the data directory."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = os.environ.get("PORTWAY_SECRET_KEY") or _secret_key()
DEBUG = os.environ.get("PORTWAY_DEBUG", "") == "1"
ALLOWED_HOSTS = ["*"]  # the admin port is reached by IP or any name the admin picks

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",  # /api/docs from the package's own files, not a CDN (and no inline script)
    "portway.accounts",
    "portway.certificates",
    "portway.hosts",
    "portway.access",
    "portway.nginx",
    "portway.npmimport",
    "portway.tunnels",
    "portway.web",
    "portway.backups",
]

MIDDLEWARE = [
    "portway.core.https.HttpsMiddleware",  # first: everything after sees the real scheme
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # outside the rest, so it also sees the bare 403/405s other middleware return
    "portway.web.errors.ErrorPageMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portway.core.audit.SourceAddressMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "portway.urls"
WSGI_APPLICATION = "portway.wsgi.application"

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

try:  # MariaDB/MySQL through pure-Python PyMySQL; mysqlclient, if installed, wins
    import MySQLdb  # noqa: F401
except ImportError:
    try:
        import pymysql

        pymysql.install_as_MySQLdb()
    except ImportError:
        pass

DATABASES = {"default": conf.database_settings(DATA_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# Django's defaults, plus plain bcrypt last: users imported from Nginx Proxy Manager keep
# their NPM password (NPM stores raw `$2a$`/`$2b$` bcrypt; the import prefixes "bcrypt$").
# Django re-hashes such a password with the first hasher at the user's next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = PORTWAY.time_zone  # NPM's TZ; stored times stay UTC (USE_TZ)
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve from the package without a collectstatic step

# The admin server refuses larger bodies itself (portway.admin_server); this holds the
# same limit under any other WSGI server.
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

X_FRAME_OPTIONS = PORTWAY.x_frame_options
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Secure is set per response by portway.core.https for requests that came over HTTPS:
# the admin port also serves plain HTTP, where a Secure cookie would be dropped.

# Everything the UI loads is Portway's own static files: no inline script or style, no
# eval (htmx's indicator styles and eval are switched off in web/_head.html), no other
# origin. data: images are Tabler's form controls (SVG in its CSS).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE] if X_FRAME_OPTIONS == "DENY" else [SELF],
    }
}

CSRF_FAILURE_VIEW = "portway.web.errors.csrf_failure"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "portway": {
            "handlers": ["console"],
            "level": os.environ.get("PORTWAY_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}
