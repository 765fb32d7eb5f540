"""`make revision` numbers revisions 000N_ and the unedited template passes ruff."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parents[2]


def test_make_revision_takes_the_next_number_and_passes_ruff(tmp_path: Path):
    for name in ("Makefile", "alembic.ini", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(
        ROOT / "migrations", tmp_path / "migrations", ignore=shutil.ignore_patterns("__pycache__")
    )
    existing = sorted(p.name for p in (tmp_path / "migrations" / "versions").glob("[0-9]*_*.py"))
    last = int(existing[-1][:4])
    bin_dir = Path(sys.executable).parent
    made = subprocess.run(
        ["make", "-s", "revision", "m=Add widgets", "STAMP=", f"BIN={bin_dir}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    created = tmp_path / "migrations" / "versions" / f"{last + 1:04d}_add_widgets.py"
    assert created.exists(), sorted(p.name for p in created.parent.iterdir())
    source = created.read_text()
    assert re.search(rf'^revision: str = "{last + 1:04d}"$', source, re.M)
    assert re.search(rf'^down_revision: str \| None = "{last:04d}"$', source, re.M)
    assert_ruff_clean(created, tmp_path)


def test_a_revision_keeps_the_dependencies_and_branch_labels_it_is_given(tmp_path: Path):
    """The lean template writes `depends_on` / `branch_labels` when alembic is given them."""
    for name in ("alembic.ini", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(
        ROOT / "migrations", tmp_path / "migrations", ignore=shutil.ignore_patterns("__pycache__")
    )
    alembic = Path(sys.executable).parent / "alembic"
    made = subprocess.run(
        [
            str(alembic),
            "revision",
            "-m",
            "widgets",
            "--rev-id",
            "9001",
            "--head",
            "base",
            "--branch-label",
            "widgets",
            "--depends-on",
            "0003",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    config = Config(str(tmp_path / "alembic.ini"))
    script = ScriptDirectory.from_config(config).get_revision("9001")
    assert script is not None
    assert script.branch_labels == {"widgets"}
    assert script.dependencies == "0003"
    created = next((tmp_path / "migrations" / "versions").glob("9001_*.py"))
    assert_ruff_clean(created, tmp_path)


def assert_ruff_clean(source: Path, project: Path) -> None:
    """`ruff check` and `ruff format --check` pass on `source` under the project's settings."""
    for command in (["check"], ["format", "--check"]):
        linted = subprocess.run(
            [sys.executable, "-m", "ruff", *command, str(source)],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert linted.returncode == 0, linted.stdout + linted.stderr
