"""A fresh ops DB at the latest schema, cloned from one migration per test process.

Migrating an empty ops DB to head runs every Alembic revision: about a second on either engine, and twice that on
a loaded machine. About 250 tests each start from a freshly migrated database, which cost the suite some four
minutes of its two cores. So each test process migrates one template per engine, the first time a test asks, and
`migrate(url)` gives every test after it a copy: PostgreSQL copies the template database
(`CREATE DATABASE ... TEMPLATE`, ~0.15 s), SQLite copies the file. The copy is Alembic's own result, byte for
byte. The migrations themselves stay tested where they are the subject, by `schema.upgrade` itself
(test_security_migration, test_audit_chain, test_integrity_database, test_ops_services: upgrade and downgrade
on both engines).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import threading
import uuid
from pathlib import Path

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

from operational_api.db import schema
from tests.support.postgres import SERVER_URL, database_url

_lock = threading.Lock()
_templates: dict[str, str] = {}  # engine -> the template: a SQLite file, or a PostgreSQL database's name


def migrate(url: str) -> str:
    """Bring the database at `url` to the latest schema, as `schema.upgrade(url)` does; returns `url`. An empty
    one (a SQLite file not yet written, a fresh PostgreSQL database) becomes a copy of the template; one that
    already holds a schema (a world built on the `ops_db` fixture migrates again) is left to Alembic, which
    upgrades it or finds nothing to do."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.exists() and path.stat().st_size:
            schema.upgrade(url)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_template("sqlite"), path)
    elif not _clone_postgres(make_url(url).database):
        schema.upgrade(url)
    return url


def _template(engine: str) -> str:
    with _lock:
        if engine not in _templates:
            _templates[engine] = _sqlite_template() if engine == "sqlite" else _postgres_template()
        return _templates[engine]


def _sqlite_template() -> str:
    folder = tempfile.mkdtemp(prefix="ez360-migrated-")
    atexit.register(shutil.rmtree, folder, True)
    path = os.path.join(folder, "template.sqlite3")
    schema.upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:  # everything in the one file, whatever the journal mode
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _admin():
    admin = psycopg2.connect(SERVER_URL)
    admin.autocommit = True
    return admin


def _postgres_template() -> str:
    name = f"ez360_test_template_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _admin()
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        admin.close()
    atexit.register(_drop, name)
    schema.upgrade(database_url(name))  # Alembic's env.py uses no pool: no session stays on the template
    return name


def _clone_postgres(database: str) -> bool:
    """Replace the database by a copy of the template if it is empty; False if it holds tables."""
    template = _template("postgresql")
    admin = _admin()
    try:
        with admin.cursor() as cur:
            with psycopg2.connect(database_url(database)) as conn, conn.cursor() as check:
                check.execute("select count(*) from pg_tables where schemaname = 'public'")
                empty = check.fetchone()[0] == 0
            conn.close()
            if not empty:
                return False
            # the empty database is replaced by a copy of the template under the same name
            cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
            cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(database),
                                                                         sql.Identifier(template)))
            return True
    finally:
        admin.close()


def _drop(name: str) -> None:
    try:
        admin = _admin()
    except psycopg2.OperationalError:
        return
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        admin.close()
