"""Where a server's CPU goes while a benchmark loads it: py-spy samples, summarized.

`record` attaches py-spy (not a project dependency: `pip install py-spy` into the virtualenv)
to a running server for the length of a measurement; `summarize` prints the share of samples
by package (the innermost frame's: self time) and the heaviest functions (inclusive).
Only samples holding the GIL are kept: an idle event loop waiting in epoll is not CPU.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    """The py-spy next to this interpreter, or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Start sampling `pid` for `seconds` into `output` (py-spy's raw collapsed-stack format)."""
    binary = py_spy()
    if binary is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "250",
            "--gil",
            "--function",
            "--full-filenames",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def area(file: str) -> str:
    """The package a frame's file belongs to: a site-packages distribution, our code, or stdlib."""
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if file.startswith(str(ROOT)):
        parts = Path(file).relative_to(ROOT).parts
        return "/".join(parts[:2]) if parts[0] == "services" else "/".join(parts[:1]) + "/" + parts[-1]
    if "/asyncio/" in file:
        return "asyncio"
    return "stdlib:" + Path(file).name


def summarize(raw: Path, top: int = 12) -> list[str]:
    """Lines: the samples' share by package (self time) and the heaviest functions (inclusive)."""
    by_area: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_FRAME.match(frame) for frame in stack.split(";")]
        parsed = [(m["function"], m["file"]) for m in frames if m is not None]
        if not parsed:
            continue
        by_area[area(parsed[-1][1])] += count
        for name in {f"{function} ({area(file)})" for function, file in parsed}:
            inclusive[name] += count
    if not total:
        return ["no samples (was the server busy?)"]
    lines = [f"{total} samples holding the GIL; self time by package:"]
    lines += [f"  {share * 100 / total:5.1f}%  {name}" for name, share in by_area.most_common(top)]
    lines.append("heaviest functions (inclusive):")
    lines += [
        f"  {share * 100 / total:5.1f}%  {name}"
        for name, share in inclusive.most_common(top * 4)
        if share < total * 0.97  # the frames every sample shares (the event loop) say nothing
    ][: top * 2]
    return lines
