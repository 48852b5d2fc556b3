"""Machines the application can connect to, and everything about them that is not Qt.

This package owns the `Machine` record, its TOML store, the import from
`~/.ssh/config`, keyring access for credentials and the host-key checks. It never
imports PySide6 or qasync, so it can be tested and reused without a display.
"""
