"""The command line is a face: it calls the services, never the web app (DESIGN.md), and
`trialship exam show --json` gives the API's shape from the services, where both take it."""

from __future__ import annotations

import grimp

from trialship.services import json_shapes
from trialship.web.api import serialize


def test_no_command_line_module_imports_the_web_app() -> None:
    graph = grimp.build_graph("trialship")
    faces = {"trialship.cli", *graph.find_descendants("trialship.cli")}
    imports = {
        (module, imported)
        for module in faces
        for imported in graph.find_modules_directly_imported_by(module)
        if imported == "trialship.web" or imported.startswith("trialship.web.")
    }
    assert imports == set()


def test_the_api_gives_the_exam_shape_the_services_make() -> None:
    assert serialize.exam is json_shapes.exam
