"""Alembic environment: migrations run on the connection ``goship_ctl.store.engine.migrate`` hands over,
or on ``sqlalchemy.url`` when run by the ``alembic`` command line."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from goship_ctl.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_on(connection):
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                     poolclass=pool.NullPool)
    with connectable.connect() as fresh:
        run_on(fresh)


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
