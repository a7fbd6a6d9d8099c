"""Baking projects from the template: the option combinations, and a session-wide cache of bakes."""

from __future__ import annotations

import itertools
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

from helpers import PG_SERVER_URL, TEMPLATE_DIR, drop_database, require_postgres

# Options that change which files are generated; every combination is baked once per session.
OPTIONS: dict[str, list[Any]] = {
    "database": ["sqlite", "postgresql"],
    "include_example": [True, False],
    "enable_otlp": [False, True],
}
COMBINATIONS = [dict(zip(OPTIONS, values, strict=True)) for values in itertools.product(*OPTIONS.values())]
DEFAULT_COMBINATION = COMBINATIONS[0]  # sqlite, example on, OTLP off: the template's defaults


def combination_id(combination: dict[str, Any]) -> str:
    return "-".join(f"{key}={value}" for key, value in combination.items())


def bake(output_dir: Path, **context: Any) -> Path:
    """Generate a project with the template's defaults overridden by ``context``; return its folder.

    cookiecutter gets a config file of its own so a user's ~/.cookiecutterrc and replay folder
    neither change nor record the bake.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    config = output_dir / ".cookiecutterrc.yaml"
    config.write_text(
        f"cookiecutters_dir: {json.dumps(str(output_dir / '.cookiecutters'))}\n"
        f"replay_dir: {json.dumps(str(output_dir / '.replay'))}\n"
    )
    project = cookiecutter(
        str(TEMPLATE_DIR), no_input=True, extra_context=context, output_dir=str(output_dir),
        config_file=str(config),
    )
    return Path(project)


@dataclass
class Baked:
    """A generated project with its .venv, and the PostgreSQL database it was generated for, if any."""

    path: Path
    combination: dict[str, Any]
    database_name: str | None

    @property
    def package(self) -> Path:
        return self.path / "order_service"

    def bin(self, name: str) -> Path:
        return self.path / ".venv" / "bin" / name


class Bakery:
    """Bakes each combination at most once per session, with run_setup on (so each gets its .venv)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.baked: dict[str, Baked] = {}

    def get(self, combination: dict[str, Any]) -> Baked:
        key = combination_id(combination)
        if key not in self.baked:
            context: dict[str, Any] = {**combination, "run_setup": True}
            database_name = None
            if combination["database"] == "postgresql":
                require_postgres()
                database_name = f"bake_{uuid.uuid4().hex[:12]}"  # the post-gen hook creates it
                context["postgresql_url"] = f"{PG_SERVER_URL}/{database_name}"
            path = bake(self.root / key, **context)
            self.baked[key] = Baked(path, combination, database_name)
        return self.baked[key]

    def close(self) -> None:
        for baked in self.baked.values():
            if baked.database_name:
                drop_database(baked.database_name)
        shutil.rmtree(self.root, ignore_errors=True)
