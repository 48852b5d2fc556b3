"""TLS for RPyC connections: ``ssl_connect`` (client) and ``SSLAuthenticator`` (server).

TLS only wraps the byte stream; the RPyC frames inside are unchanged, so both ends
interoperate with stock rpyc 6.0.x. The names and parameters follow rpyc's, but the
defaults differ where rpyc's are unsafe:

* ``ssl_connect`` verifies the server's certificate chain (against ``ca_certs``, else
  the system store) *and* its host name, always. The only way to turn that off is
  ``insecure_skip_verify=True``, which logs a WARNING on every call.
* Both sides require TLS 1.2 or newer.
* A failed handshake raises ``TLSError``, whose message and ``check`` attribute name
  the check that failed (see ``CHECKS``), instead of a bare ``EOFError`` or
  ``SSLError``.

With TLS 1.3 a server that rejects the client's certificate (or its absence) does so
only after the client's handshake has returned, so ``ssl_connect`` makes one PING round
trip before it returns the connection: a rejection surfaces there, translated.

This module is part of the server bundle: standard library only, CPython 3.8+.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
from typing import Any, Dict, List, Mapping, Optional, Tuple

from rpyc_engine.protocol.errors import ProtocolError
from rpyc_engine.protocol.framing import FrameDecoder, encode_frame
from rpyc_engine.protocol.messages import (
    decode_message,
    encode_exception,
    encode_request,
)
from rpyc_engine.protocol.wire import (
    HANDLE_PING,
    LABEL_VALUE,
    MSG_EXCEPTION,
    MSG_REPLY,
    MSG_REQUEST,
)
from rpyc_engine.services.base import VoidService
from rpyc_engine.tls_errors import (
    CHECKS,
    TLSError,
    explain_client_error,
    explain_server_error,
    find_tls_failure,
)

__all__ = [
    "CHECKS",
    "SSLAuthenticator",
    "TLSStreamSocket",
    "TLSError",
    "client_context",
    "explain_client_error",
    "explain_server_error",
    "find_tls_failure",
    "probe_tls_socket",
    "server_context",
    "split_frames",
    "ssl_connect",
]

logger = logging.getLogger(__name__)

DEFAULT_HANDSHAKE_TIMEOUT = 10.0
"""Seconds a TLS handshake (and the client's first round trip) may take."""

_TLS_HANDSHAKE_RECORD = 0x16  # first byte of every TLS ClientHello
_PLAIN_PROBE_LIMIT = 65536  # largest plain frame read from a non-TLS client
_FRAME_HEADER = struct.Struct("!LB")  # RPyC frame header: body length, compression flag
_READ_CHUNK = 64000
# The client's PING probe. Its reply is consumed before the connection exists, so any
# sequence number would do; one this large is easy to recognise in a capture.
_PROBE_SEQ = 2**62
_PROBE_DATA = "rpyc_engine TLS probe"


def _check_verify_args(
    cert_reqs: Optional[int], verify_mode: Optional[int], insecure_skip_verify: bool
) -> None:
    for name, value in (("cert_reqs", cert_reqs), ("verify_mode", verify_mode)):
        if value == ssl.CERT_NONE and not insecure_skip_verify:
            raise ValueError(
                f"{name}=CERT_NONE would accept any server certificate, but this "
                "engine always verifies the server. If you really mean it, pass "
                "insecure_skip_verify=True"
            )


def client_context(
    keyfile: Optional[str] = None,
    certfile: Optional[str] = None,
    ca_certs: Optional[str] = None,
    cert_reqs: Optional[int] = None,
    ssl_version: Optional[int] = None,
    ciphers: Optional[str] = None,
    verify_mode: Optional[int] = None,
    insecure_skip_verify: bool = False,
) -> ssl.SSLContext:
    """Build the client ``SSLContext`` that ``ssl_connect`` and ``aio.connect`` use.

    The context verifies the server's chain against ``ca_certs`` (else the system store)
    and its host name; TLS 1.2 is the minimum. ``cert_reqs`` and ``verify_mode`` are
    accepted for compatibility with rpyc; ``CERT_NONE`` in either is rejected unless
    ``insecure_skip_verify`` is true.

    Raises:
        ValueError: ``CERT_NONE`` was requested without ``insecure_skip_verify``.
        OSError, ssl.SSLError: a certificate, key or CA file cannot be loaded.
    """
    _check_verify_args(cert_reqs, verify_mode, insecure_skip_verify)
    if ssl_version is not None:
        context = ssl.SSLContext(ssl_version)
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        if ca_certs is None:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_certs is not None:
        context.load_verify_locations(cafile=ca_certs)
    _raise_minimum_version(context)
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _raise_minimum_version(context: ssl.SSLContext) -> None:
    if context.minimum_version < ssl.TLSVersion.TLSv1_2:
        context.minimum_version = ssl.TLSVersion.TLSv1_2


def _warn_insecure(address: str) -> None:
    logger.warning(
        "%s: TLS certificate verification is OFF (insecure_skip_verify=True); the "
        "connection is encrypted but anyone in the path can impersonate the server",
        address,
    )


def open_tls_socket(
    host: str,
    port: int,
    context: ssl.SSLContext,
    server_hostname: Optional[str] = None,
    ipv6: bool = False,
    keepalive: bool = False,
    timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
) -> ssl.SSLSocket:
    """Connect over TCP and complete the TLS handshake; return the blocking TLS socket.

    Raises:
        TLSError: the handshake failed. The message names the failed check.
        OSError: the TCP connection could not be made.
    """
    family = socket.AF_INET6 if ipv6 else socket.AF_UNSPEC
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    family, kind, proto, _, sockaddr = infos[0]
    raw = socket.socket(family, kind, proto)
    address = f"{host}:{port}"
    try:
        raw.settimeout(timeout)
        raw.connect(sockaddr)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if keepalive:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        name = server_hostname if server_hostname is not None else host
        try:
            tls = context.wrap_socket(raw, server_hostname=name)
        except (ssl.SSLError, ConnectionResetError, socket.timeout, EOFError) as exc:
            raise explain_client_error(exc, address, name) from exc
    except BaseException:
        raw.close()
        raise
    tls.settimeout(None)
    return tls


def probe_tls_socket(
    tls: ssl.SSLSocket, address: str, server_hostname: Optional[str], timeout: float
) -> bytes:
    """Make one raw PING round trip on a fresh TLS socket, translating a rejection.

    With TLS 1.3 the server checks the client certificate after the client's handshake
    has returned, so a missing or rejected certificate only shows at the first read (or
    as a failed first write, with the alert waiting unread). The PING uses a sequence
    number outside the connection's range and its reply is consumed here.

    Returns:
        Bytes read past the handshake that are not the PING reply (frames the server
        sent on its own); the connection must see them first.

    Raises:
        TLSError: the server rejected the client or sent no reply. ``tls`` is closed.
    """
    request = encode_frame(
        encode_request(_PROBE_SEQ, HANDLE_PING, (LABEL_VALUE, (_PROBE_DATA,)))
    )
    tls.settimeout(timeout)
    try:
        try:
            tls.sendall(request)
        except (ssl.SSLEOFError, BrokenPipeError, ConnectionResetError):
            tls.recv(1)  # raises the alert the server sent before it closed, if any
            raise
        kept = _read_until_probe_reply(tls)
    except (ssl.SSLError, OSError, EOFError) as exc:
        tls.close()
        raise explain_client_error(exc, address, server_hostname) from exc
    tls.settimeout(None)
    return kept


def _read_until_probe_reply(tls: ssl.SSLSocket) -> bytes:
    """Read frames until the probe's reply; return every other byte read, in order."""
    kept = []
    buffer = b""
    while True:
        data = tls.recv(_READ_CHUNK)
        if not data:
            raise EOFError(
                "the server closed the connection right after the TLS handshake"
            )
        buffer += data
        while len(buffer) >= _FRAME_HEADER.size:
            length, _ = _FRAME_HEADER.unpack_from(buffer)
            end = _FRAME_HEADER.size + length + 1
            if len(buffer) < end:
                break
            frame, buffer = buffer[:end], buffer[end:]
            if _is_probe_reply(frame):
                kept.append(buffer)
                return b"".join(kept)
            kept.append(frame)


def _is_probe_reply(frame: bytes) -> bool:
    try:
        payloads = FrameDecoder(_PLAIN_PROBE_LIMIT).feed(frame)
        msg_type, seq, _ = decode_message(payloads[0])
    except (ProtocolError, IndexError):
        return False
    return msg_type in (MSG_REPLY, MSG_EXCEPTION) and seq == _PROBE_SEQ


def split_frames(data: bytes) -> List[memoryview]:
    """Cut ``data`` (complete RPyC frames back to back) into one view per frame."""
    view = memoryview(data)
    frames = []
    position = 0
    while position < len(view):
        if len(view) - position < _FRAME_HEADER.size:
            frames.append(view[position:])
            break
        length, _ = _FRAME_HEADER.unpack_from(view, position)
        end = position + _FRAME_HEADER.size + length + 1
        frames.append(view[position:end])
        position = end
    return frames


class TLSStreamSocket:
    """A TLS socket that writes one TLS record (or more) per RPyC frame.

    Stock rpyc 6.0.2 reads a TLS socket frame by frame and polls the raw descriptor
    before each frame, so a second frame that arrived in the same TLS record sits in
    OpenSSL's buffer unseen and the stock peer waits forever. The engine sends several
    frames in one write (DEL requests before a call), so each is written separately
    here. Reads may start with ``prefix``, bytes that ``ssl_connect``'s probe read.
    """

    def __init__(self, sock: ssl.SSLSocket, prefix: bytes = b"") -> None:
        self._sock = sock
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __repr__(self) -> str:
        return f"<TLSStreamSocket {self._sock!r}>"

    def recv(self, size: int) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._sock.recv(size)

    def pending(self) -> int:
        return len(self._prefix) + self._sock.pending()

    def sendall(self, data: bytes) -> None:
        for frame in split_frames(data):
            self._sock.sendall(frame)


def ssl_connect(
    host: str,
    port: int,
    keyfile: Optional[str] = None,
    certfile: Optional[str] = None,
    ca_certs: Optional[str] = None,
    cert_reqs: Optional[int] = None,
    ssl_version: Optional[int] = None,
    ciphers: Optional[str] = None,
    service: Any = VoidService,
    config: Mapping[str, Any] = {},  # noqa: B006 - never mutated; rpyc's signature
    ipv6: bool = False,
    keepalive: bool = False,
    verify_mode: Optional[int] = None,
    server_hostname: Optional[str] = None,
    insecure_skip_verify: bool = False,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
) -> Any:
    """Connect to an RPyC server over TLS and return the connection.

    The server's certificate chain is verified against ``ca_certs`` (a PEM file of CA
    certificates; the system store when omitted) and its host name against
    ``server_hostname`` (default ``host``; an IP address is matched against the
    certificate's IP entries).

    Args:
        host, port: the server's address.
        keyfile, certfile: the client certificate and its key, for servers that
            require one.
        ca_certs: CA certificates that may issue the server's certificate.
        cert_reqs, verify_mode: rpyc compatibility; only ``CERT_REQUIRED`` or ``None``.
        ssl_version: a ``ssl.PROTOCOL_*`` constant. Versions below TLS 1.2 stay
            disabled.
        ciphers: an OpenSSL cipher string.
        service: the local service class or instance (default ``VoidService``).
        config: connection options, as for ``rpyc_engine.connect``.
        ipv6: resolve ``host`` to an IPv6 address.
        keepalive: enable TCP keepalive.
        server_hostname: the name to check the certificate against and send as SNI.
        insecure_skip_verify: accept any server certificate (logs a WARNING).
        handshake_timeout: seconds for the TCP connect, the TLS handshake and the first
            round trip, each.

    Raises:
        TLSError: the handshake or the first round trip failed; ``check`` says why.
        ValueError: ``CERT_NONE`` requested without ``insecure_skip_verify``.
        OSError: the TCP connection failed.
    """
    from rpyc_engine.factory import connect_socket

    address = f"{host}:{port}"
    context = client_context(
        keyfile,
        certfile,
        ca_certs,
        cert_reqs,
        ssl_version,
        ciphers,
        verify_mode,
        insecure_skip_verify,
    )
    if insecure_skip_verify:
        _warn_insecure(address)
    name = server_hostname if server_hostname is not None else host
    tls = open_tls_socket(host, port, context, name, ipv6, keepalive, handshake_timeout)
    early = probe_tls_socket(tls, address, name, handshake_timeout)
    return connect_socket(TLSStreamSocket(tls, early), service=service, config=config)


def server_context(
    keyfile: Optional[str],
    certfile: str,
    ca_certs: Optional[str] = None,
    cert_reqs: Optional[int] = None,
    ssl_version: Optional[int] = None,
    ciphers: Optional[str] = None,
) -> ssl.SSLContext:
    """Build the server context: TLS 1.2 or newer, client checks by ``cert_reqs``.

    ``cert_reqs`` defaults to ``CERT_REQUIRED`` when ``ca_certs`` is given, else
    ``CERT_NONE`` (rpyc's rule).
    """
    if ssl_version is not None:
        context = ssl.SSLContext(ssl_version)
    else:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _raise_minimum_version(context)
    context.load_cert_chain(certfile, keyfile)
    if ca_certs is not None:
        context.load_verify_locations(cafile=ca_certs)
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if cert_reqs is None:
        cert_reqs = ssl.CERT_REQUIRED if ca_certs is not None else ssl.CERT_NONE
    if cert_reqs != ssl.CERT_NONE and ca_certs is None:
        raise ValueError(
            "cert_reqs requests client certificates but ca_certs is not set: pass the "
            "CA file that issues client certificates"
        )
    context.verify_mode = cert_reqs
    return context


class SSLAuthenticator:
    """Server authenticator that wraps each accepted socket in TLS.

    Pass an instance as ``ThreadedServer(..., authenticator=SSLAuthenticator(...))``.
    With ``ca_certs``, clients must present a certificate issued by one of those CAs
    (unless ``cert_reqs`` sets otherwise). The certificate, as returned by
    ``SSLSocket.getpeercert()``, becomes the connection's ``credentials``. Without a
    client certificate the credentials are ``None``.

    A failed handshake raises ``TLSError`` (an ``AuthenticationError``) whose message
    names the peer address and the check that failed; the server logs it and drops the
    socket. A plain RPyC client that sends a request to the TLS port gets an EXCEPTION
    reply (``ConnectionRefusedError``) saying that the server requires TLS.
    """

    def __init__(
        self,
        keyfile: Optional[str],
        certfile: str,
        ca_certs: Optional[str] = None,
        cert_reqs: Optional[int] = None,
        ssl_version: Optional[int] = None,
        ciphers: Optional[str] = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        self.context = server_context(
            keyfile, certfile, ca_certs, cert_reqs, ssl_version, ciphers
        )
        self.handshake_timeout = handshake_timeout

    def __call__(self, sock: socket.socket) -> Tuple[Any, Optional[Dict]]:
        """Run the TLS handshake on ``sock``; return ``(tls_socket, peer_certificate)``.

        The returned socket is a ``TLSStreamSocket``, which writes one frame per TLS
        record for stock clients.

        Raises:
            TLSError: the handshake failed (the socket is closed).
        """
        peer = _peer_name(sock)
        sock.settimeout(self.handshake_timeout)
        try:
            if not _starts_with_tls_record(sock):
                _reject_plain_client(sock, peer)
            tls = self.context.wrap_socket(sock, server_side=True)
        except TLSError:
            sock.close()
            raise
        except (ssl.SSLError, ConnectionResetError, socket.timeout, EOFError) as exc:
            sock.close()
            raise explain_server_error(exc, peer) from exc
        tls.settimeout(None)
        credentials = tls.getpeercert()
        if credentials:
            logger.info(
                "%s: TLS client authenticated as %s", peer, _subject(credentials)
            )
        return TLSStreamSocket(tls), credentials


def _starts_with_tls_record(sock: socket.socket) -> bool:
    """Wait for the client's first byte; True if it opens a TLS handshake record.

    Raises:
        EOFError: the client closed the connection without sending anything.
    """
    first = sock.recv(1, socket.MSG_PEEK)
    if not first:
        raise EOFError("the client closed the connection before the TLS handshake")
    return first[0] == _TLS_HANDSHAKE_RECORD


def _reject_plain_client(sock: socket.socket, peer: str) -> None:
    """Reply to a plain RPyC request with an EXCEPTION stating that TLS is required.

    A plain client would otherwise see only a reset connection. The reply is best
    effort: anything unexpected just closes the socket. Always raises ``TLSError``.
    """
    error = TLSError(
        f"TLS client {peer} sent plain RPyC instead of a TLS handshake; it is "
        "probably using connect() instead of ssl_connect()",
        "not-tls",
    )
    try:
        decoder = FrameDecoder(_PLAIN_PROBE_LIMIT)
        payloads: list = []
        while not payloads:
            data = sock.recv(4096)
            if not data:
                raise error
            payloads = decoder.feed(data)
        msg_type, seq, _ = decode_message(payloads[0])
        if msg_type == MSG_REQUEST:
            message = (
                "this server requires TLS: connect with ssl_connect() instead of "
                "a plain TCP connection"
            )
            exc_data = (
                ("builtins", "ConnectionRefusedError"),
                (message,),
                (("_remote_version", "<version denied>"),),
                "<traceback denied>",
            )
            sock.sendall(encode_frame(encode_exception(seq, exc_data)))
    except (OSError, ProtocolError):
        pass
    raise error


def _peer_name(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "<unknown peer>"
    return f"{host}:{port}"


def _subject(cert: Mapping[str, Any]) -> str:
    """Render a getpeercert() subject as ``CN=client1,O=Acme``."""
    short = {
        "commonName": "CN",
        "organizationName": "O",
        "organizationalUnitName": "OU",
    }
    parts = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            parts.append(f"{short.get(key, key)}={value}")
    return ",".join(parts) or "<no subject>"
