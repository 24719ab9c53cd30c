"""Building graphs: names, edges, somatize, compile-time checks, plans and renderings."""

from __future__ import annotations

import re
import warnings

import pytest
from runtime_filters import Add, Center, Gather, Keyed, Mul, Pair

from soma import Branch, Filter, Graph, GraphError, GraphWarning, Loop, ParamError
from soma.plan import KEYED, POSITIONAL, SINGLE, VARIADIC, Cached, Execute, Parallel, Sequence


class HTTPLoader(Filter):
    def forward(self, x, state):
        return x


def test_auto_names_are_snake_case_and_deduplicated():
    g = Graph()
    assert g.node(Add()) == "add"
    assert g.node(Add()) == "add_2"
    assert g.node(Add()) == "add_3"
    assert g.node(HTTPLoader()) == "http_loader"
    assert g.node(Mul(), name="scale") == "scale"
    with pytest.raises(GraphError, match="already exists"):
        g.node(Mul(), name="scale")
    with pytest.raises(GraphError, match="no dots"):
        g.node(Mul(), name="a.b")
    with pytest.raises(GraphError, match="instance"):
        g.node(Add)  # type: ignore[arg-type]


def test_connect_validates_endpoints_and_duplicates():
    g = Graph()
    a, b = g.node(Add()), g.node(Mul())
    with pytest.raises(GraphError, match="unknown target node 'nope'"):
        g.connect(a, "nope")
    with pytest.raises(GraphError, match="feed itself"):
        g.connect(a, a)
    g.connect(a, b)
    with pytest.raises(GraphError, match="already connected"):
        g.connect(a, b)
    assert g.edges == [("add", "mul")]
    assert g.roots == ["add"] and g.leaves == ["mul"]


def test_somatize_fork_then_fan_in_in_fork_order():
    g = Graph.somatize(Add() >> (Mul() | Add(amount=5.0)) >> Pair())
    assert list(g.nodes) == ["add", "mul", "add_2", "pair"]
    assert g.edges == [("add", "mul"), ("add", "add_2"), ("mul", "pair"), ("add_2", "pair")]
    assert g.roots == ["add"] and g.leaves == ["pair"]
    assert g.forward(1.0) == (4.0, 7.0)  # mul first, then add_2: the fork's order


def test_fork_into_fork_is_a_cross_product_and_top_level_fork_has_several_roots():
    g = Graph.somatize((Add() | Mul()) >> (Gather() | Gather()))
    assert sorted(g.edges) == sorted(
        [("add", "gather"), ("add", "gather_2"), ("mul", "gather"), ("mul", "gather_2")]
    )
    assert g.roots == ["add", "mul"]
    assert g.forward(3.0) == {"gather": [4.0, 6.0], "gather_2": [4.0, 6.0]}


def test_cycle_is_reported_with_its_path():
    g = Graph()
    a, b, c = g.node(Add()), g.node(Add()), g.node(Add())
    g.connect(a, b)
    g.connect(b, c)
    g.connect(c, b)
    with pytest.raises(GraphError, match="cycle: add_2 -> add_3 -> add_2"):
        g.compile()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Add() >> Pair(), "takes 2 inputs but receives one"),
        (lambda: (Add() | Add() | Add()) >> Pair(), "takes 2 inputs but has 3 predecessors"),
        (lambda: Pair(), "receives one \\(the graph input\\)"),
    ],
)
def test_fan_in_size_must_match_forward_signature(build, message):
    with pytest.raises(GraphError, match=message):
        Graph.somatize(build())


def test_fan_in_modes_are_accepted():
    # The compiler picks how predecessor outputs reach forward; check the mode it chose and
    # what the node then receives.
    cases = [
        ((Add() | Mul()) >> Pair(), "pair", POSITIONAL, (4.0, 6.0)),  # exactly two
        (
            (Add() | Mul() | Add()) >> Keyed(),
            "keyed",
            KEYED,
            {"add": 4.0, "mul": 6.0, "add_2": 4.0},
        ),
        ((Add() | Mul() | Add()) >> Gather(), "gather", VARIADIC, [4.0, 6.0, 4.0]),  # *inputs
        (Add() >> Mul(), "mul", SINGLE, 8.0),
    ]
    for expr, sink, mode, output in cases:
        g = Graph.somatize(expr)
        assert g.compile().nodes[sink].mode == mode, sink
        assert g.forward(3.0) == output, sink


def test_precedence_pitfall_warns_and_explains():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = Graph.somatize(Add() | Mul() >> Mul())
    messages = [str(w.message) for w in caught if issubclass(w.category, GraphWarning)]
    assert len(messages) == 1
    assert "'add'" in messages[0] and "`A | B >> C` means `A | (B >> C)`" in messages[0]
    assert g.compile().warnings == messages
    # A deliberate top-level fork of single filters is not a mistake: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Graph.somatize(Add() | Mul())


def test_plan_is_series_parallel_without_level_barriers():
    # a -> b -> c and a -> d: c must not wait for d (the reference used level barriers).
    g = Graph()
    a, b, c, d = (g.node(Add(), name=n) for n in "abcd")
    g.connect(a, b)
    g.connect(b, c)
    g.connect(a, d)
    root = g.compile().root
    assert isinstance(root, Sequence) and isinstance(root.steps[0], Execute)
    parallel = root.steps[1]
    assert isinstance(parallel, Parallel)
    first = parallel.branches[0]
    assert isinstance(first, Sequence) and [s.node for s in first.steps] == ["b", "c"]
    assert str(g.compile()).splitlines() == [
        "Sequence:",
        "  Execute(a)",
        "  Parallel:",
        "    Sequence:",
        "      Execute(b)",
        "      Execute(c)",
        "    Execute(d)",
    ]


def test_non_series_parallel_graph_still_compiles_and_runs():
    # The "N" shape: a -> c, b -> c, b -> d.
    g = Graph()
    a, b = g.node(Add(), name="a"), g.node(Mul(), name="b")
    c, d = g.node(Gather(), name="c"), g.node(Add(amount=10.0), name="d")
    g.connect(a, c)
    g.connect(b, c)
    g.connect(b, d)
    assert g.forward(1.0) == {"c": [2.0, 2.0], "d": 12.0}


def test_cached_steps_appear_with_a_cache():
    from soma import Cache

    class NoCache(Filter):
        _soma_cacheable = False

        def forward(self, x, state):
            return x

    assert NoCache().params == {}  # the opt-out flag is not a hyperparameter
    g = Graph.somatize(Add() >> NoCache(), cache=Cache())
    root = g.compile().root
    assert isinstance(root.steps[0], Cached) and isinstance(root.steps[1], Execute)


def test_params_search_space_with_params_and_with_filter():
    g = Graph.somatize(Add(amount=3.0) >> Mul())
    assert g.params == {"add.amount": 3.0, "mul.factor": 2.0}
    assert set(g.search_space()) == {"add.amount", "mul.factor"}
    h = g.with_params({"mul.factor": 5.0})
    assert h.params["mul.factor"] == 5.0 and g.params["mul.factor"] == 2.0
    assert h.forward(1.0) == 20.0 and g.forward(1.0) == 8.0
    with pytest.raises(ParamError, match=r"'mul\.nope'"):
        g.with_params({"mul.nope": 1})
    with pytest.raises(ParamError, match=r"'zzz\.factor'"):
        g.with_params({"zzz.factor": 1})
    with pytest.raises(ParamError, match=r"Mul\.factor must be a float"):
        g.with_params({"mul.factor": 1000.0})
    k = g.with_filter("mul", Add(amount=100.0))
    assert k.forward(1.0) == 104.0
    with pytest.raises(GraphError, match="takes 2 inputs"):
        g.with_filter("mul", Pair())


def test_summary_text_dot():
    g = Graph.somatize(Center() >> (Add(amount=2.0) | Mul()) >> Gather())
    assert g.summary() == "Center >> (Add(amount=2.0) | Mul(factor=2.0)) >> Gather"
    text = g.to_text().splitlines()
    assert text[0] == "Graph (4 nodes, 4 edges)"
    assert text[-1] == "└── gather (Gather) ← add, mul"
    dot = g.to_dot()
    assert dot.startswith("digraph G {") and '"center" -> "add";' in dot and dot.endswith("}")


def test_mermaid_is_valid_and_ids_are_sanitized():
    g = Graph()
    odd = g.node(Add(), name="end")  # a Mermaid keyword as a name
    other = g.node(Mul(), name="my-node")
    g.connect(odd, other)
    text = g.to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    ids = re.findall(r"^\s+(\w+)\[", text, flags=re.M)
    assert ids == ["n0", "n1"]  # ids never come from user names
    assert "n0 --> n1" in text
    assert '"end<br/>Add(amount=1.0)"' in text


def test_branch_and_loop_render_and_compile():
    g = Graph.somatize(
        Add()
        >> Branch(lambda x: x > 0, then=Mul() >> Add(), otherwise=None)
        >> Loop(Mul(factor=3.0), until=lambda x: x > 50, max_iterations=5)
    )
    plan = str(g.compile())
    assert "Branch(branch):" in plan and "[then]:" in plan and "[otherwise]:" in plan
    assert "Loop(loop, max=5 until):" in plan and "Empty" in plan
    mermaid = g.to_mermaid()
    assert "subgraph" in mermaid and "-->|then|" in mermaid and "-.->|repeat|" in mermaid
    assert g.roots == ["add"] and g.leaves == ["loop"]
    assert "mul.factor" in g.params and "mul_2.factor" in g.params
    with pytest.raises(GraphError, match="different regions"):
        g.connect("add", "mul")


def test_regression_text_tree_closes_each_region_not_only_the_whole_graph():
    from soma import Branch

    class Same(Filter):
        def forward(self, x, state):
            return x

    g = Graph.somatize(Same() >> Branch(lambda x: x > 0, then=Same() >> Same()) >> Same())
    lines = g.to_text().splitlines()[1:]
    assert [line.strip()[:3] for line in lines] == ["├──", "├──", "├──", "└──", "└──"]
    assert lines[3].startswith("    └── same_3")  # the last node of the `then` arm


def test_regression_state_parameter_may_have_any_name():
    # forward(self, x, st) used to count `st` as a second input and fail to compile.
    class Shift(Filter):
        def fit(self, x, y=None):
            return 1.0

        def forward(self, x, st):
            return x + st

    assert Shift.input_arity() == 1
    assert Graph.somatize(Shift() >> Shift()).fit_forward(1.0) == 3.0


def test_regression_mermaid_labels_escape_quotes_html_and_entities():
    # A string param is shown in the node's label; a '"' would end the label early and
    # a '#quot;' in the value would be read by Mermaid as an entity.
    class Say(Filter):
        text = "x"

        def forward(self, x, state):
            return x

    g = Graph.somatize(Say(text='a "b" <i>c</i> & #quot; [d] | end'))
    node_line = g.to_mermaid().splitlines()[1]
    label = node_line.split('["', 1)[1].rsplit('"]', 1)[0]
    assert node_line.startswith('    n0["') and node_line.endswith('"]')
    assert '"' not in label and "<i>" not in label and "[d]" in label
    assert label.count("<br/>") == 1  # the separator between name and filter only
    assert "#35;quot;" in label and "#quot;b#quot;" in label and "#amp;" in label
