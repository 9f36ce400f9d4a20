"""Use cases: plain functions taking a session, an actor and values.

Web, CLI and jobs call these; they never call each other.
"""
