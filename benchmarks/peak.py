"""Run a command and write its exact peak RSS (KiB, wait4's ru_maxrss) to a file.

    python -S -m benchmarks.peak OUTFILE COMMAND [ARG ...]

Why a launcher: Linux carries a process's pre-exec high-water mark into `ru_maxrss`, and
`subprocess` starts children with vfork, so a child of the benchmark harness would report at
least the harness's own peak. This launcher is a small fresh process (~10 MB, the floor of every
figure), so the child's `ru_maxrss` is its own. stdin/stdout/stderr are passed through; the exit
code is the child's.
"""

import os
import sys


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _pid, status, usage = os.wait4(pid, 0)
    with open(out, "w") as fh:  # noqa: PTH123 - no pathlib import in the launcher
        fh.write(str(usage.ru_maxrss))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
