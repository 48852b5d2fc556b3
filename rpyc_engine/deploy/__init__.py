"""Zero-deploy: run the engine's server on a host that has only sshd and Python.

``DeployedServer(machine)`` starts the server over one SSH exec (or a local subprocess)
and serves RPyC connections over that session's stdin/stdout; ``MultiServerDeployment``
does it for several machines in parallel. ``machine`` is a plumbum ``SshMachine``,
``ParamikoMachine`` or ``local``; plumbum is imported only when a deploy starts.

This package runs on the client only. Its ``mux`` and ``remote`` modules are also
uploaded as part of the server bundle (see ``bundle``) and run on the remote host.
"""

from __future__ import annotations

from rpyc_engine.deploy.deployed_server import DeployedServer
from rpyc_engine.deploy.errors import (
    DeployCancelled,
    DeployError,
    Leftover,
    NoPythonError,
    TimeoutExpired,
)
from rpyc_engine.deploy.multi import HostFailure, MultiServerDeployment

__all__ = [
    "DeployCancelled",
    "DeployError",
    "DeployedServer",
    "HostFailure",
    "Leftover",
    "MultiServerDeployment",
    "NoPythonError",
    "TimeoutExpired",
]
