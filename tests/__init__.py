"""tap-looker-query tests."""
