"""Frames: how RPyC 6 cuts a byte stream into messages.

Every message travels as one frame::

    u32be length | u8 flag | body (length bytes) | one trailer byte

``length`` counts the body as transmitted. ``flag`` 0 means the body is the payload; any
other value means the body is a zlib stream (with zlib header) that inflates to the payload.
Senders append ``b"\\n"`` as trailer so line-buffered transports flush; receivers discard the
trailer byte without checking it, as stock rpyc does.

Stock rpyc has no size limit. ``FrameDecoder`` and ``read_frame`` reject frames whose declared
length or inflated size exceeds ``max_frame_size``, so a hostile peer cannot make us allocate
unbounded memory.
"""

from __future__ import annotations

import struct
import zlib
from typing import Callable, List, Optional

from .errors import FrameTooLarge, FramingError
from .wire import COMPRESSION_LEVEL, COMPRESSION_THRESHOLD, DEFAULT_MAX_FRAME_SIZE

__all__ = ["FrameDecoder", "HEADER_SIZE", "encode_frame", "read_frame"]

_HEADER = struct.Struct("!LB")
HEADER_SIZE = _HEADER.size  # 5
_TRAILER = b"\n"
_MAX_LENGTH = 0xFFFFFFFF


def encode_frame(payload: bytes, compress_threshold: Optional[int] = COMPRESSION_THRESHOLD) -> bytes:
    """Build the whole frame for one payload, as one bytes object.

    Args:
        payload: the message payload.
        compress_threshold: payloads longer than this many bytes are compressed with zlib
            level 1 (flag 1); ``None`` never compresses. Stock uses 3000.

    Raises:
        ValueError: the body is longer than 2**32 - 1 bytes, which the u32 length cannot
            express.
    """
    if compress_threshold is not None and len(payload) > compress_threshold:
        body = zlib.compress(payload, COMPRESSION_LEVEL)
        flag = 1
    else:
        body = payload
        flag = 0
    if len(body) > _MAX_LENGTH:
        raise ValueError(
            "frame body of %d bytes exceeds the u32 length field; send smaller values"
            % len(body)
        )
    return b"".join((_HEADER.pack(len(body), flag), body, _TRAILER))


def _check_length(length: int, max_frame_size: int) -> None:
    if length > max_frame_size:
        raise FrameTooLarge(
            "peer announced a frame of %d bytes, above the limit of %d bytes; raise "
            "max_frame_size if the peer is trusted" % (length, max_frame_size)
        )


def _inflate(body: bytes, max_frame_size: int) -> bytes:
    """Inflate a compressed body, never producing more than ``max_frame_size`` bytes."""
    inflater = zlib.decompressobj()
    try:
        # max_length=0 would mean "unlimited", hence the + 1 (which also detects overflow).
        payload = inflater.decompress(body, max_frame_size + 1)
    except zlib.error as exc:
        raise FramingError("compressed frame body is not valid zlib data: %s" % exc) from None
    if len(payload) > max_frame_size or inflater.unconsumed_tail:
        raise FrameTooLarge(
            "compressed frame of %d bytes inflates to more than the limit of %d bytes; raise "
            "max_frame_size if the peer is trusted" % (len(body), max_frame_size)
        )
    if not inflater.eof:
        raise FramingError("compressed frame body of %d bytes ends mid-stream" % len(body))
    if inflater.unused_data:
        raise FramingError(
            "compressed frame body has %d bytes after the end of its zlib stream"
            % len(inflater.unused_data)
        )
    return payload


class FrameDecoder:
    """Incremental frame decoder for byte streams (sans-IO).

    Feed it whatever the transport delivered; it returns every payload completed so far and
    keeps the partial rest for the next call. After it has raised once it is unusable: every
    later ``feed`` raises ``FramingError``, and the connection must be closed.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        """Create a decoder.

        Args:
            max_frame_size: the maximum body length and the maximum inflated payload length,
                in bytes.
        """
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        # Buffered bytes needed before the next frame can make progress.
        self._needed = HEADER_SIZE
        self._failure: Optional[BaseException] = None

    @property
    def buffered(self) -> int:
        """Number of bytes received but not yet returned as part of a payload."""
        return len(self._buffer)

    def feed(self, data: bytes) -> List[bytes]:
        """Add received bytes and return every payload they complete, inflated.

        Raises:
            FrameTooLarge: a declared length (checked from the 5-byte header alone) or an
                inflated size exceeds ``max_frame_size``.
            FramingError: a compressed body is not valid zlib data, or the decoder already
                failed earlier.
        """
        if self._failure is not None:
            raise FramingError(
                "frame decoder is unusable after an earlier error (%s); close the connection"
                % self._failure
            )
        if type(data) is not bytes:
            data = bytes(data)
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._needed:
                return []
            data = bytes(buffer)
            buffer.clear()
        elif len(data) < self._needed:
            buffer += data
            return []
        try:
            return self._split(data)
        except FramingError as exc:
            self._failure = exc
            raise

    def _split(self, data: bytes) -> List[bytes]:
        payloads = []
        size = len(data)
        pos = 0
        max_frame_size = self.max_frame_size
        while size - pos >= HEADER_SIZE:
            length, flag = _HEADER.unpack_from(data, pos)
            _check_length(length, max_frame_size)
            start = pos + HEADER_SIZE
            end = start + length
            if end >= size:  # the trailer byte at `end` has not arrived yet
                self._buffer += data[pos:]
                self._needed = HEADER_SIZE + length + 1
                return payloads
            body = data[start:end]
            payloads.append(_inflate(body, max_frame_size) if flag else body)
            pos = end + 1
        self._buffer += data[pos:]
        self._needed = HEADER_SIZE
        return payloads


def read_frame(read_exact: Callable[[int], bytes], max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """Read one frame with a blocking reader and return its payload, inflated.

    Args:
        read_exact: returns exactly the requested number of bytes, or raises (for example
            ``ConnectionClosed``) when the stream ends first.
        max_frame_size: the maximum body length and inflated payload length, in bytes.

    Raises:
        FrameTooLarge: the declared length or the inflated size exceeds ``max_frame_size``;
            the body is not read.
        FramingError: a compressed body is not valid zlib data.
    """
    length, flag = _HEADER.unpack(read_exact(HEADER_SIZE))
    _check_length(length, max_frame_size)
    body = read_exact(length + 1)[:-1]
    if flag:
        return _inflate(body, max_frame_size)
    return body
