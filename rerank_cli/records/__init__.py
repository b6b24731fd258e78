"""Bytes <-> records: input formats in, output formats out. Knows formats, never models."""
