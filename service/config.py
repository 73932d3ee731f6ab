"""``schemalog.toml``: the store and the databases, by name.

```toml
store = "postgresql://postgres@127.0.0.1/schemalog"   # optional; --store and SCHEMALOG_STORE win

[databases.main]
url = "postgresql://app@db1/app"
stream = "app"
target = "head"            # a version, a tag or a time; --to wins
allow_destructive = false  # the policy: true lets drops and narrowing through without the flag
lock_timeout = 60          # seconds to wait for another migrator; --lock-timeout wins
```

``schemalog init --config`` writes :data:`CONFIG_TEMPLATE`, every setting explained (tests/test_init_config.py
fails when a field here is missing from it).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from service.config_models import Config as Config
    from service.config_models import DatabaseConfig as DatabaseConfig

CONFIG_FILE = "schemalog.toml"


class ConfigError(ValueError):
    """A config file that cannot be used: the message says where and why."""


class NoConfig(NamedTuple):
    """The config of a run with no file: every setting its default. Not a model, so that such a run (most
    runs: ``show``, ``history``) imports no pydantic for it (issue 14); read the same way as :class:`Config`."""

    store: str | None = None
    databases: Mapping[str, DatabaseConfig] = MappingProxyType({})


def __getattr__(name: str) -> Any:
    """``Config`` and ``DatabaseConfig``, the file's models (service/config_models.py), imported on first use."""
    if name in ("Config", "DatabaseConfig"):
        from service import config_models

        return getattr(config_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CONFIG_TEMPLATE = """\
# schemalog.toml: the store and the databases schemalog migrates, by name.
# Read from --config PATH, else $SCHEMALOG_CONFIG, else ./schemalog.toml. Every setting is optional;
# a key not listed here is refused (one line naming it, exit 2), so that a typo is not silently ignored.

# store: the event log's URL. --store and $SCHEMALOG_STORE win over it; without any of the three it is
# sqlite:///schemalog.db, the embedded default (a file in the working directory). A PostgreSQL log:
#   store = "postgresql://postgres@127.0.0.1/schemalog"
# store = "sqlite:///schemalog.db"

# Not in this file: $SCHEMALOG_LOG_LEVEL (debug, info, warning: the default; -v means info),
# $SCHEMALOG_LOG_FORMAT=json, $SCHEMALOG_STREAM (the stream of commands given no --stream),
# $SCHEMALOG_CHECKPOINT_KEY and $SCHEMALOG_SNAPSHOT_KEY.

# [databases.NAME]: a database to migrate, named for --database NAME (--all takes every one). Its
# outcomes (migration_applied, drift_found, ...) are recorded in the log's stream db:NAME.
[databases.main]
# url (required): sqlite:///relative/path.db, sqlite:////absolute/path.db,
# postgresql://user@host:5432/db, or mysql://user@host:3306/db (mariadb:// is read as mysql://).
url = "sqlite:///app.db"
# stream: the stream of the log this database follows (default "default"); --stream wins.
stream = "default"
# target: where migrate takes it: "head", a version ("12"), a tag ("release-1") or a time
# ("2026-11-20T10:00Z"); below the database's marker it rolls back. --to wins. Default "head".
target = "head"
# allow_destructive: the policy. false (the default) refuses drops, narrowing and NOT NULL over
# NULLs unless migrate is given --allow-destructive; true lets them through without the flag.
allow_destructive = false
# lock_timeout: seconds to wait for another migrator's lock on this database (more than 0;
# default 60). --lock-timeout wins.
lock_timeout = 60

# A second database, say a PostgreSQL one, is another table of its own:
# [databases.reporting]
# url = "postgresql://app@127.0.0.1/reporting"
# stream = "app"
"""


def write_config_template(path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write :data:`CONFIG_TEMPLATE` to ``path``; ConfigError if a file is there and not ``force``."""
    file = Path(path)
    try:
        with file.open("w" if force else "x", encoding="utf-8") as f:
            f.write(CONFIG_TEMPLATE)
    except FileExistsError:
        raise ConfigError(f"{file} already exists; --force overwrites it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {file}: {exc.strerror or exc}") from None
    return file


def load_config(path: str | None = None) -> Config | NoConfig:
    """The config at ``path`` (must exist), else $SCHEMALOG_CONFIG, else ./schemalog.toml if present (else
    :class:`NoConfig`, the defaults)."""
    explicit = path or os.environ.get("SCHEMALOG_CONFIG")
    file = Path(explicit) if explicit else Path(CONFIG_FILE)
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist")
        return NoConfig()
    from pydantic import ValidationError

    from service.config_models import Config

    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{file}: {exc}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{file}: {where}: {err['msg']}") from None
