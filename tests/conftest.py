"""Shared pytest fixtures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.looker_emulator import LookerEmulator
from tests.looker_emulator.datasets import master_database

if TYPE_CHECKING:
    from collections.abc import Iterator


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
        emu.stop()


@pytest.fixture(scope="session")
def looker_emulator_session(_looker_master_db: None) -> Iterator[LookerEmulator]:
    """A Looker emulator shared by the whole session: tests must not mutate its data or faults."""
    emu = LookerEmulator().start()
    try:
        yield emu
    finally:
        emu.stop()
