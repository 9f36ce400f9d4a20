"""Disc label templates rendered to PDF (pure layout)."""

from trialship.labels.content import LabelContent, field_keys
from trialship.labels.errors import LabelError
from trialship.labels.loading import list_templates, load_template, parse_template
from trialship.labels.preview import preview_png
from trialship.labels.render import RenderedLabels, render_label, render_labels
from trialship.labels.template import LabelTemplate

__all__ = [
    "LabelContent",
    "LabelError",
    "LabelTemplate",
    "RenderedLabels",
    "field_keys",
    "list_templates",
    "load_template",
    "parse_template",
    "preview_png",
    "render_label",
    "render_labels",
]
