"""`make dist-check`: build sdist and wheel, check their metadata, run the wheel in a clean venv.

What PyPI and Meltano Hub will see: ``uv build`` (sdist, then the wheel built from that sdist),
``twine check --strict`` (README renders, metadata complete), the license and version fields, and
``tap-looker-query --about --format json`` from a fresh venv holding only the wheel and its
dependencies (the Hub's metadata job runs exactly that and parses stdout as JSON).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).with_name("uv")
TWINE = "twine==7.0.0"


def run(*cmd: str | Path, cwd: Path = REPO) -> str:
    """Run a command, fail with its output, return stdout."""
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.exit(
            f"$ {' '.join(map(str, cmd))}\n{done.stdout}\n{done.stderr}\nexit {done.returncode}"
        )
    return done.stdout


def check_metadata(wheel: Path, project: dict[str, object]) -> None:
    """The wheel's METADATA carries the name, version, license and entry point of pyproject."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(info).decode())
        entry_points = zf.read(info.replace("METADATA", "entry_points.txt")).decode()
    problems = [
        f"{key}: {meta.get(key)!r}, want {want!r}"
        for key, want in (
            ("Name", project["name"]),
            ("Version", project["version"]),
            ("License-Expression", project["license"]),
            ("License-File", "LICENSE"),
            ("Requires-Python", project["requires-python"]),
        )
        if meta.get(key) != want
    ]
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        problems.append("LICENSE is not in the wheel")
    if "tap-looker-query = tap_looker_query.tap:TapLookerQuery.cli" not in entry_points:
        problems.append(f"no tap-looker-query console script in entry_points.txt:\n{entry_points}")
    if any(n.startswith(("tests/", "benchmarks/", "orchestrate/")) for n in names):
        problems.append("the wheel holds more than the tap_looker_query package")
    if problems:
        sys.exit("wheel metadata:\n  " + "\n  ".join(problems))


def main() -> int:
    """Build, check, install, run ``--about``; print one line per step with its time."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    with tempfile.TemporaryDirectory(prefix="dist-check-") as tmp:
        out, venv = Path(tmp) / "dist", Path(tmp) / "venv"
        steps = [
            ("uv build", lambda: run(UV, "build", "--quiet", "--out-dir", out)),
            (
                "twine check",
                lambda: run(
                    UV,
                    "tool",
                    "run",
                    "--from",
                    TWINE,
                    "twine",
                    "check",
                    "--strict",
                    *sorted(out.glob("tap_looker_query-*")),
                ),
            ),
            ("metadata", lambda: check_metadata(next(out.glob("*.whl")), project)),
            (
                "clean venv + wheel",
                lambda: (
                    run(UV, "venv", "--quiet", "--python", sys.executable, venv),
                    run(
                        UV,
                        "pip",
                        "install",
                        "--quiet",
                        "--python",
                        venv / "bin" / "python",
                        next(out.glob("*.whl")),
                    ),
                ),
            ),
        ]
        for name, step in steps:
            start = time.monotonic()
            step()
            print(f"{name}: ok ({time.monotonic() - start:.1f} s)", flush=True)
        stdout = run(
            venv / "bin" / "tap-looker-query", "--about", "--format", "json", cwd=Path(tmp)
        )
        try:
            about = json.loads(stdout)
        except json.JSONDecodeError as exc:
            sys.exit(
                f"--about --format json from the wheel is not pure JSON ({exc}):\n{stdout[:2000]}"
            )
        if (about.get("name"), about.get("version")) != (project["name"], project["version"]):
            sys.exit(f"--about names {about.get('name')} {about.get('version')}")
        print(
            f"--about from the wheel: {about['name']} {about['version']}, "
            f"{len(about['settings']['properties'])} settings"
        )
        print("built:", ", ".join(p.name for p in sorted(out.glob("tap_looker_query-*"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
