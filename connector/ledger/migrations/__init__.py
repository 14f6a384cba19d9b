"""Alembic migrations of the ledger schema, run programmatically (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine

__all__ = ["alembic_config", "upgrade"]


def alembic_config(engine: Engine) -> AlembicConfig:
    """An Alembic configuration whose scripts are this package and whose database is `engine`."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the ledger schema behind `engine` to `revision`."""
    command.upgrade(alembic_config(engine), revision)
