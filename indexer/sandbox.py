"""Reading one file in a child process with a time and memory budget.

A hostile file (a zip bomb that passes the archive check by a hair, a PDF whose
parser loops) must fail its own job quickly and leave the service as it was. The
child gets an address-space limit (``RLIMIT_AS``, its size at start plus
``reader_memory_mb``): an allocation beyond it raises ``MemoryError`` there, not
in the service. A child still running after ``reader_timeout_s`` is killed. The
child's memory is the kernel's to take back when it exits, so the service's own
memory is unchanged whatever the file did.

Children come from multiprocessing's *forkserver*: a clean single-threaded
process that has imported the readers once, so a child starts in milliseconds
and never inherits the service's threads (faiss, OpenVINO, the event loop); see
``_pose_as_parent_main`` for the one thing that takes.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import resource
import sys
import threading
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexer.readers import ReaderOptions, ReadResult, reader_for
from rag.errors import DocumentReadError

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext

    from rag.config import IndexingSettings

logger = logging.getLogger(__name__)

_context_lock = threading.Lock()
_context: ForkServerContext | None = None
_EXIT_GRACE_S = 5.0
_PARENT_MAIN_ENV = "RAG_READER_PARENT_MAIN"
STARTUP_TIMEOUT_S = 300.0  # a fork server that cannot start a child in this time is broken


@dataclass(frozen=True)
class ReaderBudget:
    timeout_s: float = 120.0  # RAG_INDEXING__READER_TIMEOUT_S
    memory_bytes: int = 2048 * 2**20  # RAG_INDEXING__READER_MEMORY_MB

    @classmethod
    def from_settings(cls, indexing: IndexingSettings) -> ReaderBudget:
        return cls(indexing.reader_timeout_s, indexing.reader_memory_mb * 2**20)


def read_direct(path: Path, options: ReaderOptions) -> ReadResult:
    """Read in this process (the caller catches what readers raise)."""
    reader = reader_for(path)
    if reader is None:
        raise DocumentReadError(str(path), "unsupported file type")
    return reader(path, options)


def read_isolated(path: Path, options: ReaderOptions, budget: ReaderBudget) -> ReadResult:
    """Like :func:`read_direct`, in a child process; over budget raises :class:`DocumentReadError`."""
    context = _forkserver()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child,
        args=(sender, path, options, budget.memory_bytes),
        name="rag-reader",
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        outcome: tuple[Any, ...] | None = _TIMED_OUT
        # The budget counts from the child's start: the fork server's first start (importing
        # the readers, seconds on a busy machine) is not the file's fault.
        outcome = _receive(receiver, STARTUP_TIMEOUT_S)
        if outcome == _TIMED_OUT:
            outcome = (
                "error",
                str(path),
                f"the reader process did not start within {STARTUP_TIMEOUT_S:g} s",
            )
        elif outcome == _STARTED:
            outcome = _receive(receiver, budget.timeout_s)
    finally:
        receiver.close()
        exitcode = _reap(child, grace_s=0.0 if outcome == _TIMED_OUT else _EXIT_GRACE_S)
    if outcome == _TIMED_OUT:
        raise DocumentReadError(
            str(path), f"reading took longer than {budget.timeout_s:g} s and was stopped "
            "(limit: RAG_INDEXING__READER_TIMEOUT_S)",
        )  # fmt: skip
    if outcome is None:
        raise DocumentReadError(str(path), f"the reader process died (exit code {exitcode})")
    if outcome[0] == "ok":
        return outcome[1]  # type: ignore[no-any-return]
    raise DocumentReadError(outcome[1], outcome[2])


_TIMED_OUT = ("timed out",)
_STARTED = ("started",)


def _receive(receiver: Connection, timeout_s: float) -> tuple[Any, ...] | None:
    if not receiver.poll(timeout_s):
        return _TIMED_OUT
    try:
        return receiver.recv()  # type: ignore[no-any-return]
    except (EOFError, OSError):  # the child died before or while answering
        return None


def _reap(child: multiprocessing.process.BaseProcess, grace_s: float) -> int | None:
    """Wait up to ``grace_s`` for the child to exit, then kill it; its exit code."""
    child.join(grace_s)
    if child.exitcode is None:
        child.kill()
        child.join()
    exitcode = child.exitcode
    child.close()
    return exitcode


def _forkserver() -> ForkServerContext:
    global _context
    with _context_lock:
        if _context is None:
            main = sys.modules["__main__"]
            spec = getattr(main, "__spec__", None)
            os.environ[_PARENT_MAIN_ENV] = json.dumps(
                {"file": getattr(main, "__file__", None), "spec": spec.name if spec else None}
            )
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            _context = context
        return _context


_WARM_UP_FILES = {
    "warm.html": b"<html><head><title>T</title></head><body><article><p>{text}</p></article></body></html>",
    "warm.txt": "Caf\u00e9 cr\u00e8me, {text}".encode(
        "latin-1"
    ),  # not UTF-8: encoding detection runs
    "warm.md": b"---\ntitle: T\n---\n{text}\n",
    "warm.csv": b"id,text\n1,{text}\n",
}


def _warm_up_readers() -> None:
    """In the fork server: run each reader once, so the first-use work of their libraries
    (trafilatura's and charset-normalizer's set-up, about 0.3 s each) is inherited by every
    child instead of repeated in it."""
    import tempfile

    sample = b"A short paragraph about harbours, ships and the cranes that unload them. " * 4
    with tempfile.TemporaryDirectory(prefix="rag-reader-warm-up-") as folder:
        for name, content in _WARM_UP_FILES.items():
            path = Path(folder) / name
            path.write_bytes(content.replace(b"{text}", sample))
            try:
                read_direct(path, ReaderOptions())
            except Exception:  # a warm-up only: the real read reports any problem
                logger.debug("reader warm-up of %s failed", name, exc_info=True)


def _in_fork_server() -> bool:
    main = sys.modules.get("__main__")
    return (
        bool(os.environ.get(_PARENT_MAIN_ENV))
        and "multiprocessing.forkserver" in sys.modules  # its `-c` command imported it
        and main is not None
        and not (getattr(main, "__file__", None) or getattr(main, "__spec__", None))
    )


def _pose_as_parent_main() -> None:
    """In the fork server: make its ``__main__`` look like the parent's.

    Every child multiprocessing starts re-runs the parent's main script or module
    (as ``__mp_main__``) unless the process it forks from already has that main;
    for ``rag serve`` that is importing the whole service, seconds per file.
    Preloading ``__main__`` is meant to avoid that but does not work on Python
    3.11 (the fork server is never given the main path). The children run only
    this module's ``_child``, which needs nothing from the parent's main, so the
    fork server's own ``__main__`` (a ``-c`` stub) is given the parent's file and
    module name, and the re-run is skipped."""
    main = sys.modules["__main__"]
    parent = json.loads(os.environ[_PARENT_MAIN_ENV])
    if parent.get("file"):
        main.__file__ = parent["file"]
    if parent.get("spec"):
        main.__spec__ = ModuleSpec(parent["spec"], None)


if _in_fork_server():
    _pose_as_parent_main()
    _warm_up_readers()


def warm_up() -> None:
    """Start the fork server now (in the background), so the first upload does not wait for it."""
    _forkserver()
    threading.Thread(
        target=multiprocessing.forkserver.ensure_running, name="reader-forkserver", daemon=True
    ).start()


def _limit_memory(extra_bytes: int) -> None:
    with open("/proc/self/statm") as statm:
        size_bytes = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = size_bytes + extra_bytes
    resource.setrlimit(
        resource.RLIMIT_AS, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
    )


def _child(sender: Connection, path: Path, options: ReaderOptions, memory_bytes: int) -> None:
    try:
        _limit_memory(memory_bytes)
        sender.send(_STARTED)
        sender.send(("ok", read_direct(path, options)))
    except DocumentReadError as exc:
        sender.send(("error", exc.path, exc.reason))
    except MemoryError:
        sender.send((
            "error", str(path), f"reading needed more than {memory_bytes / 2**20:,.0f} MB of memory and was "
            "stopped (limit: RAG_INDEXING__READER_MEMORY_MB)",
        ))  # fmt: skip
    except (OSError, ValueError, RecursionError) as exc:
        sender.send(("error", str(path), f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # a reader bug: reported with the file, never brings the service down
        sender.send(("error", str(path), f"the reader failed: {type(exc).__name__}: {exc}"))
    finally:
        sender.close()


def read_file(path: Path, options: ReaderOptions, budget: ReaderBudget | None) -> ReadResult:
    """In a child process with ``budget``, or here when there is none."""
    return read_isolated(path, options, budget) if budget else read_direct(path, options)


def budget_for(indexing: IndexingSettings, uploads: bool) -> ReaderBudget | None:
    """The budget that ``RAG_INDEXING__ISOLATE_READERS`` gives uploads (or the CLI), or None."""
    wanted = indexing.isolate_readers == "always" or (
        uploads and indexing.isolate_readers == "uploads"
    )
    return ReaderBudget.from_settings(indexing) if wanted else None
