"""Run ruff format over the generated project's Python, writing the result back into the template.

Jinja keeps the template's files from being formatted where they lie, so this bakes every file
(example and OTLP on, set-up off), formats the bake as its own pyproject.toml says (durable/, the
guide's samples and Markdown excluded), and copies each changed line back to the template file it
came from. A changed line that holds Jinja in the template is not guessed at: it is listed, to edit
by hand. `make format` runs this; tests/test_bake.py checks every bake is formatted.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
PROJECT_TEMPLATE = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
PACKAGE = "order_service"  # the default answer, so paths map back by one substitution
JINJA = ("{{", "{%", "{#")


def template_path(project: Path, baked: Path) -> Path:
    parts = baked.relative_to(project).parts
    if parts[0] == PACKAGE:
        parts = ("{{cookiecutter.package_name}}", *parts[1:])
    return PROJECT_TEMPLATE.joinpath(*parts)


def map_back(template: str, before: str, after: str) -> tuple[str, list[int]]:
    """Apply the before -> after change to ``template``, line by line; also return the Jinja lines it touched.

    Rendering keeps line numbers here (no ``{% if %}`` spans lines in the generated Python), so line
    i of the template is line i of the bake.
    """
    t_lines, b_lines, a_lines = (text.splitlines(keepends=True) for text in (template, before, after))
    assert len(t_lines) == len(b_lines), "a rendered file gained or lost lines"
    result: list[str] = []
    refused: list[int] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, b_lines, a_lines, autojunk=False).get_opcodes():
        if tag != "equal" and any(marker in line for line in t_lines[i1:i2] for marker in JINJA):
            refused.extend(range(i1 + 1, i2 + 1))
            result.extend(t_lines[i1:i2])
        else:
            result.extend(t_lines[i1:i2] if tag == "equal" else a_lines[j1:j2])
    return "".join(result), refused


def main() -> int:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if not ruff:
        print("ruff not found: make .venv-template/.installed", file=sys.stderr)
        return 2
    os.environ["DBOS_FLASK_NO_SETUP"] = "1"
    with tempfile.TemporaryDirectory() as out:
        project = Path(cookiecutter(str(TEMPLATE_DIR), no_input=True, output_dir=out,
                                    extra_context={"include_example": True, "enable_otlp": True}))
        files = [p for p in project.rglob("*.py") if "durable" not in p.relative_to(project).parts]
        before = {p: p.read_text() for p in files}
        subprocess.run([ruff, "format", "--no-cache", "--force-exclude", *map(str, files)], cwd=project, check=True)
        by_hand = []
        for path in files:
            after = path.read_text()
            if after == before[path]:
                continue
            target = template_path(project, path)
            text, refused = map_back(target.read_text(), before[path], after)
            target.write_text(text)
            by_hand += [f"{target.relative_to(TEMPLATE_DIR)}:{line}" for line in refused]
            print(f"formatted {target.relative_to(TEMPLATE_DIR)}")
    for place in by_hand:
        print(f"format by hand (the line holds Jinja): {place}")
    return 1 if by_hand else 0


if __name__ == "__main__":
    sys.exit(main())
