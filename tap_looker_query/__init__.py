"""tap-looker-query: Looker queries as typed, incremental Singer streams."""
