"""Django settings for tests/test_real_schemas.py: Django's contrib apps and one database, nothing else.

The database is named by the test in $SCHEMALOG_DJANGO_DATABASE, a URL as schemalog takes it
(postgresql://, mysql://, sqlite:///), so that ``python -m django migrate`` builds the schema Django
itself makes, in the fresh database the test made for it.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

_url = urlsplit(os.environ["SCHEMALOG_DJANGO_DATABASE"])

if _url.scheme == "sqlite":
    _database = {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(_url.path)}
else:
    _mysql = _url.scheme in ("mysql", "mariadb")
    if _mysql:
        # Django's MySQL backend wants mysqlclient (a C build); PyMySQL, which schemalog already uses,
        # stands in for it the way PyMySQL documents.
        import pymysql

        pymysql.install_as_MySQLdb()
    _database = {
        "ENGINE": "django.db.backends.mysql" if _mysql else "django.db.backends.postgresql",
        "NAME": unquote(_url.path.lstrip("/")),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
    }
    if _mysql:
        _database["OPTIONS"] = {"charset": "utf8mb4"}

DATABASES = {"default": _database}
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sites",
    "django.contrib.redirects",
    "django.contrib.flatpages",
]
# What the admin's system checks require of a project (Django's startproject template has the same).
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
SITE_ID = 1
SECRET_KEY = "only for building a test database"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
