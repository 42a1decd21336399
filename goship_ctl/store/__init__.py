"""The control service's state store: SQLAlchemy 2 models, Alembic migrations, engine set-up.

SQLite (WAL) under a data directory by default; PostgreSQL through a URL.
"""
