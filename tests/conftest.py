"""Shared fixtures. Tests use the real database backend of the run (SQLite or PostgreSQL)."""
