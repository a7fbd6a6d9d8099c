"""Which blueprints the app serves.

Optional features are whole subpackages that expose ``blueprint``; the template's post-generation
hook deletes the example's folder when it is not wanted. Finding the folder, rather than an
``if`` in the code or an import guarded by ``except ImportError`` (which would also hide a real
import error inside the example), keeps one code path: deleting ``orders/`` by hand later also works.
"""

from __future__ import annotations

import importlib
import importlib.util

from flask import Blueprint, Flask

from . import health

OPTIONAL_FEATURES = ("orders",)  # subpackages served when present


def find_blueprints() -> list[Blueprint]:
    """The health probes, then each optional feature whose subpackage exists."""
    found = [health.blueprint]
    for feature in OPTIONAL_FEATURES:
        name = f"{__package__}.{feature}"
        if importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name).blueprint)
    return found


def register_blueprints(app: Flask) -> None:
    for blueprint in find_blueprints():
        app.register_blueprint(blueprint)
