"""Embedding off the hot path: a thread that embeds what was recorded without a vector.

A writer on a hot path (the agent's loop) records experiments without embedding them and
wakes this worker; it loads the model once, then embeds the backlog in batches and writes the
vectors to SQLite. Meanwhile semantic queries do not wait: they search what already has a
vector (``SemanticIndex.wait_for_vectors`` is off) and the knowledge base says how many
records are not searchable yet. If embedding fails, the worker stops and queries embed for
themselves again, so the error surfaces there instead of records silently missing.
"""

from __future__ import annotations

import threading

from soma.knowledge._search import SemanticIndex

__all__ = ["EmbeddingWorker"]


class EmbeddingWorker:
    """One background thread embedding a knowledge base's backlog, woken after each record."""

    def __init__(self, semantic: SemanticIndex) -> None:
        self._semantic = semantic
        self._cond = threading.Condition()
        self._requested = 0  # wake-ups asked for
        self._served = 0  # wake-ups whose backlog has been embedded
        self._stopping = False
        self.error: Exception | None = None
        self.ready = threading.Event()  # set once the model is loaded
        self._thread = threading.Thread(target=self._run, name="soma-embedding-worker", daemon=True)

    def start(self) -> None:
        self._semantic.wait_for_vectors = False
        self._thread.start()
        self.wake()  # rows recorded before the worker started

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self) -> None:
        with self._cond:
            self._requested += 1
            self._cond.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything recorded before this call has a vector; False on timeout
        or if the worker stopped (see :attr:`error`)."""
        self.wake()
        with self._cond:
            target = self._requested
            return (
                self._cond.wait_for(
                    lambda: self._served >= target or not self._thread.is_alive(), timeout
                )
                and self._served >= target
            )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the batch in progress (what is left is embedded by the next query)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        # Wait for a batch in progress (its vectors are written), not for a model still
        # loading: a short run would otherwise end seconds late; the thread then just exits.
        loading = not self.ready.is_set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(0 if loading else timeout)
        self._semantic.wait_for_vectors = True

    def _run(self) -> None:
        try:
            self._semantic.embed(["warm-up"])  # load the model now, not at the first query
            self.ready.set()
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping or self._requested > self._served)
                    if self._stopping:
                        return
                    target = self._requested
                self._semantic.embed_missing(should_stop=lambda: self._stopping)
                with self._cond:
                    self._served = max(self._served, target)
                    self._cond.notify_all()
        except Exception as exc:  # kept for the caller; queries raise it again themselves
            self.error = exc
            # Queries embed for themselves again: the failure shows there, nothing is lost.
            self._semantic.wait_for_vectors = True
            self.ready.set()  # queries go back to embedding for themselves
            with self._cond:
                self._cond.notify_all()
