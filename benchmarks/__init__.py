"""Speed and memory measurements of tap-looker-query against the Looker emulator.

`python -m benchmarks` (what `make bench` runs) starts the emulator as its own process, runs each
measurement several times and prints a table of medians, ratios and targets; the table, the machine
and the date go to `benchmarks/RESULTS.md`. See `python -m benchmarks --help`.
"""
