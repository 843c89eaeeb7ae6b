"""Readers and importers for MovieLens releases and movie metadata files."""
