"""The models of ``schemalog.toml`` (service/config.py reads the file): imported only when there is a file to
validate, so that a command run without one never imports pydantic for its config (issue 14)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from events.envelope import DEFAULT_STREAM, check_stream_name


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
