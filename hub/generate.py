"""Generate tap-looker-query's Meltano Hub definition (and meltano.yml's settings) from ``--about``.

Usage (from the repo root, with the tap installed)::

    .venv/bin/python hub/generate.py          # rewrite both files
    .venv/bin/python hub/generate.py --check  # exit 1 when either file has drifted

The Hub file follows ``meltano/hub``'s ``_data/meltano/extractors/<name>/<variant>.yml`` layout:
keys in alphabetical order, block sequences at the parent's indentation, settings converted the way
``hub-utils`` converts ``--about --format json`` (JSON Schema type -> Meltano ``kind``; enums ->
``options``; secrets -> ``sensitive: true``; nested SDK objects -> dotted names).
``tests/unit/test_hub_definition.py`` regenerates both and fails when they drift.
"""

# ruff: noqa: INP001, T201 - a stand-alone script that reports what it wrote
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
NAME = "tap-looker-query"
# The Hub variant is the GitHub organisation that publishes the tap (replace when it is published).
VARIANT = "tap-looker-query"
REPO = f"https://github.com/{VARIANT}/{NAME}"
HUB_FILE = ROOT / "hub" / "extractors" / NAME / f"{VARIANT}.yml"
MELTANO_YML = ROOT / "meltano.yml"
# The Airflow deployment's project (docs/DEPLOY.md) declares the same extractor.
ORCHESTRATE_YML = ROOT / "orchestrate" / "meltano.yml"

# Object settings kept whole (free-form maps), not split into dotted sub-settings.
WHOLE_OBJECTS = {"stream_maps", "stream_map_config"}
# At least one of these sets must be complete (Meltano shows them as "Required settings").
GROUP_VALIDATION = [
    ["base_url", "client_id", "client_secret", "queries"],
    ["base_url", "client_id", "client_secret", "queries_file"],
]


def read_about(executable: str | None = None) -> dict[str, Any]:
    """``tap-looker-query --about --format json``, from the venv beside this interpreter."""
    exe = executable or str(Path(sys.executable).with_name(NAME))
    out = subprocess.run(  # noqa: S603 - our own executable
        [exe, "--about", "--format", "json"], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type", [])
    types = [t] if isinstance(t, str) else list(t)
    return [x for x in types if x != "null"]


def _kind(schema: dict[str, Any]) -> str:  # noqa: PLR0911 - one return per kind
    types = _types(schema)
    if "enum" in schema:
        return "options"
    if "array" in types:
        return "array"
    if "object" in types:
        return "object"
    if "boolean" in types:
        return "boolean"
    if types == ["integer"]:
        return "integer"
    if "string" in types and schema.get("format") in ("date-time", "date"):
        return "date_iso8601"
    return "string"


def _label(name: str, schema: dict[str, Any]) -> str:
    return schema.get("title") or name.rsplit(".", 1)[-1].replace("_", " ").title()


def _setting(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "label": _label(name, schema), "kind": _kind(schema)}
    if schema.get("description"):
        out["description"] = " ".join(str(schema["description"]).split())
    if schema.get("secret"):
        out["sensitive"] = True
    if "default" in schema and schema["default"] is not None:
        out["value"] = schema["default"]
    if "enum" in schema:
        out["options"] = [
            {"label": str(v), "value": str(v)} for v in schema["enum"] if v is not None
        ]
    return dict(sorted(out.items()))


def settings_from_about(about: dict[str, Any]) -> list[dict[str, Any]]:
    """Meltano setting definitions for every property of ``--about``'s settings schema."""
    settings: list[dict[str, Any]] = []

    def walk(prefix: str, props: dict[str, Any]) -> None:
        for key, schema in props.items():
            name = f"{prefix}{key}"
            sub = schema.get("properties")
            if "object" in _types(schema) and sub and key not in WHOLE_OBJECTS:
                walk(f"{name}.", sub)
            else:
                settings.append(_setting(name, schema))

    walk("", about["settings"]["properties"])
    return settings


def hub_definition(about: dict[str, Any]) -> dict[str, Any]:
    """The Hub's extractor definition, keys sorted."""
    definition = {
        "capabilities": sorted(about["capabilities"]),
        "description": "Business Intelligence (BI) & Data Analytics Platform: results of Looker "
        "queries, Looks and System Activity explores as typed, incremental streams",
        "domain_url": "https://cloud.google.com/looker",
        "executable": NAME,
        "keywords": ["api", "looker", "meltano_sdk", "system_activity"],
        "label": "Looker Query",
        "logo_url": "/assets/logos/extractors/looker.png",
        "maintenance_status": "active",
        "name": NAME,
        "namespace": "tap_looker_query",
        "pip_url": f"git+{REPO}.git",
        "quality": "unknown",
        "repo": REPO,
        "settings": settings_from_about(about),
        "settings_group_validation": GROUP_VALIDATION,
        "supported_python_versions": list(about["supported_python_versions"]),
        "variant": VARIANT,
    }
    return dict(sorted(definition.items()))


def render_hub(definition: dict[str, Any]) -> str:
    """YAML the way the Hub lays it out (yamllint: key-ordering, 2-space indent)."""
    return yaml.safe_dump(
        definition, sort_keys=True, allow_unicode=True, width=4096, default_flow_style=False
    )


def render_meltano_yml(about: dict[str, Any], current: str) -> str:
    """``meltano.yml`` with the extractor's capabilities and settings replaced, comments kept."""
    from ruamel.yaml import YAML  # noqa: PLC0415 - test group (Meltano has it too)
    from ruamel.yaml.compat import StringIO  # noqa: PLC0415

    ry = YAML()
    ry.indent(mapping=2, sequence=2, offset=0)
    ry.width = 4096
    doc = ry.load(current)
    extractor = next(p for p in doc["plugins"]["extractors"] if p["name"] == NAME)
    extractor["capabilities"] = sorted(about["capabilities"])
    order = ["name", "label", "kind", "description", "sensitive", "value", "options"]
    extractor["settings"] = [{k: s[k] for k in order if k in s} for s in settings_from_about(about)]
    extractor["settings_group_validation"] = GROUP_VALIDATION
    buf = StringIO()
    ry.dump(doc, buf)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Write (or, with ``--check``, compare) the Hub file and meltano.yml's extractor settings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail instead of writing when a file differs"
    )
    args = parser.parse_args(argv)
    about = read_about()
    wanted = {
        HUB_FILE: render_hub(hub_definition(about)),
        MELTANO_YML: render_meltano_yml(about, MELTANO_YML.read_text(encoding="utf-8")),
        ORCHESTRATE_YML: render_meltano_yml(about, ORCHESTRATE_YML.read_text(encoding="utf-8")),
    }
    drifted = [
        p for p, text in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != text
    ]
    if args.check:
        for p in drifted:
            print(
                f"{p.relative_to(ROOT)} is out of date: run .venv/bin/python hub/generate.py",
                file=sys.stderr,
            )
        return 1 if drifted else 0
    for p in drifted:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(wanted[p], encoding="utf-8")
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
