"""The live_stream worker's parts: the manager of a streaming session, the tick publisher, the fills journal.

The entry point is `python -m services.live_stream`; see docs/live.md.
"""
