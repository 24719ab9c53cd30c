"""Pipeline specs: both forms, canonical round trips, and every rejection."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma import Chain, Filter, Fork, ProjectError, search
from soma.project import parse_spec, spec_to_json, spec_to_string


class Scale(Filter):
    factor = search(0.1, 10.0, default=1.0)

    def forward(self, x, state):
        return x * self.factor


class PCA(Filter):
    n_components = search(1, 64, default=8)
    whiten = search(choices=[False, True])

    def forward(self, x, state):
        return x


class LogReg(Filter):
    C = search(1e-3, 1e3, log=True, default=1.0)
    solver = "lbfgs"
    classes = (0, 1)
    extra = None

    def forward(self, x, state):
        return x


class Join(Filter):
    def forward(self, *inputs, state=None):
        return inputs


CATALOG = {"Scale": Scale, "PCA": PCA, "LogReg": LogReg, "Join": Join}


def shape(expr):
    """A comparable structure: ('chain', [...]) / ('fork', [...]) / (name, params)."""
    if isinstance(expr, Chain):
        return ("chain", [shape(s) for s in expr.steps])
    if isinstance(expr, Fork):
        return ("fork", [shape(b) for b in expr.branches])
    return (type(expr).__name__, expr.params)


def test_expression_chain_with_literal_params():
    expr = parse_spec(
        "Scale() >> PCA(n_components=16, whiten=True) >> LogReg(C=0.5, solver='saga')", CATALOG
    )
    assert isinstance(expr, Chain)
    assert [type(s).__name__ for s in expr.steps] == ["Scale", "PCA", "LogReg"]
    assert expr.steps[1].params == {"n_components": 16, "whiten": True}
    assert expr.steps[2].params == {"C": 0.5, "solver": "saga", "classes": (0, 1), "extra": None}


def test_expression_fork_parentheses_and_bare_names():
    expr = parse_spec("Scale >> (PCA(n_components=2) | Scale(factor=2)) >> Join", CATALOG)
    assert shape(expr) == (
        "chain",
        [
            ("Scale", {"factor": 1.0}),
            (
                "fork",
                [("PCA", {"n_components": 2, "whiten": False}), ("Scale", {"factor": 2.0})],
            ),
            ("Join", {}),
        ],
    )


def test_precedence_follows_python():
    expr = parse_spec("Scale() | PCA() >> LogReg()", CATALOG)
    assert isinstance(expr, Fork)
    assert isinstance(expr.branches[1], Chain)


def test_literal_values_of_every_kind():
    expr = parse_spec("LogReg(C=1e-2, classes=(1, -2), extra={'a': [1, 2.5, None]})", CATALOG)
    assert expr.params["C"] == 0.01
    assert expr.params["classes"] == (1, -2)
    assert expr.params["extra"] == {"a": [1, 2.5, None]}


def test_json_forms():
    spec = {
        "chain": [
            "Scale",
            {"fork": [{"filter": "PCA", "params": {"n_components": 3}}, "Scale(factor=3.0)"]},
            {"filter": "Join"},
        ]
    }
    expr = parse_spec(spec, CATALOG)
    same = parse_spec("Scale() >> (PCA(n_components=3) | Scale(factor=3.0)) >> Join()", CATALOG)
    assert shape(expr) == shape(same)
    assert shape(parse_spec(json.dumps(spec), CATALOG)) == shape(same)  # JSON text works too
    assert shape(parse_spec(["Scale", "LogReg"], CATALOG)) == shape(
        parse_spec("Scale() >> LogReg()", CATALOG)
    )
    single = parse_spec({"chain": [{"filter": "PCA"}]}, CATALOG)
    assert isinstance(single, PCA)  # a one-step chain is just that step


def test_catalog_may_be_a_filter_catalog_or_infos(digits_root):
    from soma.project import load_project

    project = load_project(digits_root)
    expr = project.parse_spec("StandardScale() >> LogReg(C=2.0)")
    assert spec_to_string(expr) == "StandardScale() >> LogReg(C=2.0)"
    catalog = project.discover_filters()
    assert spec_to_string(parse_spec("KNN", catalog.filters)) == "KNN()"


def test_canonical_string_omits_defaults_unless_asked():
    expr = parse_spec("Scale(factor=1.0) >> PCA(n_components=4)", CATALOG)
    assert spec_to_string(expr) == "Scale() >> PCA(n_components=4)"
    assert spec_to_string(expr, include_defaults=True) == (
        "Scale(factor=1.0) >> PCA(n_components=4, whiten=False)"
    )
    fork_in_chain = parse_spec("Scale >> (PCA | Scale >> LogReg) >> Join", CATALOG)
    assert spec_to_string(fork_in_chain) == "Scale() >> (PCA() | (Scale() >> LogReg())) >> Join()"
    assert spec_to_json(parse_spec("PCA(whiten=True)", CATALOG)) == {
        "filter": "PCA",
        "params": {"whiten": True},
    }
    odd = LogReg(classes=(7,), extra={"k": (1, 2)})
    assert spec_to_string(odd) == "LogReg(classes=(7,), extra={'k': (1, 2)})"
    assert shape(parse_spec(spec_to_string(odd), CATALOG)) == shape(odd)


def test_spec_to_string_refuses_values_without_a_literal():
    with pytest.raises(ProjectError, match="NaN has no literal form"):
        spec_to_string(LogReg(extra=float("nan")))
    assert spec_to_string(LogReg(extra=float("inf"))) == "LogReg(extra=1e999)"
    with pytest.raises(ProjectError, match="has no JSON form"):
        spec_to_json(LogReg(extra=float("inf")))
    with pytest.raises(ProjectError, match="expected a Filter, Chain or Fork"):
        spec_to_string("Scale()")  # type: ignore[arg-type]


# -- round trips over random pipelines ---------------------------------------------------

leaf = st.one_of(
    st.builds(Scale, factor=st.floats(0.1, 10.0)),
    st.builds(PCA, n_components=st.integers(1, 64), whiten=st.booleans()),
    st.builds(LogReg, C=st.floats(1e-3, 1e3), solver=st.sampled_from(["lbfgs", 'it\'s "q"'])),
    st.just(Join()),
)
exprs = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: _fold(xs, ">>")),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: _fold(xs, "|")),
    ),
    max_leaves=8,
)


def _fold(items, op):
    out = items[0]
    for item in items[1:]:
        out = (out >> item) if op == ">>" else (out | item)
    return out


@settings(max_examples=150, deadline=None)
@given(exprs, st.booleans())
def test_string_and_json_forms_round_trip(expr, include_defaults):
    text = spec_to_string(expr, include_defaults=include_defaults)
    assert shape(parse_spec(text, CATALOG)) == shape(expr)
    assert spec_to_string(parse_spec(text, CATALOG), include_defaults=include_defaults) == text
    as_json = json.loads(json.dumps(spec_to_json(expr, include_defaults=include_defaults)))
    assert shape(parse_spec(as_json, CATALOG)) == shape(expr)


# -- rejections --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("os.system('x')", "'os.system' at column 1: attribute access is not allowed"),
        ("Scale().fit", "attribute access is not allowed"),
        ("__import__('os')", "unknown filter '__import__'"),
        ("Scal() >> LogReg()", "unknown filter 'Scal' (did you mean 'Scale'?)"),
        ("PCA(16)", "'16' at column 5: positional arguments are not allowed"),
        ("PCA(*xs)", "positional arguments are not allowed"),
        ("PCA(**{'n_components': 3})", "** unpacking is not allowed"),
        ("PCA(n_components=k)", "the value of 'n_components' must be a literal"),
        ("PCA(n_components=2+2)", "the value of 'n_components' must be a literal"),
        ("PCA(n_components=len('ab'))", "must be a literal"),
        ("(lambda: PCA())()", "only a filter name can be called"),
        ("lambda: PCA()", "a lambda is not allowed"),
        ("Scale()[0]", "subscripting is not allowed"),
        ("Scale() + PCA()", "operator not allowed: only >> and |"),
        ("Scale() & PCA()", "operator not allowed"),
        ("Scale() >> 3", "'3' at column 12: a bare value is not allowed"),
        ("Scale() if True else PCA()", "a conditional expression is not allowed"),
        ("(x := Scale())", "an assignment expression is not allowed"),
        ("Scale() < PCA()", "a comparison is not allowed"),
        ("(Scale(), PCA())", "a literal collection is not allowed"),
        ("[Scale(), PCA()]", "invalid JSON"),
        ("Scale()()", "only a filter name can be called"),
        ("Scale.__class__.__bases__", "attribute access is not allowed"),
        ("PCA(n_components=1000)", "PCA.n_components must be an int in [1, 64], got 1000"),
        ("PCA(n_compnents=3)", "PCA: unknown parameter 'n_compnents'"),
        ("Scale(", "invalid syntax at column"),
        ("import os", "invalid syntax"),
        ("   ", "empty"),
        ("", "empty"),
    ],
)
def test_expression_rejections(spec, message):
    with pytest.raises(ProjectError) as info:
        parse_spec(spec, CATALOG)
    assert str(info.value).startswith("pipeline spec: ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"chain": []}, "$.chain: an empty chain has nothing to run"),
        ({"fork": "Scale"}, "$.fork: expected a list of steps"),
        ({"chain": ["Scale"], "fork": ["PCA"]}, "exactly one of 'chain', 'fork', 'filter'"),
        ({}, "found no keys"),
        ({"filter": "PCA", "param": {}}, "unknown key(s) 'param' next to 'filter'"),
        ({"chain": ["Scale"], "params": {}}, "unknown key(s) 'params' next to 'chain'"),
        ({"filter": 3}, "$.filter: expected a filter name string"),
        ({"filter": "PCA", "params": [1]}, "$.params: expected an object of parameter values"),
        (
            {"chain": ["Scale", {"filter": "PCA", "params": {"n_components": "x"}}]},
            "$.chain[1]: PCA.n_components must be an int",
        ),
        ({"chain": ["Scale", 3]}, "$.chain[1]: expected a filter name, a list, or an object"),
        ({"chain": ["Scale", "os.system('x')"]}, "$.chain[1]: 'os.system'"),
        ({"filter": "Nope"}, "$: unknown filter 'Nope'"),
        ("{not json", "invalid JSON"),
    ],
)
def test_json_rejections(spec, message):
    with pytest.raises(ProjectError) as info:
        parse_spec(spec, CATALOG)
    assert message in str(info.value)


def test_other_rejections():
    with pytest.raises(ProjectError, match="expected an expression string or a JSON object"):
        parse_spec(42, CATALOG)  # type: ignore[arg-type]
    with pytest.raises(ProjectError, match="longer than 20000 characters"):
        parse_spec(" >> ".join(["Scale()"] * 3000), CATALOG)
    with pytest.raises(ProjectError, match="catalog entry 'bad' is not a Filter class"):
        parse_spec("Scale()", {"bad": object})
    with pytest.raises(ProjectError, match="catalog must be"):
        parse_spec("Scale()", ["Scale"])
    deep = "(" * 5000 + "Scale()" + ")" * 5000
    with pytest.raises(ProjectError):
        parse_spec(deep, CATALOG)


def test_nothing_is_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    attempts = [
        f"__import__('pathlib').Path({str(marker)!r}).touch()",
        f"Scale(factor=__import__('pathlib').Path({str(marker)!r}).touch())",
        f"Scale(factor=[open({str(marker)!r}, 'w')])",
    ]
    for attempt in attempts:
        with pytest.raises(ProjectError):
            parse_spec(attempt, CATALOG)
    assert not marker.exists()


def test_control_steps_have_no_spec_form():
    from soma import Branch

    step = Scale() >> Branch(lambda x: x > 0, then=PCA(), otherwise=LogReg())
    with pytest.raises(ProjectError, match="Branch steps hold Python callables"):
        spec_to_string(step)
    with pytest.raises(ProjectError, match="Branch steps hold Python callables"):
        spec_to_json(step)
