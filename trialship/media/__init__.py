"""Disc planning (pure) and the DICOMDIR/ISO writers."""
