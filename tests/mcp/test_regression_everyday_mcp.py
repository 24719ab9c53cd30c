"""Issue 17, MCP items: a busy HTTP port, one file convention for filters, resources."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from conftest import REPO, server_env


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
    from conftest import make_project

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

    from conftest import make_project
    from mcp import Client
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
    from conftest import make_project

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
