"""Configuration from the environment (SCHEMALOG_*); the command-line flags win over it.

A NamedTuple, not pydantic-settings nor a dataclass: every command reads it, and it must cost nothing at
start-up (``dataclasses`` alone imports ``inspect`` and ``ast``, a few milliseconds that ``--help`` would pay).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

DEFAULT_STORE = "sqlite:///schemalog.db"
ENV_PREFIX = "SCHEMALOG_"


class Settings(NamedTuple):
    store: str = DEFAULT_STORE
    """The event log: ``sqlite:///path.db`` (embedded, the default) or ``postgresql://...``."""

    log_level: str = "warning"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """SCHEMALOG_STORE and SCHEMALOG_LOG_LEVEL (names in any case, as before); other variables ignored."""
        env = os.environ if environ is None else environ
        given = {key.upper(): value for key, value in env.items() if key.upper().startswith(ENV_PREFIX)}
        return cls(
            store=given.get(ENV_PREFIX + "STORE", DEFAULT_STORE),
            log_level=given.get(ENV_PREFIX + "LOG_LEVEL", "warning"),
        )
