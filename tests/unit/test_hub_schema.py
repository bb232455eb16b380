"""The Hub definition passes the Meltano Hub's own JSON schema; ``--about`` JSON is pure JSON.

The schemas are copies from meltano/hub (origin in hub/schemas/README.md), validated the way the
Hub's CI validates plugin definitions: Draft 7, every schema registered under its ``$id``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "hub" / "schemas"
HUB_FILES = sorted((ROOT / "hub" / "extractors").glob("*/*.yml"))


def _validator() -> Draft7Validator:
    resources = []
    for path in sorted(SCHEMAS.glob("*/*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema, DRAFT7)))
    schema = json.loads((SCHEMAS / "plugin_definitions" / "extractors.schema.json").read_text())
    return Draft7Validator(schema, registry=Registry().with_resources(resources))


def _errors(definition: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _validator().iter_errors(definition)
    ]


@pytest.mark.parametrize("path", HUB_FILES, ids=lambda p: p.name)
def test_hub_definition_passes_the_hubs_extractor_schema(path):
    definition = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _errors(definition) == []


def test_the_schema_rejects_what_the_hub_would_reject():
    definition = yaml.safe_load(HUB_FILES[0].read_text(encoding="utf-8"))
    broken = {
        **definition,
        "quality": "platinum",
        "owner": "someone",
        "settings": [{**definition["settings"][0], "kind": "secret"}],
    }
    del broken["namespace"]
    errors = "\n".join(_errors(broken))
    assert "'platinum' is not one of" in errors
    assert "'owner' was unexpected" in errors
    assert "'secret' is not one of" in errors
    assert "'namespace' is a required property" in errors


def test_about_json_prints_only_json():
    done = subprocess.run(
        [str(Path(sys.executable).with_name("tap-looker-query")), "--about", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    about = json.loads(done.stdout)
    assert about["name"] == "tap-looker-query"
    assert "settings" in about
