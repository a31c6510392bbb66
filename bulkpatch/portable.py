"""Portable: every call that differs between POSIX (Linux, macOS) and Windows, in one module.

The rest of bulkpatch asks here, in its own words, for a run folder's lock (`lock`, `unlock`),
Ctrl-C during a run (`on_interrupt`, `break_is_ctrl_c`), a file for the user's eyes alone
(`private_folder`, `open_private`) and a port no other program shares (`listening_socket`).
Each says what it means on either side. The POSIX branches are the ones the test suite runs
on every machine; the Windows branches follow the Microsoft and Python pages cited beside them
and run in CI on Windows (.github/workflows/tests.yml).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

WINDOWS = sys.platform == "win32"
if WINDOWS:
    import msvcrt
else:
    import fcntl

# --- one process at a time: a lock the OS drops when its process ends ----------------------------

# Windows locks byte ranges, and nobody else may read a locked byte: the lock is one byte far
# past the holder's text, which a refused process reads to say who holds the folder. Locking
# past the end of a file is allowed ("LockFileEx function", Microsoft Learn,
# https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-lockfileex); the
# offset stays below 2 GiB, which `msvcrt.locking` reaches through the C runtime's file position.
_LOCK_BYTE = 1 << 30


def lock(handle: IO[str]) -> None:
    """Hold `handle`'s file for this process, without waiting: OSError when another process
    holds it. The OS lets go when the process ends, however it ends (`kill -9` too)."""
    if WINDOWS:
        # msvcrt.locking: https://docs.python.org/3/library/msvcrt.html#msvcrt.locking
        _at_lock_byte(handle, msvcrt.LK_NBLCK)
    else:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def unlock(handle: IO[str]) -> None:
    """Let go of `lock`, before the file is closed. Windows asks for it: the locks of a closed
    file go "depending upon available system resources" ("LockFile function", Microsoft Learn,
    https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-lockfile)."""
    if WINDOWS:
        _at_lock_byte(handle, msvcrt.LK_UNLCK)
    else:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _at_lock_byte(handle: IO[str], mode: int) -> None:
    """`msvcrt.locking` acts at the file's position: go to the lock byte and back."""
    handle.flush()
    fd = handle.fileno()
    was = os.lseek(fd, 0, os.SEEK_CUR)
    os.lseek(fd, _LOCK_BYTE, os.SEEK_SET)
    try:
        msvcrt.locking(fd, mode, 1)
    finally:
        os.lseek(fd, was, os.SEEK_SET)


# --- Ctrl-C ---------------------------------------------------------------------------------------

# Ctrl-C reaches Python as SIGINT everywhere. Windows has Ctrl-Break (SIGBREAK) beside it, the
# only console signal another program (a scheduler, a service wrapper, a test) can send to a
# process ("GenerateConsoleCtrlEvent function", Microsoft Learn,
# https://learn.microsoft.com/en-us/windows/console/generateconsolectrlevent): bulkpatch takes
# both as Ctrl-C.
INTERRUPTS = (signal.SIGINT, signal.SIGBREAK) if WINDOWS else (signal.SIGINT,)


def break_is_ctrl_c() -> None:
    """From now on Ctrl-Break stops bulkpatch as Ctrl-C does (KeyboardInterrupt), where it would
    end the process at once, mid-write. Nothing to do on POSIX."""
    if WINDOWS:
        signal.signal(signal.SIGBREAK, signal.default_int_handler)


@contextmanager
def on_interrupt(loop: asyncio.AbstractEventLoop, react: Callable[[], None]) -> Iterator[None]:
    """While inside, Ctrl-C calls `react` in `loop` (the running one) instead of raising
    KeyboardInterrupt. Only the main thread hears signals: in another thread (the page's runs)
    nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if not WINDOWS:
        loop.add_signal_handler(signal.SIGINT, react)
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        return
    # asyncio's loops on Windows have no add_signal_handler ("Platforms Support", Python docs,
    # https://docs.python.org/3/library/asyncio-platforms.html#windows): a plain handler hands
    # the signal to the loop, which wakes for it.
    before = {sig: signal.getsignal(sig) for sig in INTERRUPTS}
    for sig in INTERRUPTS:
        signal.signal(sig, lambda *_: loop.call_soon_threadsafe(react))
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


# --- files for the user alone (the sign-in token cache) ------------------------------------------


def private_folder(path: Path) -> None:
    """Make `path` a folder only the user may open: mode 700 on POSIX. On Windows, Python
    (3.11.10, 3.12.4 and later) gives a new folder made with 0o700 an access list of the user
    and the administrators alone ("os.mkdir", https://docs.python.org/3/library/os.html#os.mkdir);
    a folder made before keeps its own, and the cache folder sits in the user's profile, which
    is the user's (and SYSTEM's and the administrators')."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def open_private(path: Path) -> IO[str]:
    """`path` opened to write UTF-8 text, created (or emptied) readable by the user alone: mode
    600 on POSIX. Windows keeps only the mode's write bit; the file takes its folder's access
    list (`private_folder`)."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(handle, "w", encoding="utf-8")


# --- a port of our own ----------------------------------------------------------------------------


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A TCP socket bound to `host:port` and listening; OSError when it cannot be. A restart
    binds the same port at once (POSIX: SO_REUSEADDR, past the old socket's TIME_WAIT), and no
    other program binds it beside us (Windows: SO_EXCLUSIVEADDRUSE, since there SO_REUSEADDR
    would let one: "Using SO_REUSEADDR and SO_EXCLUSIVEADDRUSE", Microsoft Learn,
    https://learn.microsoft.com/en-us/windows/win32/winsock/using-so-reuseaddr-and-so-exclusiveaddruse).
    """
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # that say they are TCP; with Nagle on, every small answer waits 40 ms for a delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    option = socket.SO_EXCLUSIVEADDRUSE if WINDOWS else socket.SO_REUSEADDR
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
