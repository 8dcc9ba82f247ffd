"""`ez360 keys ...` (the key ring encrypting TOTP secrets) and `ez360 companies ...` (platform admin: plans)."""

from __future__ import annotations

import typer

from ez360.cli.app import _fail, console, load_settings

keys_app = typer.Typer(help="Encryption keys of secrets at rest (EZ360_TOTP_ENCRYPTION_KEYS).", no_args_is_help=True)
companies_app = typer.Typer(help="Platform admin: companies' plans.", no_args_is_help=True)


@keys_app.command("new")
def keys_new() -> None:
    """Print a new Fernet key. To rotate: put it FIRST in EZ360_TOTP_ENCRYPTION_KEYS (keep the old key after it),
    restart, run `ez360 keys rotate-totp`, then remove the old key."""
    from operational_api.security.encryption import new_key

    console.print(new_key(), markup=False, highlight=False)


@keys_app.command("rotate-totp")
def keys_rotate_totp() -> None:
    """Re-encrypt every stored TOTP secret (and every undelivered mail link) with the first key of
    EZ360_TOTP_ENCRYPTION_KEYS; afterwards the other keys can be removed."""
    from sqlalchemy import select

    from operational_api.db.engine import make_engine, make_sessionmaker
    from operational_api.db.security_models import EmailOutbox
    from operational_api.security import encryption, totp

    settings = load_settings()
    try:
        encryption.configure(settings)
    except encryption.KeyConfigurationError as exc:
        raise _fail(str(exc), 2) from None
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            secrets = totp.reencrypt_all(session)
            links = 0
            for row in session.scalars(select(EmailOutbox).where(EmailOutbox.link_ciphertext.is_not(None))):
                row.link_ciphertext = encryption.reencrypt(row.link_ciphertext, session)
                links += 1
    except encryption.SecretUnreadable as exc:
        raise _fail(f"{exc}; nothing was changed") from None
    finally:
        engine.dispose()
    console.print(f"[green]re-encrypted with the first key[/green]: {secrets} TOTP secret(s), {links} mail link(s)")


@companies_app.command("set-plan")
def companies_set_plan(slug: str = typer.Argument(..., help="The company's slug"),
                       plan: str = typer.Argument(..., help="free, pro or business")) -> None:
    """Change a company's plan (company admins cannot: billing or a platform admin does). A downgrade below what
    the company already uses is refused. Recorded in the company's audit trail."""
    from sqlalchemy import select

    from operational_api.db.audit_trail import Actor, set_actor
    from operational_api.db.engine import make_engine, make_sessionmaker
    from operational_api.db.models import Company
    from operational_api.services import plans
    from operational_api.services.errors import DomainError

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            company = session.scalar(select(Company).where(Company.slug == slug))
            if company is None:
                raise _fail(f"no company with slug {slug!r}", 2)
            set_actor(session, Actor(None, "platform admin (ez360 companies set-plan)"))
            before = company.plan
            plans.change_plan(session, company, plan)
    except DomainError as exc:
        raise _fail(exc.detail) from None
    finally:
        engine.dispose()
    console.print(f"{slug}: plan {before} -> {plan}")
