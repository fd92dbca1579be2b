"""collections, API keys and ingestion jobs

Every existing document moves into the collection ``default``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 04:40:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    collections = op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
        sa.UniqueConstraint("name", name=op.f("uq_collections_name")),
    )
    # No explicit id: PostgreSQL's sequence must hand out the next one.
    op.bulk_insert(collections, [{"name": "default", "created_at": datetime.now(UTC)}])
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("collection_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE documents SET collection_id = (SELECT id FROM collections WHERE name = 'default')"
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.alter_column("collection_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint("uq_documents_source", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_documents_collection_id"), ["collection_id", "source"]
        )
        batch_op.create_index(
            batch_op.f("ix_documents_collection_id"), ["collection_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_documents_collection_id_collections"),
            "collections",
            ["collection_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("collections", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=2048), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_collection"), ["collection"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_status"), ["status"], unique=False)


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_table("api_keys")
    # Documents of other collections would collide on their source: only `default` survives.
    default = "(SELECT id FROM collections WHERE name = 'default')"
    op.execute(
        f"DELETE FROM chunks WHERE document_id IN (SELECT id FROM documents WHERE collection_id <> {default})"
    )
    op.execute(f"DELETE FROM documents WHERE collection_id <> {default}")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_constraint("fk_documents_collection_id_collections", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_documents_collection_id"))
        batch_op.drop_constraint("uq_documents_collection_id", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_documents_source"), ["source"])
        batch_op.drop_column("collection_id")
    op.drop_table("collections")
