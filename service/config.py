"""``schemalog.toml``: the store and the databases, by name.

```toml
store = "postgresql://postgres@127.0.0.1/schemalog"   # optional; --store and SCHEMALOG_STORE win

[databases.main]
url = "postgresql://app@db1/app"
stream = "app"
target = "head"            # a version, a tag or a time; --to wins
allow_destructive = false  # the policy: true lets drops and narrowing through without the flag
```
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
