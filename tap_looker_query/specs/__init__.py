"""Query specs: their schema, parsing, presets and the sources of saved queries."""
