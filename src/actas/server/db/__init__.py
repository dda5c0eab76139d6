"""Storage: the schema, the engine for SQLite or PostgreSQL, and migrations."""
