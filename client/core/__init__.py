"""The sans-IO protocol core: bytes, `now` and commands in; bytes, packets, events and timer
deadlines out. No sockets, threads, clocks or OS calls (tests/unit/test_import_rules.py)."""
