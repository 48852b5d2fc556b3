"""Fixtures for tests that reach a real sshd on 127.0.0.1 (see tests/sshd.py)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def private_sshd():
    """An sshd whose login user no other test uses, so its files and processes count.

    Other tests (and other test runs on this machine) act as the shared test user at
    the same time; a test that asserts "nothing of this user is left" needs its own.
    """
    if os.geteuid() != 0:
        pytest.skip("a second login user needs root")
    from sshd import start_sshd

    server = start_sshd(user="rpyc-clean-test")
    yield server
    server.stop()
