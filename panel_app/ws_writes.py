"""Panel's queue of websocket writes, corrected so that a queued patch is never left unsent.

Panel (1.9.4) sends the changes a callback makes to a page itself (`panel.io.document.unlocked`), not
through Bokeh. When it cannot write at once (Bokeh is writing a message of its own on that socket: its
`write_lock` is held; or earlier patches of the document are still queued) it turns the changes into a
PATCH-DOC message, queues it (`_WRITE_MSGS[doc]`), marks the document blocked (`_WRITE_BLOCK[doc]`)
and starts a task, `_dispatch_msgs`, that writes the queue (or puts it back and tries again 10 ms
later while the lock is held). A task that finds the document no longer blocked returns at once.

The race (what left the Flow page without its last section under load, CI's flake of December):
task A takes the queue, writes it and waits for the writes to complete (a busy browser reads its socket
late). Meanwhile the page queues its next patch (the document is blocked), whose task finds Bokeh's
write lock held, puts the message back and sleeps. A's writes complete, A sees nothing left *of its own*
and unblocks the document, though the queue holds the new message. The new message's task then wakes,
finds the document unblocked and returns: the message stays queued, and nothing writes it until the
page changes again (for a page that is done filling: never). The server logged the page as filled;
the browser never got the patch carrying the rest of it.

`install()` replaces `panel.io.document._dispatch_msgs` with the same writer keeping one rule: the
document stays blocked while its queue holds a message, and a task that finishes with messages queued
starts the next one, so every queued message is written (in order, after the ones before it). Messages
it cannot write yet go back to the queue before it waits for anything, so the queue is never empty
while a message is pending. It is installed once per process, by `panel_app.page` (imported by every
page); on a Panel without these internals it leaves Panel as it is and logs why.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import panel.io.document as pn_document

log = logging.getLogger(__name__)

_NEEDED = ("_WRITE_BLOCK", "_WRITE_MSGS", "_WRITE_FUTURES", "_dispatch_msgs", "_dispatch_write_task",
           "_run_write_futures", "dispatch_tornado", "dispatch_django", "extra_socket_handlers")
RETRY_S = 0.01  # seconds before another try while Bokeh holds a socket's write lock (Panel's own interval)


def _write_locked(conn: Any) -> bool:
    """Whether Bokeh is writing a message of its own on this connection (its frames must not interleave)."""
    lock = getattr(conn._socket, "write_lock", None)
    return lock is not None and lock._block._value == 0


def _write(conn: Any, msg: Any) -> list[Any]:
    """Write one message's frames on the connection now (as Panel does); the futures of their completion."""
    from tornado.websocket import WebSocketHandler

    socket = conn._socket
    if isinstance(socket, WebSocketHandler):
        return list(pn_document.dispatch_tornado(conn, msg=msg))
    handler = pn_document.extra_socket_handlers.get(type(socket))
    if handler is not None:
        return list(handler(conn, msg=msg))
    return list(pn_document.dispatch_django(conn, msg=msg))


async def dispatch_msgs(doc: Any) -> None:
    """Write the document's queued messages; never unblock it while its queue holds one (see the module)."""
    blocked, queue = pn_document._WRITE_BLOCK, pn_document._WRITE_MSGS
    if doc not in blocked:  # the document was destroyed, or nothing is queued
        return
    waiting: dict[Any, list[Any]] = {}
    futures: list[Any] = []
    for conn, msgs in queue.pop(doc, {}).items():
        if _write_locked(conn):
            waiting[conn] = msgs
            continue
        for msg in msgs:
            futures += _write(conn, msg)
    if waiting:  # back at the head of the queue at once: the queue is never empty while one is pending
        queued = queue.setdefault(doc, {})
        for conn, msgs in waiting.items():
            queued[conn] = msgs + queued.get(conn, [])
    if futures:
        pn_document._WRITE_FUTURES.setdefault(doc, []).extend(futures)
        await pn_document._run_write_futures(doc)
    if doc not in blocked:  # destroyed meanwhile (its queue went with it)
        return
    if doc not in queue:
        del blocked[doc]
        return
    if waiting:
        await asyncio.sleep(RETRY_S)
    pn_document._dispatch_write_task(doc, pn_document._dispatch_msgs, doc)


def install() -> bool:
    """Put `dispatch_msgs` in Panel's place (once; idempotent). False when this Panel lacks the internals."""
    if pn_document.__dict__.get("_dispatch_msgs") is dispatch_msgs:
        return True
    missing = [name for name in _NEEDED if not hasattr(pn_document, name)]
    if missing:
        log.warning("Panel's websocket write queue has changed (no %s): its own is used", ", ".join(missing))
        return False
    pn_document._dispatch_msgs = dispatch_msgs
    return True
