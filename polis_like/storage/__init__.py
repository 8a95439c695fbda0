"""Storage: the tables, migrations and data operations of the service (SQLAlchemy 2, no Flask)."""
