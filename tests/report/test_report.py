"""The report: self-contained HTML with the wall display's panels, rendered by headless Chromium."""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pipeline.report import write_report
from pipeline.report.dashboards import find_dashboard
from pipeline.report.html import COL_PX, ROW_PX

ROOT = Path(__file__).resolve().parents[2]
BG = {(0x11, 0x12, 0x17), (0x18, 0x1B, 0x1F)}  # page and panel backgrounds
WIDTH, HEIGHT = 1600, 1800


@pytest.fixture(scope="module")
def report(client, tmp_path_factory) -> Path:
    return write_report(client, tmp_path_factory.mktemp("report") / "wall.html")


def test_report_is_one_self_contained_file_with_every_wall_panel(report):
    html = report.read_text()
    wall = find_dashboard("tronrisk-wall")
    for p in wall.panels:
        assert f'data-panel-id="{p.id}"' in html, p.title
    assert html.count("<svg") == sum(p.type in ("timeseries", "piechart", "bargauge", "barchart") for p in wall.panels)
    assert "No data" not in html and 'class="err"' not in html
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert html.replace('xmlns="http://www.w3.org/2000/svg"', "").count("http") == 0  # no network at all
    assert "USDT" in html and "critical" in html


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("headless Chromium is required: apt-get update && apt-get install -y chromium")
    return exe


def screenshot(html: Path, png: Path, profile: Path) -> Image.Image:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}",
           "--hide-scrollbars", html.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]
    return Image.open(png).convert("RGB")


def _panel_box(grid, width: int = WIDTH, header: int = 62):
    """Where a panel lands in the screenshot: the report's CSS grid (24 columns, 8 px gaps, 20 px padding)."""
    x, y, w, h = grid
    col = (width - 40 - 23 * 8) / 24
    left, top = 20 + x * (col + 8), header + 12 + y * (ROW_PX + 8)
    right, bottom = left + w * col + (w - 1) * 8, top + h * ROW_PX + (h - 1) * 8
    # the body, away from the title and the edges
    return int(left + 0.1 * (right - left)), int(top + 40), int(right - 0.1 * (right - left)), int(bottom - 10)


def test_headless_chromium_draws_the_charts(report, tmp_path):
    img = screenshot(report, tmp_path / "wall.png", tmp_path / "profile")
    assert img.size == (WIDTH, HEIGHT)
    wall = find_dashboard("tronrisk-wall")
    assert COL_PX > 0
    for p in wall.panels:
        box = _panel_box(p.grid)
        region = img.crop(box)
        counts = region.getcolors(1 << 24)
        total = sum(n for n, _ in counts)
        ink = sum(n for n, px in counts if px not in BG) / total
        colours = len(counts)
        if p.type == "stat":
            assert ink > 0.02, (p.title, ink)
        else:
            assert ink > 0.08 and colours > 20, (p.title, ink, colours)
    # the palette is really there: severity red in the big numbers, the series green in the charts
    all_px = {px for _, px in img.getcolors(1 << 24)}
    assert (0xE0, 0x2F, 0x44) in all_px and (0x7E, 0xB2, 0x6D) in all_px


def test_cli_report_command_writes_and_prints_the_path(run, tmp_path, capsys):
    from pipeline.cli import cmd_report

    out = tmp_path / "r.html"
    args = argparse.Namespace(out=str(out), clickhouse=run.dsn, start=None, end=None, dashboard="tronrisk-wall",
                              dashboards_dir=None, config=None, workers=None)
    assert cmd_report.main(args) == 0
    assert capsys.readouterr().out.strip() == str(out.resolve())
    assert out.read_text().count("<svg") >= 4


def test_cli_report_errors_are_one_line(tmp_path):
    empty = f"chdb://{tmp_path / 'empty'}?database=nothing"  # its own directory: a subprocess may open it
    done = subprocess.run([sys.executable, str(ROOT / "run_pipeline.py"), "report", "--clickhouse", empty,
                           "--out", str(tmp_path / "x.html")], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, check=False)
    assert done.returncode != 0 and "run the pipeline into this database first" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    bad = subprocess.run([sys.executable, str(ROOT / "run_pipeline.py"), "report", "--clickhouse", empty,
                          "--from", "2024-04-25T00:00:00Z", "--to", "2024-04-24T00:00:00Z"], capture_output=True,
                         text=True, timeout=120, cwd=ROOT, check=False)
    assert bad.returncode != 0
