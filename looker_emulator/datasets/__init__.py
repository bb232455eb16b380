"""The data sets the emulator serves: models (explore metadata) and the tables behind them."""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING

from looker_emulator.datasets import synthetic, system_activity, thelook
from looker_emulator.engine import Database

if TYPE_CHECKING:
    from looker_emulator.lookml import Model

DATASETS = ("all", "system_activity", "thelook", "synthetic")
_MASTER: Database | None = None
_MASTER_LOCK = threading.Lock()


def master_database() -> Database:
    """The pristine database with every SQL-backed table, built once per process."""
    global _MASTER  # noqa: PLW0603
    with _MASTER_LOCK:
        if _MASTER is None:
            db = Database.empty()
            with db.lock:
                db.conn.isolation_level = "DEFERRED"  # implicit transactions around inserts
                system_activity.build_tables(db.conn)
                thelook.build_tables(db.conn)
                db.conn.commit()
                db.conn.isolation_level = None
            atexit.register(db.close)  # it lives as long as the process; closed, not collected
            _MASTER = db
        return _MASTER


def build_models(dataset: str, source: synthetic.SyntheticSource) -> dict[str, Model]:
    """The models served for ``dataset`` (one of :data:`DATASETS`)."""
    if dataset not in DATASETS:
        msg = f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}"
        raise ValueError(msg)
    models: dict[str, Model] = {}
    if dataset in ("all", "system_activity"):
        models["system__activity"] = system_activity.build_model()
        models["i__looker"] = system_activity.build_legacy_model()
    if dataset in ("all", "thelook"):
        models["thelook"] = thelook.build_model()
    if dataset in ("all", "synthetic"):
        models["synthetic"] = synthetic.build_model(source)
    return models
