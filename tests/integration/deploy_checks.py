"""Checks for deploy tests, read from /proc of this machine (the sshd runs here too)."""

from __future__ import annotations

import os
import time
from typing import Iterable, List, Set

TCP_LISTEN = "0A"
UNIX_ACCEPTING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix flags: a listening socket
SCRATCH_ROOTS = ("/tmp", "/var/tmp", "/dev/shm")
# The payload magic, part of the bootstrap text on every deploy command line.
DEPLOY_MARKER = b"rpyc-deploy/1"


def socket_inodes(pid: int) -> Set[int]:
    """Return the inodes of every socket the process ``pid`` has open."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def _inet_rows(kinds: Iterable[str]) -> List[List[str]]:
    rows = []
    for kind in kinds:
        with open(f"/proc/net/{kind}") as table:
            rows += [line.split() for line in table.readlines()[1:]]
    return rows


def inet_sockets_of(pid: int) -> List[str]:
    """Return a description of every TCP or UDP socket (IPv4 or IPv6) ``pid`` holds."""
    inodes = socket_inodes(pid)
    return [
        f"{row[1]} state {row[3]}"
        for row in _inet_rows(("tcp", "tcp6", "udp", "udp6"))
        if int(row[9]) in inodes
    ]


def tcp_listeners_of_uid(uid: int) -> List[str]:
    """Return the local addresses of every listening TCP socket owned by ``uid``."""
    return [
        row[1]
        for row in _inet_rows(("tcp", "tcp6"))
        if row[3] == TCP_LISTEN and int(row[7]) == uid
    ]


def reachable_unix_sockets_of(pid: int) -> List[str]:
    """Return the Unix sockets of ``pid`` another process could reach: named or listening.

    A socketpair end has no path and never listens, so nothing outside the process
    (and its peer end) can connect to it.
    """
    inodes = socket_inodes(pid)
    found = []
    with open("/proc/net/unix") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            inode = int(fields[6])
            path = fields[7] if len(fields) > 7 else ""
            if inode in inodes and (path or int(fields[3], 16) & UNIX_ACCEPTING):
                found.append(path or f"listening inode {inode}")
    return found


def process_gone(pid: int, within: float = 5.0) -> bool:
    """Wait up to ``within`` seconds for ``pid`` to disappear; return True if it did."""
    deadline = time.monotonic() + within
    while os.path.exists(f"/proc/{pid}"):
        if _is_zombie(pid) or time.monotonic() > deadline:
            return _is_zombie(pid)
        time.sleep(0.05)
    return True


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def process_uid(pid: int) -> int:
    """Return the real uid of ``pid``."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise LookupError(f"no Uid line for pid {pid}")


def deploy_processes(uid: int) -> Set[int]:
    """Return PIDs of ``uid`` whose command line carries the deploy bootstrap."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if DEPLOY_MARKER in cmdline.read():
                    found.add(int(entry))
        except OSError:
            continue
    return found




def files_owned_by(uid: int, roots: Iterable[str]) -> Set[str]:
    """Return every path under ``roots`` owned by ``uid`` (no symlinks followed)."""
    found = set()
    for root in roots:
        for directory, subdirs, files in os.walk(root):
            for name in subdirs + files:
                path = os.path.join(directory, name)
                try:
                    if os.lstat(path).st_uid == uid:
                        found.add(path)
                except OSError:
                    continue
    return found
