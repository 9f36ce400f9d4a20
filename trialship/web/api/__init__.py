"""The JSON API under /api/v1: bearer tokens, the registry use cases, an OpenAPI document.

The routes live in `views`, the JSON shapes in `serialize`, the document in `spec`.
"""

from __future__ import annotations

from trialship.web.api import discs, submissions  # noqa: F401  (register their routes on bp)
from trialship.web.api.views import bp

__all__ = ["bp"]
