"""Benchmarks of RPyC Explorer: our engine against stock rpyc 6.0.2, side by side.

``python -m bench`` runs every figure family (one module each) and rewrites
docs/benchmarks.md and docs/images/benchmarks.png. Stock rpyc appears only here and in
the tests; neither ``rpyc_engine`` nor ``rpyc_explorer`` imports it. The decoder fuzz
run (``fuzz_decoder.py``) lives in this folder too but is a separate command.
"""
