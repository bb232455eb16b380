"""The emulator's fixtures (``looker_emulator``, ``looker_emulator_session``)."""

from looker_emulator.fixtures import _looker_master_db, looker_emulator, looker_emulator_session

__all__ = ["_looker_master_db", "looker_emulator", "looker_emulator_session"]
