"""The engine: windows, prefetching, result formats, records and the window reader.

Nothing here imports the Singer SDK.
"""
