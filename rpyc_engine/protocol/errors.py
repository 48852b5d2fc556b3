"""Exception tree of the RPyC engine.

Every error the engine raises on its own derives from ``RPyCError``. Errors caused by bytes the
peer sent derive from ``ProtocolError``, so a connection can treat them all as "the peer is
broken or hostile, close the connection".
"""

from __future__ import annotations

__all__ = [
    "AsyncResultTimeout",
    "AuthenticationError",
    "BrineError",
    "ConnectionClosed",
    "FrameTooLarge",
    "FramingError",
    "ProtocolError",
    "RPyCError",
]


class RPyCError(Exception):
    """Base class of every error raised by the engine itself."""


class ProtocolError(RPyCError):
    """Raised when the peer sent something malformed.

    Every decode failure (framing, brine, message layout, exception wire form) raises this or
    a subclass. The connection that received the bytes cannot be trusted afterwards.
    """


class BrineError(ProtocolError):
    """Raised by ``brine.load`` when the input is not one valid brine item.

    Causes: an unknown tag, truncated input, bytes after the item, invalid UTF-8 text, invalid
    integer text, nesting deeper than the limit, or a count larger than the input can hold.
    """


class FramingError(ProtocolError):
    """Raised when a frame cannot be decoded, for example because of corrupt zlib data."""


class FrameTooLarge(FramingError):
    """Raised when a frame's declared or inflated size exceeds the decoder's cap."""


class ConnectionClosed(RPyCError, EOFError):
    """Raised when the connection is closed, by either side or because the stream ended.

    It subclasses ``EOFError`` so that code written for stock rpyc, which raises ``EOFError``
    in the same situations, still catches it.
    """


class AsyncResultTimeout(RPyCError, TimeoutError):
    """Raised when the reply to a request did not arrive within the configured timeout."""


class AuthenticationError(RPyCError):
    """Raised when an authenticator rejects a connection or the peer's credentials."""
