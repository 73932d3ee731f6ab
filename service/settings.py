"""Configuration: environment (SCHEMALOG_*) and command-line flags."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STORE = "sqlite:///schemalog.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCHEMALOG_", extra="ignore")

    store: str = DEFAULT_STORE
    """The event log: ``sqlite:///path.db`` (embedded, the default) or ``postgresql://...``."""

    log_level: str = "warning"
