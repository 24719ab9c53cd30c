"""A research project on disk: ``soma.toml``, a filters folder, a data loader, ``.soma/``."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from soma.errors import ProjectError
from soma.project._config import CONFIG_FILE, ProjectConfig, parse_config, parse_ref
from soma.project._config import project_relative as _inside
from soma.project._data import Splits, coerce_splits, with_fingerprint
from soma.project._discover import FilterCatalog, discover_filters
from soma.project._imports import relative_path
from soma.project._metrics import MetricSpec, load_function, resolve_metric
from soma.project._spec import Expr, parse_spec

__all__ = ["Project", "load_project"]


class Project:
    """A loaded, validated research project. Build one with :func:`load_project`."""

    def __init__(self, root: Path, config: ProjectConfig) -> None:
        self.root = root
        self.config = config
        self.filters_dir = _inside(root, config.filters, "filters")
        from soma.data.project import is_data_url

        # data = "zarr:///...#prefix": the splits live in a data store, there is no data file
        self.data_url = config.data if is_data_url(config.data) else None
        self.data_path: Path | None = None
        if self.data_url is None:
            data_file, self.data_function = parse_ref(config.data, "data")
            self.data_path = _inside(root, data_file, "data")
        paths = config.paths
        self.kb_path = _inside(root, paths.kb, "[paths] kb", allow_root=False)
        self.cache_dir = _inside(root, paths.cache, "[paths] cache", allow_root=False)
        self.optuna_path = _inside(root, paths.optuna, "[paths] optuna", allow_root=False)
        self.kb_backend = config.kb.backend  # [kb] backend: the vector index beside kb_path
        #: Files of the filters folder not to import here (see discover_filters' guard).
        self.import_guard: Any = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def state_dir(self) -> Path:
        """``.soma/`` at the project root (runs, backups and default state live here)."""
        return self.root / ".soma"

    @property
    def optuna_url(self) -> str:
        """The optuna RDB storage URL for ``optuna_path``."""
        return f"sqlite:///{self.optuna_path}"

    # -- metrics -----------------------------------------------------------------------

    @functools.cached_property
    def metrics(self) -> list[MetricSpec]:
        """Every metric of ``soma.toml``, primary first."""
        return [resolve_metric(m, self.root, i) for i, m in enumerate(self.config.metric)]

    @property
    def metric(self) -> MetricSpec:
        """The primary metric (the first one): what studies and the agent optimise."""
        return self.metrics[0]

    def score(self, y_true: Any, y_pred: Any) -> dict[str, float]:
        """Every metric on one prediction, by name (primary first)."""
        return {m.name: float(m.fn(y_true, y_pred)) for m in self.metrics}

    # -- filters and specs ---------------------------------------------------------------

    def discover_filters(self, *, refresh: bool = False) -> FilterCatalog:
        """The filters folder's catalog; re-imported only when a file changed (or refresh)."""
        return discover_filters(
            self.filters_dir, self.root, refresh=refresh, guard=self.import_guard
        )

    def parse_spec(self, spec: str | Mapping[str, Any] | list[Any]) -> Expr:
        """:func:`parse_spec` against this project's filters."""
        return parse_spec(spec, self.discover_filters())

    # -- data ----------------------------------------------------------------------------

    def load_data(self) -> Splits:
        """Import the data file afresh, call its loader, validate and fingerprint the splits."""
        from soma.data.project import load_splits, resolve_with_fingerprint

        source = f"{self.config.data}"
        if self.data_url is not None:
            value: Any = load_splits(self.data_url)
        else:
            assert self.data_path is not None
            fn = load_function(self.data_path, self.data_function, self.root, "data")
            try:
                value = fn()
            except Exception as exc:
                raise ProjectError(f"{source} raised {type(exc).__name__}: {exc}") from exc
        # DataRefs (from a store URL or the loader) are fingerprinted by their content
        # hashes, without reading the data again, then resolved.
        try:
            value, ref_fingerprint = resolve_with_fingerprint(value)
        except Exception as exc:
            raise ProjectError(f"{source}: cannot read the referenced data: {exc}") from exc
        # Without refs the splits hash their content on first use (data_fingerprint).
        return with_fingerprint(coerce_splits(value, source), ref_fingerprint)

    def __repr__(self) -> str:
        return f"Project({self.name!r}, root={str(self.root)!r})"


def load_project(directory: str | Path = ".") -> Project:
    """Read and validate ``DIR/soma.toml``; ProjectError naming the bad key or missing file.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "soma.toml").write_text('[metric]\\nname = "accuracy"\\n', encoding="utf-8")
    >>> try:
    ...     load_project(d)
    ... except ProjectError as exc:
    ...     print(str(exc).split(" in ")[0])
    soma.toml: data: file 'data.py' not found
    """
    root = Path(directory).expanduser().resolve()
    config_path = root / CONFIG_FILE
    if not root.is_dir():
        raise ProjectError(f"project folder {str(root)!r} does not exist")
    if not config_path.is_file():
        raise ProjectError(
            f"no {CONFIG_FILE} in {root}; create a project with `soma init {directory}`"
        )
    try:
        text = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{CONFIG_FILE}: cannot be read: {exc}") from None
    config = parse_config(text, default_name=root.name)
    project = Project(root, config)
    if project.data_path is not None and not project.data_path.is_file():
        rel = relative_path(project.data_path, root)
        raise ProjectError(f"{CONFIG_FILE}: data: file {rel!r} not found in {root}")
    if not project.filters_dir.is_dir():
        raise ProjectError(f"{CONFIG_FILE}: filters: folder {config.filters!r} not found in {root}")
    project.metrics  # noqa: B018 - validate metric names (and import custom ones) now
    return project
