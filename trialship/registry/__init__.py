"""The database: SQLAlchemy models and the unit of work. Only services use it."""
