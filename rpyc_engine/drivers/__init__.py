"""Drivers: the I/O side of a connection (see ``rpyc_engine.drivers.base`` for the seam)."""
