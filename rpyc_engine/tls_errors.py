"""Errors of TLS setup: ``TLSError`` and the translation of ``ssl`` failures into it.

OpenSSL reports a failed handshake as a certificate verification code (on the side that
checked the certificate) or as an alert name (on the side that was refused). Both are
mapped here to one ``TLSError``. Its ``check`` names the check that failed, and its
message says what to do next, on the client and on the server.

This module is part of the server bundle: standard library only, CPython 3.8+.
"""

from __future__ import annotations

import socket
import ssl
from typing import Optional, Tuple

from rpyc_engine.protocol.errors import AuthenticationError

__all__ = [
    "CHECKS",
    "TLSError",
    "explain_client_error",
    "explain_server_error",
    "find_tls_failure",
]

# Values of ``TLSError.check``: which part of the TLS setup failed.
CHECKS = (
    "certificate-expired",  # notAfter is in the past (or notBefore in the future)
    "unknown-ca",  # the chain does not lead to a trusted CA, or the cert is self-signed
    "hostname-mismatch",  # the certificate does not name the host that was dialled
    "client-certificate-required",  # the server requires one, the client sent none
    "client-certificate-rejected",  # the server did not accept the client's certificate
    "server-certificate-rejected",  # (server side) the client rejected our certificate
    "not-tls",  # the other end does not speak TLS on this port
    "protocol-version",  # no TLS version or cipher both ends accept
    "handshake",  # anything else: the connection failed during the handshake
)

# OpenSSL X509_V_ERR_* codes reported in SSLCertVerificationError.verify_code.
_EXPIRY_CODES = {9: "is not yet valid", 10: "has expired"}
_UNKNOWN_CA_CODES = {
    2: "was issued by a CA whose certificate is not available",
    18: "is self-signed and not trusted",
    19: "chain ends in a self-signed CA that is not trusted",
    20: "was issued by an unknown CA",
    21: "was issued by an unknown CA",
    24: "chain contains a certificate that is not a valid CA",
}
_HOSTNAME_CODES = (
    62,
    64,
)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH

# Alerts the *client* receives from a server that rejected the client's certificate.
_CLIENT_CERT_ALERTS = {
    "SSLV3_ALERT_BAD_CERTIFICATE": "a bad certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "an expired certificate",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "a revoked certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "an unacceptable certificate",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "an unsupported certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "a certificate from a CA it does not trust",
    "TLSV1_ALERT_ACCESS_DENIED": "a certificate it denies access to",
}
_VERSION_REASONS = (
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "NO_PROTOCOLS_AVAILABLE",
    "NO_SHARED_CIPHER",
    "NO_CIPHERS_AVAILABLE",
    "VERSION_TOO_LOW",
)
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL")


class TLSError(AuthenticationError):
    """Raised when a TLS handshake or certificate check fails.

    Attributes:
        check: which check failed, one of ``CHECKS``.
    """

    def __init__(self, message: str, check: str) -> None:
        super().__init__(message)
        self.check = check


def _certificate_problem(exc: ssl.SSLCertVerificationError) -> Tuple[str, str]:
    """Return ``(check, phrase)`` for a local certificate verification failure."""
    code = exc.verify_code
    detail = exc.verify_message or exc.reason or str(exc)
    if code in _EXPIRY_CODES:
        return "certificate-expired", f"certificate {_EXPIRY_CODES[code]}"
    if code in _UNKNOWN_CA_CODES:
        return "unknown-ca", f"certificate {_UNKNOWN_CA_CODES[code]} ({detail})"
    if code in _HOSTNAME_CODES:
        return (
            "hostname-mismatch",
            f"certificate does not match the host name ({detail})",
        )
    return "handshake", f"certificate failed verification ({detail})"


def explain_client_error(
    exc: BaseException, address: str, server_hostname: Optional[str]
) -> TLSError:
    """Translate an error from a client's TLS handshake or first read into a TLSError.

    Args:
        exc: the ``ssl.SSLError``, ``OSError`` or ``EOFError`` that was raised.
        address: ``host:port`` that was dialled, for the message.
        server_hostname: the name the certificate was checked against.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        check, phrase = _certificate_problem(exc)
        message = f"TLS connection to {address} rejected: the server's {phrase}"
        if check == "hostname-mismatch":
            message += (
                f"; it was checked against {server_hostname!r}. Connect with the name "
                "the certificate was issued for, or pass server_hostname="
            )
        elif check == "unknown-ca":
            message += "; pass ca_certs= naming the CA file that issued it"
        elif check == "certificate-expired":
            message += "; the server needs a renewed certificate"
        return TLSError(message, check)
    reason = getattr(exc, "reason", None) or ""
    if reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
        return TLSError(
            f"TLS connection to {address} rejected: the server requires a client "
            "certificate; pass certfile= and keyfile=",
            "client-certificate-required",
        )
    if reason in _CLIENT_CERT_ALERTS:
        return TLSError(
            f"TLS connection to {address} rejected: the server refused the client "
            f"certificate as {_CLIENT_CERT_ALERTS[reason]} (alert {reason}); use a "
            "certificate issued by a CA the server trusts",
            "client-certificate-rejected",
        )
    if reason in _VERSION_REASONS:
        return TLSError(
            f"TLS connection to {address} failed: no TLS version or cipher that both "
            f"ends accept ({reason}); TLS 1.2 or newer is required",
            "protocol-version",
        )
    if reason in _NOT_TLS_REASONS:
        return TLSError(
            f"TLS connection to {address} failed: the server did not answer with TLS "
            f"({reason}); is it a plain RPyC server? Use connect() for plain TCP",
            "not-tls",
        )
    if isinstance(exc, socket.timeout):
        return TLSError(
            f"TLS connection to {address} failed: no TLS handshake reply in time. A "
            "plain RPyC server waits silently, so the port may not serve TLS",
            "not-tls",
        )
    if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
        return TLSError(
            f"TLS handshake with {address} failed (alert {reason}): the server may "
            "require a client certificate, or no cipher is acceptable to both ends",
            "handshake",
        )
    return TLSError(
        f"TLS connection to {address} failed during the handshake: {exc!r}. The server "
        "closed the connection; it may not serve TLS or may have rejected this client "
        "(see its log)",
        "handshake",
    )


def explain_server_error(exc: BaseException, peer: str) -> TLSError:
    """Translate a failed server-side TLS handshake into a TLSError naming ``peer``."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        check, phrase = _certificate_problem(exc)
        return TLSError(
            f"TLS client {peer} rejected: its client {phrase}",
            "client-certificate-rejected" if check != "certificate-expired" else check,
        )
    reason = getattr(exc, "reason", None) or ""
    if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return TLSError(
            f"TLS client {peer} rejected: it sent no client certificate, and this "
            "server requires one",
            "client-certificate-required",
        )
    if reason in _CLIENT_CERT_ALERTS:
        return TLSError(
            f"TLS client {peer} rejected this server's certificate: it reported "
            f"{_CLIENT_CERT_ALERTS[reason]} (alert {reason})",
            "server-certificate-rejected",
        )
    if reason in _VERSION_REASONS:
        return TLSError(
            f"TLS client {peer}: no TLS version or cipher both ends accept ({reason})",
            "protocol-version",
        )
    if reason in _NOT_TLS_REASONS:
        return TLSError(
            f"TLS client {peer} did not speak TLS ({reason}); it is probably a plain "
            "RPyC client",
            "not-tls",
        )
    if isinstance(exc, socket.timeout):
        return TLSError(
            f"TLS client {peer} did not complete the handshake in time", "handshake"
        )
    return TLSError(f"TLS handshake with client {peer} failed: {exc!r}", "handshake")


def find_tls_failure(exc: BaseException) -> Optional[BaseException]:
    """Return the SSLError, reset or timeout in the cause chain of ``exc``, if any."""
    seen = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ssl.SSLError, ConnectionResetError, socket.timeout)):
            return current
        current = current.__cause__ or current.__context__
    return None
