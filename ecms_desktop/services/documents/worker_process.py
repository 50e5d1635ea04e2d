"""The document worker process as the program sees it: how it is started, its pipes, and a reader
thread that queues its replies; killed and reaped (no zombie) when a call times out, the worker dies
or the user cancels. :class:`~ecms_desktop.services.documents.sandbox.DocumentSandbox` owns one.

The code that runs inside the worker is the package :mod:`ecms_desktop.services.documents.worker`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import IO, Any

from ecms_desktop.services.documents.worker.protocol import FRAME_HEADER, MAX_HEADER_BYTES, read_exact, write_frame

#: The worker's package, started with ``python -I -m`` when the program is not frozen.
WORKER_MODULE = "ecms_desktop.services.documents.worker"
#: First argument that makes a frozen ECMS executable act as the document worker.
WORKER_FLAG = "--document-worker"
#: Largest blob a reply may carry; a worker that announces more is no longer trusted.
FRAME_LIMIT = 512 * 1024 * 1024


class WorkerGone(Exception):
    """The worker process ended, or stopped speaking the protocol."""


class WorkerTimeout(Exception):
    """No reply from the worker within the time allowed."""


class _Spawner:
    """Starts the worker processes, all from one thread that lives as long as the program.

    A worker asks Linux to kill it when its parent goes away (``PR_SET_PDEATHSIG``, so that no worker
    outlives a crashed program), and for Linux the parent is the *thread* that started it: a worker
    started from a short-lived thread (the audit pack's probe thread, a view's loader) would be killed
    when that thread ends, in the middle of another thread's call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._requests: queue.Queue[tuple[list[str], queue.Queue[subprocess.Popen[bytes] | BaseException]]] = (
            queue.Queue())

    def popen(self, command: list[str]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="document-worker-spawner", daemon=True)
                self._thread.start()
        answer: queue.Queue[subprocess.Popen[bytes] | BaseException] = queue.Queue(maxsize=1)
        self._requests.put((command, answer))
        started = answer.get()
        if isinstance(started, BaseException):
            raise started
        return started

    def _serve(self) -> None:
        while True:
            command, answer = self._requests.get()
            try:
                creationflags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if os.name == "nt" else 0
                answer.put(subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    close_fds=True,
                    creationflags=creationflags,
                ))
            except BaseException as exc:  # handed to the thread that asked
                answer.put(exc)


_spawner = _Spawner()


class WorkerProcess:
    """One worker process, its pipes, and a reader thread that queues the replies."""

    def __init__(self, command: Sequence[str]) -> None:
        self.proc = _spawner.popen(list(command))
        self.replies: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        #: sha256 of documents the worker holds (a hint; the worker says "need_data" if not).
        self.known: OrderedDict[str, None] = OrderedDict()
        self.ready = False
        assert self.proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read_loop, args=(self.proc.stdout,), name="document-worker-reader", daemon=True
        )
        self._reader.start()

    def _read_loop(self, stream: IO[bytes]) -> None:
        try:
            while True:
                head = read_exact(stream, FRAME_HEADER.size)
                if head is None:
                    break
                hlen, blen = FRAME_HEADER.unpack(head)
                if hlen > MAX_HEADER_BYTES or blen > FRAME_LIMIT:
                    break  # the worker is not speaking our protocol any more
                header = read_exact(stream, hlen)
                blob = read_exact(stream, blen) if blen else b""
                if header is None or blob is None:
                    break
                decoded = json.loads(header.decode("utf-8"))
                if not isinstance(decoded, dict):
                    break
                self.replies.put((decoded, blob))
        except Exception:
            pass
        finally:
            self.replies.put(None)

    def send(self, header: dict[str, Any], blob: bytes = b"") -> None:
        stdin = self.proc.stdin
        if stdin is None:
            raise WorkerGone()
        try:
            write_frame(stdin, header, blob)
        except (OSError, ValueError):
            raise WorkerGone() from None

    def receive(self, timeout: float) -> tuple[dict[str, Any], bytes]:
        try:
            item = self.replies.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise WorkerTimeout() from None
        if item is None:
            self.replies.put(None)  # stay "gone" for anyone asking again
            raise WorkerGone()
        return item

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()

    def reap(self) -> None:
        """Kill if needed, wait for the process (no zombie) and close the pipes."""
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def shutdown(self, grace: float = 1.0) -> None:
        """Ask the worker to quit; kill it if it does not within ``grace`` seconds."""
        if self.alive():
            try:
                self.send({"op": "quit"})
                self.proc.wait(timeout=grace)
            except (WorkerGone, subprocess.TimeoutExpired):
                pass
        self.reap()

