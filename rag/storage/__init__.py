"""SQL storage of documents and chunks (SQLAlchemy 2, schema by Alembic)."""
