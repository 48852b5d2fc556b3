"""Sans-IO core of the RPyC 6 wire protocol.

Modules here use only the standard library (no sockets, threads, asyncio or clocks) and run
on CPython 3.8 and newer, because they are copied onto remote hosts:

- ``wire``: every RPyC 6 number (message types, labels, handler codes, limits).
- ``errors``: the engine's exception tree.
- ``brine``: the value codec (``dump``, ``load``, ``dumpable``).
- ``brine_strict``: the iterative reference decoder that ``brine.load`` falls back to.
- ``framing``: frame encoder and incremental decoder with a frame-size cap.
- ``messages``: the message layer (msg_type byte plus brine ``(seq, body)``).
- ``vinegar``: exceptions to and from their wire form.
"""
