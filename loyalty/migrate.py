"""Run Alembic migrations from code (the CLI, `make run` and the tests use this)."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config

from core.settings import REPO_ROOT


def alembic_config(database_url: str | None = None) -> Config:
    """The project's Alembic config, optionally aimed at an explicit database."""
    # Alembic announces every autogenerate plugin it loads at INFO: noise in `make run`.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.attributes["configure_logger"] = False
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Bring the database to ``revision``."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None = None, revision: str = "-1") -> None:
    """Take the database back to ``revision`` (``base``: empty)."""
    command.downgrade(alembic_config(database_url), revision)


def check(database_url: str | None = None) -> None:
    """Raise when the models and the migrations disagree."""
    command.check(alembic_config(database_url))
