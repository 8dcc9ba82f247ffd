"""ops security hardening: TOTP secrets encrypted at rest, mail links out of the outbox bodies, invitations

- `user_security.totp_secret` / `totp_pending_secret` hold Fernet ciphertext (keys from EZ360_TOTP_ENCRYPTION_KEYS);
  existing plaintext seeds are encrypted here. PostgreSQL widens the columns (VARCHAR(64) -> VARCHAR(255)); SQLite
  does not enforce VARCHAR lengths, and is left alone so that no table is rebuilt (a rebuild drops triggers).
- `email_outbox.link_ciphertext`: the link of a mail waiting for delivery, encrypted; bodies keep a placeholder.
  Links already in bodies move there (undelivered mail) or are removed (delivered mail).
- `invitations`: membership needs the invitee's acceptance.

Revision ID: 0007_ops_security
Revises: 0006
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0007_ops_security"
down_revision = "0006"
branch_labels = None
depends_on = None

LINK = "[[ez360:link]]"  # operational_api.security.mail.LINK at the time of writing
REMOVED = "[link removed after delivery]"
URL_WITH_SECRET = re.compile(r"https?://\S+[?&]token=\S+")

user_security = sa.table("user_security", sa.column("user_id", sa.Integer), sa.column("totp_secret", sa.String),
                         sa.column("totp_pending_secret", sa.String))
outbox = sa.table("email_outbox", sa.column("id", sa.Integer), sa.column("body", sa.Text),
                  sa.column("sent_at", sa.DateTime), sa.column("link_ciphertext", sa.Text))


def _encryption():
    from operational_api.security import encryption
    return encryption


def _convert_secrets(convert) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(user_security.c.user_id, user_security.c.totp_secret,
                                  user_security.c.totp_pending_secret)).all()
    for user_id, secret, pending in rows:
        if secret is None and pending is None:
            continue
        conn.execute(user_security.update().where(user_security.c.user_id == user_id).values(
            totp_secret=None if secret is None else convert(secret),
            totp_pending_secret=None if pending is None else convert(pending)))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in ("totp_secret", "totp_pending_secret"):
            op.alter_column("user_security", column, type_=sa.String(255), existing_type=sa.String(64),
                            existing_nullable=True)
    encryption = _encryption()
    _convert_secrets(encryption.encrypt)

    op.add_column("email_outbox", sa.Column("link_ciphertext", sa.Text(), nullable=True))
    conn = op.get_bind()
    for row_id, body, sent_at in conn.execute(sa.select(outbox.c.id, outbox.c.body, outbox.c.sent_at)).all():
        found = URL_WITH_SECRET.search(body or "")
        if found is None:
            continue
        values = {"body": URL_WITH_SECRET.sub(REMOVED if sent_at is not None else LINK, body, count=1)}
        if sent_at is None:
            values["link_ciphertext"] = encryption.encrypt(found.group(0))
        conn.execute(outbox.update().where(outbox.c.id == row_id).values(**values))

    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("invited_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("member_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"]),
        sa.ForeignKeyConstraint(["invited_by_user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["member_user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_invitations_company_id", "invitations", ["company_id"])
    op.create_index("ix_invitations_email", "invitations", ["email"])


def downgrade() -> None:
    op.drop_index("ix_invitations_email", table_name="invitations")
    op.drop_index("ix_invitations_company_id", table_name="invitations")
    op.drop_table("invitations")
    encryption = _encryption()
    conn = op.get_bind()
    for row_id, body, ciphertext in conn.execute(sa.select(outbox.c.id, outbox.c.body,
                                                           outbox.c.link_ciphertext)).all():
        if ciphertext is not None:
            conn.execute(outbox.update().where(outbox.c.id == row_id)
                         .values(body=body.replace(LINK, encryption.decrypt(ciphertext))))
    with op.batch_alter_table("email_outbox") as batch:
        batch.drop_column("link_ciphertext")
    _convert_secrets(encryption.decrypt)
    if op.get_bind().dialect.name == "postgresql":
        for column in ("totp_secret", "totp_pending_secret"):
            op.alter_column("user_security", column, type_=sa.String(64), existing_type=sa.String(255),
                            existing_nullable=True)
