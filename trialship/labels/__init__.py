"""Disc label templates rendered to PDF (pure layout)."""
