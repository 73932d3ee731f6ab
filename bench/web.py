"""The web UI's diagram at 1,000 tables, in Debian's headless Chromium (Playwright, /usr/bin/chromium).

A SQLite store gets a 1,000-table schema with foreign keys (every table but the first few references one
to three earlier tables, hubs more often: one connected graph, as a real schema's), appended through the
API in changesets of 100 tables; ``schemalog serve`` serves it. Each run opens a fresh browser context on
``/#/schema/bench`` (the token put in sessionStorage first) and takes the time from navigation start to
the page's ``diagram-ready`` performance mark: the schema read, laid out, drawn as SVG, every handler
attached and one frame painted. Its ``data-render-ms`` is the part spent in the page's own code (model,
layout, SVG). Then a pan and a zoom (the wheel) are timed to the next frame.

The floor: the same browser loading a static page holding the same SVG pre-rendered (the diagram's markup
taken from the live page, the same stylesheet), to its first frame after load: what the browser needs
just to parse and paint that many elements. The figure is given as a ratio to it. Goal: under 2 s.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python bench/web.py [--tables 1000] [--runs 5] [--shot FILE.png]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_api import Server, cli  # noqa: E402  (the same server process the tests start)

CHROMIUM = "/usr/bin/chromium"
TYPES = ["bigint", "text", "varchar(200)", "timestamptz", "boolean", "numeric(12,2)", "integer", "json", "uuid"]


def schema_events(tables: int, seed: int = 7) -> list[dict[str, Any]]:
    """``tables`` table_created events, each after the tables it references."""
    rng = random.Random(seed)
    hubs = max(5, tables // 50)
    events = []
    for i in range(tables):
        name = f"t{i:04d}"
        columns = [{"name": "id", "type": "bigint"}]
        constraints = []
        if i >= 3:
            picks = {
                rng.randrange(min(i, hubs)) if rng.random() < 0.5 else rng.randrange(i)
                for _ in range(rng.randint(1, 3))
            }
            for ref in sorted(picks):
                column = f"t{ref:04d}_id"
                columns.append({"name": column, "type": "bigint"})
                constraints.append(
                    {
                        "name": f"{name}_{column}_fk",
                        "kind": "foreign_key",
                        "columns": [column],
                        "references": {"table": f"t{ref:04d}", "columns": ["id"]},
                    }
                )
        for j in range(rng.randint(2, 6)):
            columns.append(
                {"name": f"c{j}_{rng.choice(['name', 'at', 'flag', 'total', 'note'])}", "type": rng.choice(TYPES)}
            )
        events.append(
            {
                "type": "table_created",
                "table": name,
                "columns": columns,
                "primary_key": ["id"],
                "constraints": constraints,
            }
        )
    return events


FLOOR_PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>{css}</style></head>
<body><main><div class="canvas">{svg}</div></main>
<script>addEventListener("load", () =>
  requestAnimationFrame(() => requestAnimationFrame(() => performance.mark("floor-ready"))));</script>
</body></html>"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--shot", type=Path, default=None, help="save a screenshot of the diagram (PNG) here")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is absent: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'web.db'}"
        cli(url, "init")
        token = cli(url, "token", "create", "--name", "bench", "--role", "admin")
        server = Server(url)
        try:
            events = schema_events(args.tables)
            fks = sum(len(e["constraints"]) for e in events)
            with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
                for start in range(0, len(events), 100):
                    r = c.post(
                        "/v1/streams/bench/changesets",
                        json={"message": "tables", "events": events[start : start + 100]},
                    )
                    assert r.status_code == 201, r.text
            print(f"schema: {args.tables} tables, {fks} foreign keys, {sum(len(e['columns']) for e in events)} columns")
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
                )
                ready, own, pans, zooms, floors = [], [], [], [], []
                markup = ""
                for run in range(args.runs + 1):  # the first run warms the server's caches: not counted
                    context = browser.new_context(viewport={"width": 1440, "height": 900})
                    context.add_init_script(f"sessionStorage.setItem('schemalog.token', {token!r})")
                    page = context.new_page()
                    page.goto(server.base + "/#/schema/bench")
                    page.wait_for_selector(".view[data-ready] .canvas[data-tables]", state="attached", timeout=120_000)
                    at = page.evaluate("performance.getEntriesByName('diagram-ready')[0].startTime")
                    render = float(page.get_attribute(".canvas", "data-render-ms") or "nan")
                    elements = page.evaluate("document.querySelectorAll('svg.diagram *').length")
                    if run == 0:  # the floor's markup: the diagram as drawn when ready
                        markup = page.evaluate("document.querySelector('svg.diagram').outerHTML")
                    box = page.locator("svg.diagram").bounding_box()
                    assert box is not None
                    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                    t0 = page.evaluate("performance.now()")
                    page.mouse.down()
                    page.mouse.move(box["x"] + box["width"] / 2 + 200, box["y"] + box["height"] / 2 + 80, steps=5)
                    page.mouse.up()
                    pan = page.evaluate("new Promise(r => requestAnimationFrame(() => r(performance.now())))") - t0
                    t0 = page.evaluate("performance.now()")
                    page.mouse.wheel(0, -600)
                    zoom = page.evaluate("new Promise(r => requestAnimationFrame(() => r(performance.now())))") - t0
                    if run == 0 and args.shot is not None:
                        page.screenshot(path=str(args.shot))
                    if run > 0:
                        ready.append(at)
                        own.append(render)
                        pans.append(pan)
                        zooms.append(zoom)
                    context.close()
                css = (ROOT / "service/web/static/style.css").read_text()
                html = FLOOR_PAGE.format(css=css, svg=markup)
                for _ in range(args.runs):
                    context = browser.new_context(viewport={"width": 1440, "height": 900})
                    page = context.new_page()
                    page.route(
                        "http://floor.invalid/", lambda route: route.fulfill(body=html, content_type="text/html")
                    )
                    page.goto("http://floor.invalid/")
                    page.wait_for_function("performance.getEntriesByName('floor-ready').length > 0", timeout=120_000)
                    floors.append(page.evaluate("performance.getEntriesByName('floor-ready')[0].startTime"))
                    context.close()
                browser.close()
            version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
            median = statistics.median(ready)
            floor = statistics.median(floors)
            print(f"browser: {version}; {elements} SVG elements; {args.runs} runs (after one warm-up)")
            print(
                f"diagram ready (navigation -> laid out, drawn, interactive): median {median:.0f} ms"
                f" (runs {', '.join(f'{x:.0f}' for x in ready)})"
            )
            print(f"  of which the page's model + layout + SVG: median {statistics.median(own):.0f} ms")
            print(f"floor (the same SVG pre-rendered, static): median {floor:.0f} ms; ratio {median / floor:.2f}x")
            print(
                f"pan to next frame: median {statistics.median(pans):.0f} ms;"
                f" wheel zoom: median {statistics.median(zooms):.0f} ms"
            )
            print(f"goal < 2000 ms: {'met' if median < 2000 else 'NOT met'}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
