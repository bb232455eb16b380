"""The Meltano Hub definition and meltano.yml's extractor settings match ``--about`` (no drift).

A unit test: it reads the checked-in files and ``--about`` (run in this process).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import yaml

from tests.helpers import about as about_text

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("hub_generate", ROOT / "hub" / "generate.py")
assert _spec is not None and _spec.loader is not None
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

# From meltano/hub schemas/plugin_definitions/extractors.schema.json and schemas/common/*.json.
REQUIRED = {"name", "namespace", "variant", "quality"}
ALLOWED = {
    "name",
    "pip_url",
    "variant",
    "namespace",
    "label",
    "description",
    "executable",
    "settings",
    "docs",
    "repo",
    "logo_url",
    "hidden",
    "python",
    "settings_group_validation",
    "commands",
    "capabilities",
    "metadata",
    "schema",
    "select",
    "maintenance_status",
    "quality",
    "domain_url",
    "keywords",
    "requires",
    "definition",
    "next_steps",
    "settings_preamble",
    "usage",
    "prereq",
    "supported_python_versions",
    "log_parser",
}
CAPABILITIES = {
    "properties",
    "catalog",
    "discover",
    "state",
    "about",
    "stream-maps",
    "schema-flattening",
    "activate-version",
    "batch",
    "test",
    "log-based",
    "structured-logging",
}
KINDS = {
    "oauth",
    "hidden",
    "password",
    "date_iso8601",
    "file",
    "email",
    "integer",
    "options",
    "object",
    "array",
    "boolean",
    "string",
}
SETTING_KEYS = {
    "name",
    "aliases",
    "label",
    "value",
    "placeholder",
    "kind",
    "description",
    "tooltip",
    "documentation",
    "protected",
    "env",
    "value_processor",
    "value_post_processor",
    "oauth",
    "options",
    "docs",
    "sensitive",
    "hidden",
}
MAINTENANCE = {"active", "beta", "development", "inactive", "unknown"}
QUALITY = {"gold", "silver", "bronze", "unknown"}


def about():
    return json.loads(about_text("json"))


def test_hub_file_and_meltano_yml_are_regenerated_without_drift(monkeypatch, capsys):
    # generate.py's own read_about runs the same CLI as a subprocess; its output is identical.
    monkeypatch.setattr(generate, "read_about", lambda executable=None: about())
    assert generate.main(["--check"]) == 0, capsys.readouterr().err


def test_hub_definition_has_the_hubs_required_keys_and_enums():
    text = generate.HUB_FILE.read_text(encoding="utf-8")
    d = yaml.safe_load(text)
    assert generate.HUB_FILE.parent.name == d["name"] == "tap-looker-query"
    assert generate.HUB_FILE.stem == d["variant"]
    assert d.keys() >= REQUIRED
    assert d.keys() <= ALLOWED, d.keys() - ALLOWED
    assert list(d) == sorted(d), "the Hub's yamllint wants keys in alphabetical order"
    assert set(d["capabilities"]) <= CAPABILITIES
    assert set(d["capabilities"]) == set(about()["capabilities"])
    assert d["maintenance_status"] in MAINTENANCE
    assert d["quality"] in QUALITY
    assert re.match(r"^https?://", d["domain_url"])
    assert all(re.match(r"^3\.\d+$", v) for v in d["supported_python_versions"])
    assert "meltano_sdk" in d["keywords"]
    names = [s["name"] for s in d["settings"]]
    assert len(names) == len(set(names))
    for s in d["settings"]:
        assert s.keys() <= SETTING_KEYS, s
        assert list(s) == sorted(s), s["name"]
        assert s["kind"] in KINDS, s
        assert s.get("label") and s.get("description"), s["name"]
        if s["kind"] == "options":
            assert s["options"], s["name"]
    for group in d["settings_group_validation"]:
        assert set(group) <= set(names)
    assert {s["name"] for s in d["settings"] if s.get("sensitive")} == {"client_secret"}
    # Every top-level tap setting is there (SDK objects may be split into dotted sub-settings).
    assert {n.split(".")[0] for n in names} == set(about()["settings"]["properties"])
    # Block sequences at the parent's indentation, two-space mappings (the Hub's yamllint rules).
    assert text.startswith("capabilities:\n- about\n")


def test_meltano_yml_declares_every_plugin_offline():
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    assert "version" not in project
    extractor = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-looker-query")
    assert extractor["namespace"] == "tap_looker_query"
    assert extractor["pip_url"] == "-e ."
    assert extractor["executable"] == "tap-looker-query"
    hub = yaml.safe_load(generate.HUB_FILE.read_text(encoding="utf-8"))
    assert [(s["name"], s["kind"], s.get("sensitive")) for s in extractor["settings"]] == [
        (s["name"], s["kind"], s.get("sensitive")) for s in hub["settings"]
    ]
    assert all(
        s.get("label") and s.get("description") and s.get("kind") for s in extractor["settings"]
    )
    children = [
        p for p in project["plugins"]["extractors"] if p.get("inherit_from") == "tap-looker-query"
    ]
    assert len(children) >= 2
    loaders = {p["name"]: p for p in project["plugins"]["loaders"]}
    assert set(loaders) >= {
        "target-jsonl",
        "target-s3",
        "target-gcs",
        "target-bigquery",
        "target-postgres",
    }
    for p in loaders.values():
        assert p.get("namespace") and p.get("pip_url") and p.get("executable"), p["name"]
        assert "variant" not in p, (
            f"{p['name']}: a variant without namespace sends Meltano to the Hub"
        )
        for s in p.get("settings", []):
            if any(w in s["name"] for w in ("secret", "password", "credentials_json")):
                assert s.get("sensitive") is True, s["name"]
    assert loaders["target-jsonl"]["config"]["destination_path"] == "output"
