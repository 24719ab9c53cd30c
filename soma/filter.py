"""The Filter base class: one step of a pipeline, with explicit state.

A filter learns in ``fit(x, y=None) -> state`` and applies what it learned in
``forward(x, state) -> output``. The state is returned, never stored on ``self``, so the
runtime can cache it, ship it to another machine or copy it between PBT members. A filter
that does not override ``fit`` is stateless (its state is ``None``).

Hyperparameters are class attributes: plain values (``epochs = 10``) or search-space
declarations (``alpha = search(1e-3, 1e3, log=True, default=1.0)``). Instances take them
as keyword arguments and validate them:

>>> from soma import Filter, search
>>> class Scale(Filter):
...     factor = search(0.1, 10.0, default=2.0)
...     def forward(self, x, state):
...         return x * self.factor
>>> Scale(factor=3.0).forward(2.0, None)
6.0
>>> Scale(factr=3.0)
Traceback (most recent call last):
...
soma.errors.ParamError: Scale: unknown parameter 'factr' (known: factor)

A filter must not edit its input in place (``x -= mean``): the same object is a cached
result of the node upstream and the input of its other successors. Return a new value.

Several inputs (fan-in) arrive as plain values: a ``forward(self, left, right, state)``
receives one value per declared input in the order the predecessors were connected; a
``forward(self, x, state)`` behind several predecessors receives a dict keyed by
predecessor node name.
"""

from __future__ import annotations

import copy
import inspect
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from soma.errors import ParamError
from soma.space import Choice, FloatRange, IntRange, SearchSpace

if TYPE_CHECKING:
    from soma._expr import Chain, Fork

__all__ = ["Filter"]

_PLAIN_PARAM_TYPES = (type(None), bool, int, float, str, tuple, list, dict, frozenset)


def _is_param_value(value: Any) -> bool:
    return isinstance(value, (SearchSpace, *_PLAIN_PARAM_TYPES))


class Filter:
    """Base class of every pipeline step. Override ``forward`` and, if it learns, ``fit``."""

    #: name -> declared default or SearchSpace, collected over the class hierarchy.
    _param_decls: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        decls: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if klass is object or klass is Filter:
                continue
            for name, value in vars(klass).items():
                if name.startswith("_"):
                    continue
                if _is_param_value(value):
                    decls[name] = value
                else:
                    decls.pop(name, None)  # a subclass turned it into a method or property
        cls._param_decls = decls

    def __init__(self, *args: Any, **params: Any) -> None:
        cls_name = type(self).__name__
        decls = type(self)._param_decls
        if args:
            # Python's own "takes 1 positional argument" names neither the filter's
            # parameters nor how to pass them.
            known = ", ".join(sorted(decls)) or "none"
            raise ParamError(
                f"{cls_name}: parameters are keyword arguments, got {len(args)} positional "
                f"value(s) {args!r} (parameters: {known})"
            )
        for name in params:
            if name not in decls:
                known = ", ".join(sorted(decls)) or "none"
                same = [d for d in decls if d.lower() == name.lower()]  # 'c' for 'C'
                hint = f"; did you mean {same[0]!r}?" if same else ""
                raise ParamError(f"{cls_name}: unknown parameter {name!r}{hint} (known: {known})")
        values: dict[str, Any] = {}
        for name, decl in decls.items():
            if name in params:
                values[name] = _check_param(cls_name, name, decl, params[name])
            elif isinstance(decl, SearchSpace):
                values[name] = decl.default
            else:
                values[name] = copy.deepcopy(decl)
        self._params = values
        for name, value in values.items():
            object.__setattr__(self, name, value)

    # -- hyperparameters -------------------------------------------------------------

    @property
    def params(self) -> dict[str, Any]:
        """The instance's hyperparameter values, by name (a copy)."""
        return dict(self._params)

    @classmethod
    def search_space(cls) -> dict[str, SearchSpace]:
        """The declared search spaces, by parameter name."""
        return {n: d for n, d in cls._param_decls.items() if isinstance(d, SearchSpace)}

    @classmethod
    def param_declarations(cls) -> dict[str, Any]:
        """Every hyperparameter: its SearchSpace, or its plain default value."""
        return dict(cls._param_decls)

    def with_params(self, **changes: Any) -> Filter:
        """A new instance of the same class with some parameters changed (validated)."""
        return type(self)(**{**self._params, **changes})

    def __setattr__(self, name: str, value: Any) -> None:
        # Parameters are part of the cache key; changing one in place would make a cached
        # result stale without anyone noticing. Use with_params() instead.
        if name in type(self)._param_decls and hasattr(self, "_params"):
            raise AttributeError(
                f"{type(self).__name__}.{name} is a hyperparameter; use with_params({name}=...)"
            )
        object.__setattr__(self, name, value)

    # -- learning and applying --------------------------------------------------------

    def fit(self, x: Any, y: Any = None) -> Any:
        """Learn from ``x`` (and labels ``y``) and return the state ``forward`` needs."""
        return None

    def forward(self, x: Any, state: Any) -> Any:
        """Apply the filter to ``x`` using the state ``fit`` returned."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x, state)")

    @classmethod
    def is_stateless(cls) -> bool:
        """True when the class does not override ``fit``."""
        return cls.fit is Filter.fit

    @classmethod
    def input_arity(cls) -> int | None:
        """How many inputs ``forward`` declares before ``state``; None for ``*inputs``."""
        return _input_arity(cls.forward)

    # -- composition ------------------------------------------------------------------

    def __rshift__(self, other: Any) -> Chain:
        from soma._expr import chain

        return chain(self, other)

    def __rrshift__(self, other: Any) -> Chain:
        from soma._expr import chain

        return chain(other, self)

    def __or__(self, other: Any) -> Fork:
        from soma._expr import fork

        return fork(self, other)

    def __ror__(self, other: Any) -> Fork:
        from soma._expr import fork

        return fork(other, self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"


@cache
def _input_arity(forward: Any) -> int | None:
    params = list(inspect.signature(forward).parameters.values())[1:]  # drop self
    count = 0
    named_state = False
    for p in params:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if p.name == "state" or p.kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            named_state = p.name == "state"
            break
        count += 1
    # The runtime passes the state positionally after the inputs, so in
    # ``forward(self, x, st)`` the last positional parameter is the state whatever its name.
    return count if named_state or count == 0 else count - 1


def _check_param(cls_name: str, name: str, decl: Any, value: Any) -> Any:
    where = f"{cls_name}.{name}"
    if isinstance(decl, FloatRange):
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not decl.contains(value):
            raise ParamError(f"{where} must be a {decl.describe()}, got {value!r}")
        return value
    if isinstance(decl, IntRange | Choice):
        if not decl.contains(value):
            expected = decl.describe() if isinstance(decl, Choice) else f"an {decl.describe()}"
            raise ParamError(f"{where} must be {expected}, got {value!r}")
        return value
    if decl is None or value is None:
        return value
    expected_type: type = type(decl)
    if expected_type is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not expected_type and not (
        expected_type in (tuple, list) and isinstance(value, tuple | list)
    ):
        raise ParamError(
            f"{where} must be a {expected_type.__name__} like its default {decl!r}, "
            f"got {type(value).__name__} {value!r}"
        )
    return value
