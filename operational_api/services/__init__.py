"""Domain rules as plain functions over a SQLAlchemy session: callable from routes, the demo and tests."""
