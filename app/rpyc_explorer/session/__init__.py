"""Connected machines and the controllers that connect, deploy and close them.

Only QtCore is used here (signals and QObject); widgets live in `views`. Blocking
work (ssh, plumbum, the engine's threaded driver) runs in worker threads, and
results come back to the asyncio loop that qasync runs on the GUI thread.
"""
