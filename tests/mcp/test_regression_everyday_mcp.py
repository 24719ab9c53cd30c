"""Issue 17, MCP items: a busy HTTP port, one file convention for filters, resources."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from mcp_helpers import REPO, server_env


def test_regression_http_on_a_busy_port_says_so_in_one_line(example_project: Path) -> None:
    # It printed "serving" and a token, then died with uvicorn's error and exit 3.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "soma.cli", "mcp", "--http", "--port", str(port),
             "--project", str(example_project), "--embedder", "hashing"],
            capture_output=True, text=True, timeout=60, cwd=REPO, env=server_env(),
        )  # fmt: skip
    assert proc.returncode == 1, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"127.0.0.1:{port} is already in use" in lines[0] and "--port" in lines[0]
    assert "token" not in proc.stderr.lower() and proc.stdout == ""


def test_regression_filter_files_one_convention(tmp_path: Path) -> None:
    # list_filters returned file "filters/models.py" and read_filter_source(file=...) refused
    # that same string.
    from mcp_helpers import make_project

    import soma_tools as T

    ctx = T.ToolContext(make_project(tmp_path / "digits"), embedder="hashing")
    try:
        listed = {f.name: f.file for f in T.list_filters(ctx, T.ListFiltersInput()).filters}
        assert listed["PCA"].startswith("filters/")
        by_listed = T.read_filter_source(ctx, T.ReadFilterSourceInput(file=listed["PCA"]))
        by_folder = T.read_filter_source(
            ctx, T.ReadFilterSourceInput(file=listed["PCA"].removeprefix("filters/"))
        )
        assert by_listed.source == by_folder.source and "class PCA" in by_listed.source
        written = T.write_filter_source(
            ctx, T.WriteFilterSourceInput(path="filters/extra.py", content="X = 1\n")
        )
        assert written.path == "extra.py" and (ctx.project.filters_dir / "extra.py").is_file()
    finally:
        ctx.close()


def test_regression_one_report_location(tmp_path: Path) -> None:
    # soma kb report wrote .soma/reports/<line>-report.md while generate_report and the
    # soma://reports/{line} resource used .soma/reports/<line>/, so the resource served a stale
    # report. Now every writer and reader goes through soma.knowledge.report_folder.
    import asyncio
    import os
    import time

    from mcp import Client
    from mcp_helpers import make_project
    from typer.testing import CliRunner

    import soma_tools as T
    from soma.cli import _register, app
    from soma_mcp.server import create_server

    project = make_project(tmp_path / "digits")
    ctx = T.ToolContext(project, embedder="hashing")
    try:
        line = T.create_research_line(
            ctx, T.CreateResearchLineInput(name="reports-line", description="One place.")
        ).line.name
        server = create_server(ctx)

        async def read() -> str:
            async with Client(server) as client:
                return (await client.read_resource(f"soma://reports/{line}")).contents[0].text

        tool = T.generate_report(ctx, T.GenerateReportInput(research_line=line))
        assert Path(tool.path).parent == project / ".soma" / "reports" / "reports-line"
        # Make the next write strictly newer even on a coarse file-system clock.
        old = time.time() - 60
        os.utime(tool.path, (old, old))
        _register()
        result = CliRunner().invoke(
            app, ["kb", "report", line, "--project", str(project), "--json"]
        )
        assert result.exit_code == 0, result.output
        made = json.loads(result.output)
        assert made["path"] == tool.path  # the same file, not a sibling
        Path(made["path"]).write_text("# newest\n", encoding="utf-8")
        assert asyncio.run(read()) == "# newest\n"
        # A flat report left by an older version wins only if it is newer.
        legacy = project / ".soma" / "reports" / "reports-line-report.md"
        legacy.write_text("# legacy\n", encoding="utf-8")
        os.utime(legacy, (old, old))
        assert asyncio.run(read()) == "# newest\n"
    finally:
        ctx.close()


def test_regression_promising_lines_descriptions_and_a_single_line(tmp_path: Path) -> None:
    # promising_lines returned empty descriptions and said the only line was "within reach
    # of the best comparable line" (itself).
    from mcp_helpers import make_project

    import soma_tools as T

    ctx = T.ToolContext(make_project(tmp_path / "digits"), embedder="hashing")
    try:
        T.create_research_line(
            ctx, T.CreateResearchLineInput(name="solo", description="Is PCA worth it?")
        )
        for c in (0.1, 1.0):
            T.run_pipeline(
                ctx,
                T.RunPipelineInput(spec=f"StandardScale() >> LogReg(C={c})", research_line="solo"),
            )
        (row,) = T.promising_lines(ctx, T.PromisingLinesInput()).lines
        assert row.name == "solo" and row.description == "Is PCA worth it?"
        assert "comparable line" not in " ".join(row.reasons)
        assert "the only line measuring" in row.reasons[0]
    finally:
        ctx.close()


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _studied_context(root: Path) -> object:
    """A digits project with a line of 6 SVC trials (two parameters: every view can be
    drawn), its study, and a report."""
    from mcp_helpers import make_project

    import soma_tools as T

    ctx = T.ToolContext(make_project(root), embedder="hashing")
    T.create_research_line(ctx, T.CreateResearchLineInput(name="svm", description="SVC on digits"))
    T.run_study(
        ctx,
        T.RunStudyInput(
            spec="MinMaxScale() >> SVC()", n_trials=6, seed=0, name="svc", research_line="svm"
        ),
    )
    T.generate_report(ctx, T.GenerateReportInput(research_line="svm"))
    return ctx


def test_regression_plots_reach_mcp_clients_as_resources(tmp_path: Path) -> None:
    # Issue 17, item 9: parameter importances, parallel coordinates, slice, contour and
    # history of lines and studies, as PNG resources; the server keeps its 13 tools.
    import asyncio
    import base64

    from mcp import Client, MCPError

    from soma_mcp.server import create_server

    ctx = _studied_context(tmp_path / "digits")
    server = create_server(ctx)  # type: ignore[arg-type]

    async def read(uri: str) -> tuple[str, bytes | str]:
        async with Client(server) as client:
            try:
                content = (await client.read_resource(uri)).contents[0]
            except MCPError as exc:
                return "error", str(exc)
            if hasattr(content, "blob"):
                return content.mime_type or "", base64.b64decode(content.blob)
            return content.mime_type or "", content.text

    async def n_tools() -> int:
        async with Client(server) as client:
            return len((await client.list_tools()).tools)

    try:
        for kind in ("trajectory", "history", "importances", "parallel", "slice", "contour"):
            mime, png = asyncio.run(read(f"soma://lines/svm/plots/{kind}"))
            assert mime == "image/png" and png[:8] == PNG_MAGIC, (kind, png)
        for kind in ("history", "importances", "parallel", "slice", "contour"):
            mime, png = asyncio.run(read(f"soma://studies/svc/plots/{kind}"))
            assert mime == "image/png" and png[:8] == PNG_MAGIC, (kind, png)
        kind, text = asyncio.run(read("soma://lines/svm/plots/pie"))
        assert kind == "error" and "unknown plot 'pie'" in str(text) and "contour" in str(text)
        kind, text = asyncio.run(read("soma://studies/nope/plots/history"))
        assert kind == "error" and "no study named 'nope'" in str(text)
        mime, listing = asyncio.run(read("soma://studies"))
        (row,) = json.loads(listing)
        assert row["name"] == "svc" and row["n_trials"] == 6
        assert asyncio.run(n_tools()) == 13
    finally:
        ctx.close()  # type: ignore[attr-defined]


def test_regression_resources_list_names_lines_reports_and_experiments(tmp_path: Path) -> None:
    # Issue 17, item 16: resources/list listed two resources (templates never show there),
    # so clients that browse resources could attach no line, report or experiment.
    import asyncio

    from mcp import Client

    from soma_mcp.server import create_server

    ctx = _studied_context(tmp_path / "digits")
    server = create_server(ctx)  # type: ignore[arg-type]

    async def listed() -> dict[str, str]:
        async with Client(server) as client:
            resources = (await client.list_resources()).resources
            for r in resources:  # every listed resource can be read
                assert (await client.read_resource(r.uri)).contents, r.uri
            return {str(r.uri): r.mime_type or "" for r in resources}

    try:
        uris = asyncio.run(listed())
        newest = ctx.kb.experiments(order="-started", limit=20)  # type: ignore[attr-defined]
        assert uris["soma://lines"] == "application/json"  # the fixed ones stay
        assert uris["soma://lines/svm"] == "application/json"
        assert uris["soma://lines/svm/plots/trajectory"] == "image/png"
        assert uris["soma://reports/svm"] == "text/markdown"
        assert uris["soma://studies/svc/plots/history"] == "image/png"
        assert {f"soma://experiments/{e.id}" for e in newest} <= set(uris)
    finally:
        ctx.close()  # type: ignore[attr-defined]


def test_regression_server_warms_the_embedder_at_start(tmp_path: Path, monkeypatch: object) -> None:
    # Issue 17, item 16: the first semantic query after start loaded the model (15 s). The
    # server now loads it (and catches the index up) on a thread as it starts serving.
    import threading

    import numpy as np

    import soma_mcp.server as S
    import soma_tools as T
    from soma_mcp._warmup import warm_up

    class Recording:
        name, dim = "recording", 8

        def __init__(self) -> None:
            self.threads: list[str] = []

        def embed(self, texts: list[str]) -> np.ndarray:
            self.threads.append(threading.current_thread().name)
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            out[:, 0] = 1.0
            return out

    from mcp_helpers import make_project

    embedder = Recording()
    ctx = T.ToolContext(make_project(tmp_path / "digits"), embedder=embedder)
    try:
        warm_up(ctx).join(timeout=60)
        assert embedder.threads == ["soma-mcp-warm-up"]
    finally:
        ctx.close()
    # serve_stdio and serve_http start it before serving.
    started: list[object] = []
    monkeypatch.setattr(S, "warm_up", started.append)  # type: ignore[attr-defined]
    monkeypatch.setattr(S.SomaServer, "run", lambda self, transport: None)  # type: ignore[attr-defined]
    ctx = T.ToolContext(tmp_path / "digits", embedder="hashing")
    S.serve_stdio(ctx)
    assert started == [ctx]
