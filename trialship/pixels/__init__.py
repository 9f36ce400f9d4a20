"""Burned-in text in pixel data: risk rules and redaction (pure)."""
