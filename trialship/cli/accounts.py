"""Users and API tokens."""

from __future__ import annotations

import click

from trialship.cli import main, print_table, read_password
from trialship.cli.runtime import cli_actor, unit_of_work
from trialship.services import users

# -- users and tokens ---------------------------------------------------------------------


@main.group()
def user() -> None:
    """Users: add, list, disable."""


@user.command("add")
@click.argument("email")
@click.option("--name", default="")
@click.option("--admin", is_flag=True, help="Give the user every right.")
def user_add(email: str, name: str, admin: bool) -> None:
    """Add a user. The password comes from TRIALSHIP_USER_PASSWORD, or a prompt."""
    with unit_of_work() as (_, session):
        password = read_password("TRIALSHIP_USER_PASSWORD", f"Password for {email}")
        created = users.create_user(
            session, cli_actor(), email=email, password=password, name=name, is_admin=admin
        )
        click.echo(f"User {created.email} added{' (admin)' if admin else ''}.")


@user.command("list")
def user_list() -> None:
    """List the users."""
    with unit_of_work() as (_, session):
        print_table(
            [
                {
                    "email": u.email,
                    "name": u.name,
                    "admin": "yes" if u.is_admin else "",
                    "active": "yes" if u.active else "no",
                    "roles": ", ".join(
                        f"{m.trial.protocol_id}:{m.role.value}" for m in u.memberships
                    ),
                }
                for u in users.list_users(session)
            ],
            ["email", "name", "admin", "active", "roles"],
        )


@user.command("disable")
@click.argument("email")
def user_disable(email: str) -> None:
    """Disable a user: they can no longer log in or use their tokens."""
    with unit_of_work() as (_, session):
        target = users.user_by_email(session, email)
        users.update_user(session, cli_actor(), target, active=False)
        click.echo(f"User {target.email} disabled.")


@main.group()
def token() -> None:
    """API tokens for scripts: create, revoke."""


@token.command("create")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for, e.g. 'nightly upload'.")
def token_create(email: str, name: str) -> None:
    """Create an API token for the user EMAIL and print it (once)."""
    with unit_of_work() as (_, session):
        owner = users.user_by_email(session, email)
        row, plain = users.create_token(session, cli_actor(), owner, name)
        click.echo(f"Token {row.id} for {owner.email} ({name}); it is shown only now:", err=True)
        click.echo(plain)


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke the token TOKEN_ID."""
    with unit_of_work() as (_, session):
        users.revoke_token(session, cli_actor(), token_id)
        click.echo(f"Token {token_id} revoked.")


@token.command("list")
def token_list() -> None:
    """List tokens (never the tokens themselves)."""
    with unit_of_work() as (_, session):
        print_table(
            [
                {
                    "id": t.id,
                    "user": t.user.email,
                    "name": t.name,
                    "prefix": t.prefix,
                    "last_used": t.last_used_at or "",
                    "revoked": t.revoked_at or "",
                }
                for t in users.list_tokens(session)
            ],
            ["id", "user", "name", "prefix", "last_used", "revoked"],
        )
