"""The architecture's import rules (pyproject's [tool.importlinter]), checked by import-linter.

Among them: the api never imports the auth service, so it has no way to load a signing key or
sign a token (its keys come from JWT_PUBLIC_KEYS or the JWKS, parsed as public keys only), and
shared/ never imports a service.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_every_import_contract_is_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_cover_what_the_design_promises():
    """The contracts themselves: removing one would silently drop a guarantee."""
    result = lint_imports("--contract", "api-cannot-sign", "--contract", "shared-is-shared")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout
