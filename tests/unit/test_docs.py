"""The README's settings table is the one `--about --format=markdown` prints for our settings."""

from __future__ import annotations

from tests.helpers import REPO, about

SDK_SETTINGS = ("stream_map", "faker", "flattening", "batch_config")


def table_rows(markdown: str) -> list[str]:
    lines = markdown.splitlines()
    start = lines.index("| Setting | Required | Default | Description |")
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        if not line.split("|")[1].strip().startswith(SDK_SETTINGS):
            rows.append(line)
    return rows


def test_readme_settings_table_matches_about():
    markdown = about("markdown")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert table_rows(readme) == table_rows(markdown)
    assert len(table_rows(markdown)) == 17
