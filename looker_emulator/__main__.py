"""``python -m looker_emulator``: serve the emulator until SIGTERM/SIGINT.

The first line of stdout is the base URL (flushed), e.g. ``http://127.0.0.1:43521``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from looker_emulator.datasets import DATASETS
from looker_emulator.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, LookerEmulator


def main(argv: list[str] | None = None) -> int:
    """Parse flags, start the emulator, print its base URL, serve until a signal."""
    p = argparse.ArgumentParser(prog="python -m looker_emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=0, help="port to bind; 0 picks a free one (default 0)"
    )
    p.add_argument(
        "--client-id",
        default=DEFAULT_CLIENT_ID,
        help=f"API client id accepted by /login (default {DEFAULT_CLIENT_ID})",
    )
    p.add_argument(
        "--client-secret",
        default=DEFAULT_CLIENT_SECRET,
        help=f"API client secret (default {DEFAULT_CLIENT_SECRET})",
    )
    p.add_argument(
        "--synthetic-rows",
        type=int,
        default=10_000,
        help="row count of the synthetic explore (default 10000)",
    )
    p.add_argument(
        "--query-latency",
        type=float,
        default=0.0,
        help="seconds added to every query run (default 0)",
    )
    p.add_argument(
        "--token-ttl",
        type=int,
        default=3600,
        help="expires_in returned by /login, seconds (default 3600)",
    )
    p.add_argument(
        "--dataset", choices=DATASETS, default="all", help="models to serve (default all)"
    )
    args = p.parse_args(argv)
    emu = LookerEmulator(
        client_id=args.client_id,
        client_secret=args.client_secret,
        host=args.host,
        port=args.port,
        synthetic_rows=args.synthetic_rows,
        token_ttl=args.token_ttl,
        dataset=args.dataset,
    )
    emu.faults.query_latency = args.query_latency
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emu.start()
    sys.stdout.write(emu.base_url + "\n")
    sys.stdout.flush()
    stop.wait()
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
