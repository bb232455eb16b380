"""pytest fixtures for tests that talk to the emulator.

A ``conftest.py`` makes them available by importing them (``looker_emulator/tests``,
``tests/integration`` and ``tests/e2e`` do); the unit tests do not, so they cannot start one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from looker_emulator.datasets import master_database
from looker_emulator.server import LookerEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["_looker_master_db", "looker_emulator", "looker_emulator_session"]


@pytest.fixture(scope="session")
def _looker_master_db() -> None:
    """Build the emulator's SQLite data sets once per session (later instances clone them)."""
    master_database()


@pytest.fixture
def looker_emulator(_looker_master_db: None) -> Iterator[LookerEmulator]:
    """A started Looker emulator with fresh data and no faults; stopped after the test."""
    emu = LookerEmulator().start()
    try:
        yield emu
    finally:
        emu.close()


@pytest.fixture(scope="session")
def looker_emulator_session(_looker_master_db: None) -> Iterator[LookerEmulator]:
    """A Looker emulator shared by the whole session: tests must not mutate its data or faults."""
    emu = LookerEmulator().start()
    try:
        yield emu
    finally:
        emu.close()
