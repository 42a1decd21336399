"""Alembic migrations of the state store (see README)."""
