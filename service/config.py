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
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from events.envelope import DEFAULT_STREAM, check_stream_name

CONFIG_FILE = "schemalog.toml"


class ConfigError(ValueError):
    """A config file that cannot be used: the message says where and why."""


class DatabaseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1)
    stream: str = DEFAULT_STREAM
    target: str = "head"
    allow_destructive: bool = False
    lock_timeout: float = Field(default=60.0, gt=0)

    @field_validator("stream")
    @classmethod
    def _stream(cls, value: str) -> str:
        return check_stream_name(value)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str | None = None
    databases: dict[str, DatabaseConfig] = Field(default_factory=dict)


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


def load_config(path: str | None = None) -> Config:
    """The config at ``path`` (must exist), else $SCHEMALOG_CONFIG, else ./schemalog.toml if present."""
    explicit = path or os.environ.get("SCHEMALOG_CONFIG")
    file = Path(explicit) if explicit else Path(CONFIG_FILE)
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist")
        return Config()
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
