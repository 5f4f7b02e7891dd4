"""Process settings, read from the environment or a `.env` file, built by a factory."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me"


class Settings(BaseSettings):
    """Deployment settings. Per-tenant business settings live in the database."""

    model_config = SettingsConfigDict(env_prefix="SHEQUN_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///shequn.db"
    environment: Literal["development", "test", "production"] = "development"
    secret_key: str = DEFAULT_SECRET
    default_locale: Literal["zh_CN", "en"] = "zh_CN"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    api_key_cache_seconds: int = Field(default=5, ge=0, le=300)
    # Webhook endpoints at private, loopback or link-local addresses are refused unless this
    # deployment's receivers live on its own network (a test or a local demo receiver).
    webhook_allow_private_hosts: bool = False


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
