"""Set-up and serving: init, serve, worker, db."""

from __future__ import annotations

import click

from trialship.cli import main, read_password
from trialship.cli.runtime import cli_actor, get_runtime
from trialship.registry import migrate
from trialship.services import users

# -- set-up and serving -------------------------------------------------------------------


@main.command()
@click.option("--admin-email", help="Create this first administrator (if no user exists yet).")
@click.option("--admin-name", default="Administrator", show_default=True)
def init(admin_email: str | None, admin_name: str) -> None:
    """Create the data folder and its keys, migrate the database, add the first admin.

    The admin's password comes from TRIALSHIP_ADMIN_PASSWORD, or a prompt.
    """
    runtime = get_runtime(click.get_current_context(), create=True)
    migrate.upgrade(runtime.settings.effective_database_url)
    click.echo(f"Data folder {runtime.settings.data_dir.resolve()} is ready.")
    if not admin_email:
        return
    with runtime.db.unit_of_work() as session:
        if users.count_users(session):
            click.echo("Users exist already: no admin was added.")
            return
        password = read_password("TRIALSHIP_ADMIN_PASSWORD", "Password for the first admin")
        user = users.create_user(
            session,
            cli_actor(),
            email=admin_email,
            password=password,
            name=admin_name,
            is_admin=True,
        )
        click.echo(f"Admin {user.email} created.")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option("--no-worker", is_flag=True, help="Do not run the job queue's worker inside.")
def serve(host: str, port: int, threads: int, no_worker: bool) -> None:
    """Serve the web UI and the API with waitress (and run the job worker inside)."""
    from trialship.serving import serve as run_server

    runtime = get_runtime(click.get_current_context())
    migrate.check(runtime.settings.effective_database_url)
    run_server(runtime, host=host, port=port, threads=threads, worker=not no_worker)


@main.command()
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
def worker(workers: int) -> None:
    """Run the job queue's worker on its own (Redis-backed queues on many machines)."""
    from trialship.serving import run_worker

    run_worker(get_runtime(click.get_current_context()), workers=workers)


@main.group()
def db() -> None:
    """Database schema: upgrade, check, downgrade."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply the migrations up to REVISION (default: the latest)."""
    migrate.upgrade(_database_url(create=True), revision)
    click.echo("Database is up to date.")


@db.command("check")
def db_check() -> None:
    """Exit non-zero when the models and the migrations (or the database) differ."""
    migrate.check(_database_url(schema=False))
    click.echo("Models, migrations and database agree.")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert the migrations down to REVISION (`base` empties the database)."""
    migrate.downgrade(_database_url(schema=False), revision)
    click.echo(f"Database downgraded to {revision}.")


def _database_url(*, create: bool = False, schema: bool = True) -> str:
    runtime = get_runtime(click.get_current_context(), create=create, schema=schema)
    return runtime.settings.effective_database_url
