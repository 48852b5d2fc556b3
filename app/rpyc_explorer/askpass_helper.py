"""The program OpenSSH runs as SSH_ASKPASS to ask the application for a secret.

OpenSSH runs it with the prompt as its only argument and reads the answer from its
standard output. This program forwards the prompt over the Unix socket named in
RPYC_EXPLORER_ASKPASS_SOCKET, proving with the one-time token in
RPYC_EXPLORER_ASKPASS_TOKEN that an ssh started by the application is asking, and
prints the reply. It exits with status 1, printing nothing on stdout, when the
application declines (cancelled dialog, unexpected prompt, bad token).

It uses only the standard library and must stay runnable as a plain script.
"""

import json
import os
import socket
import sys

SOCKET_ENV = "RPYC_EXPLORER_ASKPASS_SOCKET"
TOKEN_ENV = "RPYC_EXPLORER_ASKPASS_TOKEN"
MAX_REPLY = 65536
# The user may take a while to type a password into the dialog.
TIMEOUT_SECONDS = 600


def ask(socket_path: str, token: str, prompt: str) -> dict:
    """Send one prompt and return the decoded reply."""
    request = json.dumps({"token": token, "prompt": prompt}).encode() + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(TIMEOUT_SECONDS)
        conn.connect(socket_path)
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while len(data) <= MAX_REPLY:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    return json.loads(data.decode())


def main(argv: list) -> int:
    """Run the helper; return the exit status."""
    socket_path = os.environ.get(SOCKET_ENV)
    token = os.environ.get(TOKEN_ENV)
    if not socket_path or not token:
        print(f"askpass: {SOCKET_ENV} and {TOKEN_ENV} must be set", file=sys.stderr)
        return 1
    prompt = argv[1] if len(argv) > 1 else ""
    try:
        reply = ask(socket_path, token, prompt)
    except (OSError, ValueError) as exc:
        print(f"askpass: cannot reach the application: {exc}", file=sys.stderr)
        return 1
    if not reply.get("ok"):
        print(f"askpass: {reply.get('error', 'declined')}", file=sys.stderr)
        return 1
    sys.stdout.write(reply["answer"] + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
