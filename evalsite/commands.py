"""`DatabaseCommand`: the base of every management command that reads or writes the database.

When a command fails on a database error, it checks whether the database answers and has every
migration applied, and says so in a sentence: a fresh clone where `make demo` has not run yet,
or a DATABASE_URL whose server is down, gets what to do rather than a traceback from the first
query. Its own checks of its arguments still come first, and a command that succeeds pays
nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, OperationalError, connections
from django.db.migrations.executor import MigrationExecutor


class DatabaseCommand(BaseCommand):
    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except DatabaseError:
            check_database_ready()  # a CommandError that says what is wrong, if it can tell
            raise


def check_database_ready(alias: str = DEFAULT_DB_ALIAS) -> None:
    """CommandError unless the database answers and every migration on disk is applied."""
    connection = connections[alias]
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except OperationalError as error:
        settings = connection.settings_dict
        where = (
            settings["NAME"]
            if connection.vendor == "sqlite"
            else (
                f"{settings['HOST'] or 'localhost'}:{settings['PORT'] or 'default port'}"
                f"/{settings['NAME']}"
            )
        )
        raise CommandError(
            f"The command cannot reach the database ({connection.vendor} at {where}): "
            f"{str(error).strip().splitlines()[0]}. Start it, or point DATABASE_URL at one that "
            "runs."
        ) from error
    if pending:
        raise CommandError(
            f"The database has {len(pending)} migration(s) not applied yet. Run "
            "`python manage.py migrate` first (`make demo` does it for you)."
        )
