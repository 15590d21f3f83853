"""Alembic environment: the gateway passes its own connection (``config.attributes``),
so migrations always run against the database the settings name."""

from alembic import context
from sqlalchemy import create_engine

from gateway.history.models import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    # `alembic -x url=...` from the command line, for maintainers.
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        from gateway.config.settings import get_settings

        url = get_settings().database_url
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
