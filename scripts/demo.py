"""`make demo`: the tap against the bundled Looker emulator, through Meltano, into target-jsonl.

Starts the emulator as a process, installs the extractor and target-jsonl from meltano.yml (no
Meltano Hub needed), runs `meltano run tap-looker-query target-jsonl` twice (the second run is
incremental from the saved state), and prints what landed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUTPUT = REPO / "output"


def meltano(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a Meltano command in the repo, failing loudly with its output."""
    print(f"$ meltano {' '.join(args)}", flush=True)
    result = subprocess.run(
        [str(BIN / "meltano"), *args],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-4000:], sep="\n")
        raise SystemExit(f"meltano {' '.join(args)} failed with exit code {result.returncode}")
    return result


def show(run: int) -> None:
    """Row counts, types and a sample of what target-jsonl wrote."""
    for path in sorted(OUTPUT.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        print(f"\n[run {run}] {path.relative_to(REPO)}: {len(rows)} rows")
        if not rows:
            continue
        types = {key: type(value).__name__ for key, value in rows[-1].items()}
        print("  columns:", ", ".join(f"{key} ({kind})" for key, kind in types.items()))
        for row in rows[-3:]:
            print("  ", json.dumps(row, ensure_ascii=False)[:240])
        statuses = Counter(row.get("history_status") for row in rows)
        if statuses:
            print("  history_status:", dict(statuses.most_common(4)))


def main() -> None:
    """Start the emulator, run the pipeline twice, show the result and the saved state."""
    emulator = subprocess.Popen(
        [sys.executable, "-m", "looker_emulator", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        base_url = emulator.stdout.readline().strip()
        print(f"Looker emulator serving {base_url}")
        env = {
            **os.environ,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_HUB_URL": "http://127.0.0.1:9/",  # prove nothing needs Meltano Hub
            "TAP_LOOKER_QUERY_BASE_URL": base_url,
            "TAP_LOOKER_QUERY_CLIENT_ID": "emulator-client-id",
            "TAP_LOOKER_QUERY_CLIENT_SECRET": "emulator-client-secret",
            # The emulator's System Activity data ends on 2026-11-01.
            "TAP_LOOKER_QUERY_START_DATE": "2026-10-25T00:00:00Z",
        }
        shutil.rmtree(OUTPUT, ignore_errors=True)
        meltano("install", "extractor", "tap-looker-query", env=env)
        meltano("install", "loader", "target-jsonl", env=env)
        meltano("state", "clear", "--force", "dev:tap-looker-query-to-target-jsonl", env=env)
        meltano("run", "tap-looker-query", "target-jsonl", env=env)
        show(1)
        state = meltano("state", "get", "dev:tap-looker-query-to-target-jsonl", env=env)
        print("\nSaved state:", state.stdout.strip())
        shutil.rmtree(OUTPUT, ignore_errors=True)
        meltano("run", "tap-looker-query", "target-jsonl", env=env)
        show(2)
        print(
            "\nThe second run started at the bookmark (inclusive), so it re-read only the rows"
            " of that last second: nothing new had arrived in between."
        )
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


if __name__ == "__main__":
    main()
