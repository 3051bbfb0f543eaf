"""Who is sending an outbox entry, and whether that process is still alive.

An entry in state `sending` carries its owner (`host:pid`) and a lease end. Another process
may take it over when the lease has run out or, on the same host, as soon as the owner process
no longer exists: a desk killed mid-send is recovered by the next flush, not an hour later.
"""

from __future__ import annotations

import os
import socket


def owner_id() -> str:
    """This process, as it is written in the outbox: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_gone(owner: str | None) -> bool:
    """True when `owner` is surely dead: a process of this host that no longer exists.

    A process of another host is never declared dead here (its lease decides); a pid reused by
    another process makes the owner look alive, which only delays the take-over to the lease.
    """
    if not owner:
        return True
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
