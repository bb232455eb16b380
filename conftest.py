"""Test tiers by directory, as pytest markers: ``pytest -m unit`` (or ``integration``, ``e2e``).

* ``tests/unit``: pure logic, no HTTP, no emulator, no subprocess (seconds; ``make unit``);
* ``tests/integration`` and the emulator's own ``looker_emulator/tests``: through the Looker
  emulator over HTTP with the real looker-sdk (``make integration``);
* ``tests/e2e``: Meltano and real Singer targets (``make e2e``).

This file sits at the repository root so that it applies to both test trees.
"""

from __future__ import annotations

import pytest

TIERS = {
    "tests/unit/": "unit",
    "tests/integration/": "integration",
    "looker_emulator/tests/": "integration",
    "tests/e2e/": "e2e",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its directory's tier; a test outside the tier directories is an error."""
    for item in items:
        try:
            where = item.path.relative_to(config.rootpath).as_posix()
        except ValueError:
            where = item.path.as_posix()
        tier = next((t for prefix, t in TIERS.items() if where.startswith(prefix)), None)
        if tier is None:
            msg = f"{where}: put the test in one of {', '.join(TIERS)} (it decides its tier)"
            raise pytest.UsageError(msg)
        item.add_marker(tier)
