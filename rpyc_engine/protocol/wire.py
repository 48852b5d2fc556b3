"""Every number and name set of the RPyC 6 wire protocol (rpyc 6.0.x).

The values are facts of the wire format that stock rpyc 6.0.2 speaks; changing any of them
breaks interoperability with stock peers.
"""

from __future__ import annotations

# Message types: the first payload byte (a raw byte, not brine) since rpyc 6.0.0.
MSG_REQUEST = 1
MSG_REPLY = 2
MSG_EXCEPTION = 3

# Boxing labels, named from the receiver's point of view.
LABEL_VALUE = 1
LABEL_TUPLE = 2
LABEL_LOCAL_REF = 3
LABEL_REMOTE_REF = 4

# brine tags: the first byte of every encoded value (see brine.py for the layouts).
TAG_NONE = 0x00
TAG_EMPTY_BYTES = 0x01
TAG_EMPTY_TUPLE = 0x02
TAG_TRUE = 0x03
TAG_FALSE = 0x04
TAG_NOT_IMPLEMENTED = 0x05
TAG_ELLIPSIS = 0x06
TAG_STR = 0x08
TAG_BYTES_L1 = 0x0A
TAG_BYTES_L4 = 0x0D
TAG_BYTES_U8 = 0x0E
TAG_BYTES_U32 = 0x0F
TAG_TUPLE_L1 = 0x10
TAG_TUPLE_L4 = 0x13
TAG_TUPLE_U8 = 0x14
TAG_TUPLE_U32 = 0x15
TAG_INT_U8 = 0x16
TAG_INT_U32 = 0x17
TAG_FLOAT = 0x18
TAG_SLICE = 0x19
TAG_FROZENSET = 0x1A
TAG_COMPLEX = 0x1B
TAG_IMM_FIRST = 0x20
TAG_IMM_LAST = 0xEF
IMM_OFFSET = 0x50
IMM_MIN = TAG_IMM_FIRST - IMM_OFFSET  # -48
IMM_MAX = TAG_IMM_LAST - IMM_OFFSET  # 159

# Request handler codes.
HANDLE_PING = 1
HANDLE_CLOSE = 2
HANDLE_GETROOT = 3
HANDLE_GETATTR = 4
HANDLE_DELATTR = 5
HANDLE_SETATTR = 6
HANDLE_CALL = 7
HANDLE_CALLATTR = 8
HANDLE_REPR = 9
HANDLE_STR = 10
HANDLE_CMP = 11
HANDLE_HASH = 12
HANDLE_DIR = 13
HANDLE_PICKLE = 14
HANDLE_DEL = 15
HANDLE_INSPECT = 16
HANDLE_BUFFITER = 17
HANDLE_OLDSLICING = 18
HANDLE_CTXEXIT = 19
HANDLE_INSTANCECHECK = 20

HANDLER_NAMES = {
    HANDLE_PING: "PING",
    HANDLE_CLOSE: "CLOSE",
    HANDLE_GETROOT: "GETROOT",
    HANDLE_GETATTR: "GETATTR",
    HANDLE_DELATTR: "DELATTR",
    HANDLE_SETATTR: "SETATTR",
    HANDLE_CALL: "CALL",
    HANDLE_CALLATTR: "CALLATTR",
    HANDLE_REPR: "REPR",
    HANDLE_STR: "STR",
    HANDLE_CMP: "CMP",
    HANDLE_HASH: "HASH",
    HANDLE_DIR: "DIR",
    HANDLE_PICKLE: "PICKLE",
    HANDLE_DEL: "DEL",
    HANDLE_INSPECT: "INSPECT",
    HANDLE_BUFFITER: "BUFFITER",
    HANDLE_OLDSLICING: "OLDSLICING",
    HANDLE_CTXEXIT: "CTXEXIT",
    HANDLE_INSTANCECHECK: "INSTANCECHECK",
}

# Framing: payloads longer than this many bytes are sent zlib-compressed (3000 goes raw,
# 3001 compressed), with zlib level 1.
COMPRESSION_THRESHOLD = 3000
COMPRESSION_LEVEL = 1

# Stock rpyc has no frame-size limit; ours caps the declared and the inflated size so that a
# hostile peer cannot make us allocate gigabytes.
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024

# Bytes per read or write call on a stream, as stock uses.
STREAM_CHUNK = 64000

# The EXCEPTION body that stands for exactly StopIteration.
EXCEPTION_STOP_ITERATION = 1

# Sent as the `_remote_version` attribute of every exception. Stock rpyc compares the major
# number of that text with its own and, when they differ, adds a version warning to the
# remote traceback. We send the rpyc release whose wire format we speak, so stock 6.x peers
# print no warning.
PROTOCOL_VERSION = "6.0.2"

# The attribute names that pass the access check when `allow_safe_attrs` is on (80 names).
SAFE_ATTRS = frozenset(
    """
    __abs__ __add__ __and__ __bool__ __cmp__ __contains__ __delitem__ __delslice__
    __div__ __divmod__ __doc__ __enter__ __eq__ __exit__ __float__ __floordiv__
    __format__ __ge__ __getitem__ __getslice__ __gt__ __hash__ __hex__ __iadd__ __iand__
    __idiv__ __ifloordiv__ __ilshift__ __imod__ __imul__ __index__ __int__ __invert__
    __ior__ __ipow__ __irshift__ __isub__ __iter__ __itruediv__ __ixor__ __le__ __len__
    __length_hint__ __long__ __lshift__ __lt__ __mod__ __mul__ __ne__ __neg__ __new__
    __next__ __nonzero__ __oct__ __or__ __pos__ __pow__ __radd__ __rand__ __rdiv__
    __rdivmod__ __repr__ __rfloordiv__ __rlshift__ __rmod__ __rmul__ __ror__ __rpow__
    __rrshift__ __rshift__ __rsub__ __rtruediv__ __rxor__ __setitem__ __setslice__
    __str__ __sub__ __truediv__ __xor__ next
    """.split()
)

# Names a stock proxy handles locally instead of forwarding to its peer (35 names).
LOCAL_ATTRS = frozenset(
    """
    ____conn__ ____id_pack__ ____refcount__ __class__ __cmp__ __del__ __delattr__
    __dict__ __dir__ __doc__ __eq__ __exit__ __ge__ __getattr__ __getattribute__ __gt__
    __hash__ __init__ __instancecheck__ __le__ __lt__ __metaclass__ __methods__
    __module__ __ne__ __new__ __reduce__ __reduce_ex__ __repr__ __setattr__ __slots__
    __str__ __weakref__ __array_struct__ __array_interface__
    """.split()
)

# id_pack names for which a stock peer has a pre-built proxy class and sends no INSPECT
# (34 names).
BUILTIN_NETREF_NAMES = frozenset(
    """
    builtins.BaseException builtins.Exception builtins.NoneType builtins.bool
    builtins.builtin_function_or_method builtins.bytearray builtins.bytes builtins.code
    builtins.complex builtins.dict builtins.float builtins.frame builtins.frozenset
    builtins.function builtins.generator builtins.int builtins.list
    builtins.list_iterator builtins.mappingproxy builtins.memoryview builtins.method
    builtins.method-wrapper builtins.module builtins.object builtins.range_iterator
    builtins.set builtins.set_iterator builtins.slice builtins.str builtins.traceback
    builtins.tuple builtins.tuple_iterator builtins.type builtins.wrapper_descriptor
    """.split()
)
