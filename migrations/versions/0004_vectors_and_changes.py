"""chunk vectors in SQL and the change log replicas follow

SQL becomes the source of truth for vectors too: each chunk keeps its embedding
(float32, little-endian bytes; pgvector is not assumed), and every insertion or
removal of a chunk is one row of ``chunk_changes`` with an increasing id, so a
replica's faiss/BM25 cache can catch up from any point. Existing chunks get
their vectors when a cache is next built (embedded once, written back). A collection
records how its vectors and chunks were made (``index_manifest``), so that every replica,
whatever its local files, refuses settings that would mix two kinds in one collection.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vector", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("index_manifest", sa.JSON(), nullable=True))
    op.create_table(
        "chunk_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("chunk_id", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_chunk_changes_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chunk_changes")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_chunk_changes_collection_id_id"), "chunk_changes", ["collection_id", "id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_chunk_changes_collection_id_id"), table_name="chunk_changes")
    op.drop_table("chunk_changes")
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.drop_column("index_manifest")
    with op.batch_alter_table("chunks", schema=None) as batch_op:
        batch_op.drop_column("vector")
