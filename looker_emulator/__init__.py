"""A local Looker API 4.0 emulator for tests, the demo and benchmarks (see README.md).

>>> from looker_emulator import LookerEmulator
>>> with LookerEmulator() as emu:  # doctest: +SKIP
...     print(emu.base_url)
"""

from __future__ import annotations

from looker_emulator.faults import Faults
from looker_emulator.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    LookerEmulator,
    RequestLog,
)

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "Faults", "LookerEmulator", "RequestLog"]
