"""Finding the remote Python: a POSIX shell script that picks an interpreter and execs it.

The script runs as ``/bin/sh -c SCRIPT rpyc-deploy OVERRIDE BOOTSTRAP`` in the same SSH
exec that then carries the server, so finding the interpreter costs no round trip of its
own. Without an override it tries `CANDIDATES` in order; with an override (a name or a
path) only the override. Each name found on PATH is run once with ``-S`` to check that
it starts and is 3.8 or newer. A name alone proves nothing, because pyenv installs a
shim for every version and the shims of versions not selected fail. When nothing fits,
the script reports every candidate on stderr, one ``rpyc-deploy-probe: NAME=PATH
(VERSION)`` line each, and exits with `EXIT_NO_PYTHON`. `parse_report` turns those lines
back into data for the error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence

MIN_VERSION = (3, 8)
CANDIDATES = (
    "python3.14",
    "python3.13",
    "python3.12",
    "python3.11",
    "python3.10",
    "python3.9",
    "python3.8",
    "python3",
    "python",
)
EXIT_NO_PYTHON = 97
# Seconds between the probe's checks that its SSH session still exists.
WATCH_INTERVAL = 1
REPORT_PREFIX = "rpyc-deploy-probe: "

PROBE_SCRIPT = r"""
override=$1
boot=$2
ids() {
    # Print the parent PID and process group of process $1.
    if [ -r "/proc/$1/stat" ]; then
        read -r stat <"/proc/$1/stat" && set -- ${stat##*) } && echo "$2 $3"
    else
        ps -o ppid= -o pgid= -p "$1" 2>/dev/null
    fi
}
alive() {
    kill -0 "$1" 2>/dev/null || [ -d "/proc/$1" ]
}
# sshd signals nothing when a session without a terminal ends, so a candidate that
# hangs would outlive a cancelled deploy. sshd made the session's first process the
# leader of our process group: once that leader's parent (sshd's session process) is
# gone, end the whole group.
set -- $(ids $$)
group=$2
set -- $(ids "${group:-0}")
session=$1
watchdog=
if [ -n "$group" ] && [ -n "$session" ] && [ "$session" -gt 1 ]; then
    (
        trap 'kill "$nap" 2>/dev/null; exit 0' TERM
        while alive "$session"; do
            sleep WATCH_INTERVAL &
            nap=$!
            wait "$nap"
        done
        kill -s KILL -- "-$group"
    ) </dev/null >/dev/null 2>&1 &
    watchdog=$!
fi
usable() {
    "$1" -S -c 'import sys; sys.exit(sys.version_info[:2] < MIN_VERSION)' >/dev/null 2>&1
}
if [ -n "$override" ]; then
    set -- "$override"
else
    set -- CANDIDATES
fi
for name in "$@"; do
    path=$(command -v "$name" 2>/dev/null) || continue
    if usable "$path"; then
        [ -z "$watchdog" ] || kill "$watchdog"
        exec "$path" -c "$boot"
    fi
done
for name in "$@"; do
    if path=$(command -v "$name" 2>/dev/null); then
        version=$("$path" -V 2>&1 | head -n 1)
        echo "PREFIX$name=$path ($version)" >&2
    else
        echo "PREFIX$name=" >&2
    fi
done
[ -z "$watchdog" ] || kill "$watchdog"
exit EXIT_NO_PYTHON
"""


@dataclass(frozen=True)
class Candidate:
    """One interpreter name the probe tried, and what it found."""

    name: str
    path: Optional[str]
    version: Optional[str]

    def describe(self) -> str:
        """Return e.g. ``python3 -> /usr/bin/python3 (Python 3.6.9)`` or ``... not found``."""
        if self.path is None:
            return f"{self.name}: not found"
        return f"{self.name} -> {self.path} ({self.version or 'version unknown'})"


def probe_script() -> str:
    """Return the shell script with the candidate list and constants filled in."""
    return (
        PROBE_SCRIPT.replace("CANDIDATES", " ".join(CANDIDATES))
        .replace("PREFIX", REPORT_PREFIX)
        .replace("EXIT_NO_PYTHON", str(EXIT_NO_PYTHON))
        .replace("MIN_VERSION", repr(MIN_VERSION))
        .replace("WATCH_INTERVAL", str(WATCH_INTERVAL))
    )


def probe_argv(bootstrap: str, override: Optional[str]) -> List[str]:
    """Return ``/bin/sh -c SCRIPT rpyc-deploy OVERRIDE BOOTSTRAP`` as an argv list."""
    return ["/bin/sh", "-c", probe_script(), "rpyc-deploy", override or "", bootstrap]


def tried_names(override: Optional[str]) -> Sequence[str]:
    """Return the names the probe tries, in order."""
    return (override,) if override else CANDIDATES


def parse_report(stderr_lines: Iterable[str]) -> List[Candidate]:
    """Parse the probe's ``rpyc-deploy-probe:`` lines into candidates."""
    found = []
    for line in stderr_lines:
        if not line.startswith(REPORT_PREFIX):
            continue
        name, _, rest = line[len(REPORT_PREFIX) :].partition("=")
        if not rest:
            found.append(Candidate(name, None, None))
            continue
        path, _, version = rest.partition(" (")
        found.append(Candidate(name, path, version.rstrip(")") or None))
    return found
