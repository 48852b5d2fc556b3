"""The remote bootstrap program and the payload the client writes to its stdin.

The client starts ``/bin/sh -c <probe script> rpyc-deploy <override> <bootstrap>`` (see
``rpyc_engine.deploy.probe``). The probe script execs the first usable Python with
``-c <bootstrap>``; the bootstrap below then:

1. keeps duplicates of fds 0 and 1 for the RPyC stream, points fd 0 at ``/dev/null`` and
   fd 1 at stderr, so output printed by served code goes to the client's stderr log
   instead of corrupting the stream;
2. reads the payload written by `encode_payload`: the line
   ``rpyc-deploy/2 <config length> <bundle length>``, the config as a ``marshal``-ed
   dict, and the bundle (see ``rpyc_engine.deploy.bundle``); both formats need only
   built-in modules, which import in microseconds where ``zipfile`` and ``json`` take
   milliseconds;
3. installs a meta-path finder that imports the bundle's modules from memory, ahead of
   any ``rpyc_engine`` installed on the host, so no file is written anywhere;
4. calls ``rpyc_engine.deploy.remote.main``.

The bootstrap runs on CPython 3.8 and newer with the standard library only. It exits
with status 98 when the payload is truncated or malformed.
"""

from __future__ import annotations

import marshal
from typing import Any, Dict

MAGIC = b"rpyc-deploy/2"
EXIT_BAD_PAYLOAD = 98
# Prefix of the __file__ of every module imported from the bundle; no such file exists.
MEMORY_PREFIX = "<rpyc-deploy>/"

BOOTSTRAP = r"""
import marshal, os, sys, zlib
from importlib.machinery import ModuleSpec
stream_in = os.dup(0)
stream_out = os.dup(1)
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
os.close(null)
os.dup2(2, 1)
def fail(reason):
    sys.stderr.write("rpyc-deploy: bad payload: %s\n" % reason)
    sys.stderr.flush()
    os._exit(EXIT_BAD_PAYLOAD)
def read_exactly(size):
    # Unbuffered, so nothing after the bundle is read here: the server reads the rest.
    parts = []
    while size > 0:
        data = os.read(stream_in, min(size, 1 << 20))
        if not data:
            fail("stream ended %d bytes early" % size)
        parts.append(data)
        size -= len(data)
    return b"".join(parts)
def read_line(limit):
    line = b""
    while not line.endswith(b"\n") and len(line) < limit:
        line += read_exactly(1)
    return line
header = read_line(200).split()
if len(header) != 3 or header[0] != MAGIC:
    fail("unexpected header %r" % b" ".join(header)[:80])
config = marshal.loads(read_exactly(int(header[1])))
files = marshal.loads(zlib.decompress(read_exactly(int(header[2]))))
paths = {}
class MemoryLoader:
    # The source is compiled here; no file is read or written, no bytecode cached.
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        origin = module.__spec__.origin
        code = compile(files[origin[len(PREFIX):]], origin, "exec", dont_inherit=True)
        exec(code, module.__dict__)
    def get_source(self, fullname):
        # For tracebacks and inspect.getsource (through linecache).
        try:
            return files[paths[fullname][len(PREFIX):]].decode("utf-8")
        except KeyError:
            raise ImportError("not in the deployed bundle: %r" % fullname, name=fullname)
    def is_package(self, fullname):
        return paths.get(fullname, "").endswith("/__init__.py")
class MemoryFinder:
    def find_spec(self, fullname, path=None, target=None):
        base = fullname.replace(".", "/")
        for name, is_package in ((base + "/__init__.py", True), (base + ".py", False)):
            if name in files:
                paths[fullname] = PREFIX + name
                # ModuleSpec keeps the origin as given (spec_from_file_location would
                # make it absolute, so __file__ would look like a real path).
                spec = ModuleSpec(
                    fullname, LOADER, origin=PREFIX + name, is_package=is_package)
                spec.has_location = True
                return spec
        return None
    def invalidate_caches(self):
        pass
LOADER = MemoryLoader()
sys.meta_path.insert(0, MemoryFinder())
for name in [n for n in sys.modules if n == "rpyc_engine" or n.startswith("rpyc_engine.")]:
    del sys.modules[name]
from rpyc_engine.deploy import remote
remote.main(stream_in, stream_out, config)
"""


def bootstrap_source() -> str:
    """Return the bootstrap program text with its constants filled in."""
    constants = (
        f"MAGIC = {MAGIC!r}\nPREFIX = {MEMORY_PREFIX!r}\n"
        f"EXIT_BAD_PAYLOAD = {EXIT_BAD_PAYLOAD}\n"
    )
    return constants + BOOTSTRAP


def encode_payload(config: Dict[str, Any], bundle: bytes) -> bytes:
    """Return the bytes the bootstrap reads from stdin before the channel stream."""
    config_bytes = marshal.dumps(config, 2)
    header = b"%s %d %d\n" % (MAGIC, len(config_bytes), len(bundle))
    return header + config_bytes + bundle
