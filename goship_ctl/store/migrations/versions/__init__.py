"""Alembic revisions, applied in order by goship_ctl.store.engine.migrate."""
