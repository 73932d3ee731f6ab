"""The web UI end to end: a real ``schemalog serve`` (tests/test_api.py's Server) on a real store, driven in
Debian's headless Chromium by Playwright (never ``playwright install``: no browser is downloaded).

Each page's screenshot is saved under docs/screenshots/ (the README shows timeline.png and diagram.png).
Every wait is on what the page shows (a selector, an attribute, the URL), with a bound; nothing sleeps. (Not
``wait_for_function``: its polling evaluates text, which the page's Content-Security-Policy forbids.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import IN_CI
from tests.test_api import Server, cli

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
WAIT = 15_000  # ms: the bound of every wait on the page

USERS = {
    "type": "table_created",
    "table": "users",
    "columns": [
        {"name": "id", "type": "bigint"},
        {"name": "team_id", "type": "bigint"},
        {"name": "mail", "type": "text"},
    ],
    "primary_key": ["id"],
    "constraints": [
        {
            "name": "users_team_fk",
            "kind": "foreign_key",
            "columns": ["team_id"],
            "references": {"table": "teams", "columns": ["id"]},
        }
    ],
}
TEAMS = {
    "type": "table_created",
    "table": "teams",
    "columns": [{"name": "id", "type": "bigint"}, {"name": "name", "type": "text"}],
    "primary_key": ["id"],
}


def _table(name: str, columns: list[tuple[str, str]], refs: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """A table_created event: an ``id`` key, the columns, a foreign key per (column, table) in refs."""
    return {
        "type": "table_created",
        "table": name,
        "columns": [{"name": "id", "type": "bigint"}] + [{"name": n, "type": t} for n, t in columns],
        "primary_key": ["id"],
        "constraints": [
            {
                "name": f"{name}_{column}_fk",
                "kind": "foreign_key",
                "columns": [column],
                "references": {"table": table, "columns": ["id"]},
            }
            for column, table in refs
        ],
    }


SHOP = [  # a second stream, for the screenshots: a diagram with some shape, a comparison with every mark
    _table("customers", [("mail", "text"), ("name", "varchar(200)")]),
    _table(
        "addresses", [("customer_id", "bigint"), ("line", "text"), ("city", "text")], (("customer_id", "customers"),)
    ),
    _table("products", [("title", "text"), ("price", "numeric(12,2)"), ("legacy_code", "text")]),
    _table("categories", [("name", "text")]),
    _table(
        "product_categories",
        [("product_id", "bigint"), ("category_id", "bigint")],
        (("product_id", "products"), ("category_id", "categories")),
    ),
    _table(
        "orders",
        [("customer_id", "bigint"), ("address_id", "bigint"), ("placed_at", "timestamptz")],
        (("customer_id", "customers"), ("address_id", "addresses")),
    ),
    _table(
        "order_items",
        [("order_id", "bigint"), ("product_id", "bigint"), ("quantity", "integer")],
        (("order_id", "orders"), ("product_id", "products")),
    ),
    _table("payments", [("order_id", "bigint"), ("amount", "numeric(12,2)")], (("order_id", "orders"),)),
    _table("coupons", [("code", "text")]),
]
SHOP_CHANGES = [
    {"type": "column_renamed", "table": "customers", "column": "mail", "new_name": "email"},
    {"type": "column_added", "table": "orders", "column": {"name": "shipped_at", "type": "timestamptz"}},
    {"type": "column_dropped", "table": "products", "column": "legacy_code"},
    {"type": "column_altered", "table": "products", "column": "price", "new_type": "numeric(14,2)"},
    {"type": "table_dropped", "table": "coupons"},
    _table(
        "reviews",
        [("product_id", "bigint"), ("customer_id", "bigint"), ("stars", "smallint")],
        (("product_id", "products"), ("customer_id", "customers")),
    ),
]


def _playwright() -> Any:
    """Playwright's sync API, or a skip (a failure with CI=true) naming what is missing."""
    reason = None
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is absent (apt-get install -y chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            reason = "playwright is not installed (pip install -e '.[dev]')"
        else:
            return sync_playwright
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser is required)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _playwright()
    with sync_playwright() as p:
        found = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            yield found
        finally:
            found.close()


class Site:
    """A served store with a small history by two authors: alice (admin) and bob (author)."""

    def __init__(self, url: str, server: Server, tokens: dict[str, str]):
        self.url = url
        self.server = server
        self.base = server.base
        self.tokens = tokens
        self.changesets: dict[str, str] = {}

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=30)

    def append(self, who: str, message: str, events: list[dict[str, Any]], stream: str = "app") -> dict[str, Any]:
        with self.client(who) as c:
            r = c.post(f"/v1/streams/{stream}/changesets", json={"message": message, "events": events})
            assert r.status_code == 201, r.text
            body: dict[str, Any] = r.json()
        self.changesets[message] = body["changeset_id"]
        return body


def _site(url: str) -> Iterator[Site]:
    cli(url, "init")
    tokens = {
        name: cli(url, "token", "create", "--name", name, "--role", role)
        for name, role in (("alice", "admin"), ("bob", "author"), ("rita", "reader"))
    }
    server = Server(url)
    try:
        site = Site(url, server, tokens)
        site.append("alice", "users and teams", [TEAMS, USERS])  # v1, v2
        site.append(
            "bob",
            "rename mail to email",
            [{"type": "column_renamed", "table": "users", "column": "mail", "new_name": "email"}],
        )  # v3
        site.append(
            "alice",
            "created_at and a longer team name",
            [
                {"type": "column_added", "table": "users", "column": {"name": "created_at", "type": "timestamptz"}},
                {"type": "column_altered", "table": "teams", "column": "name", "new_type": "varchar(200)"},
            ],
        )  # v4, v5
        with site.client("alice") as c:
            assert c.post("/v1/streams/app/tags", json={"name": "release-1"}).status_code == 201  # v6
        site.append("alice", "the shop", SHOP, stream="shop")  # v1-v9
        site.append("bob", "emails, shipping, reviews", SHOP_CHANGES, stream="shop")  # v10-v15
        yield site
    finally:
        server.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from _site(f"sqlite:///{tmp_path_factory.mktemp('web') / 'log.db'}")


class Tab:
    """A browser page on the site, every request it makes and every console error it reports kept."""

    def __init__(self, browser: Any, site: Site, *, width: int = 1280, height: int = 860):
        self.site = site
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def go(self, hash_: str) -> None:
        """To a view by its permalink, waiting until the new view says it is ready."""
        self.stale()
        self.page.goto(self.site.base + "/" + hash_)
        self.ready()

    def stale(self) -> None:
        """Mark the view shown, so that ``ready`` waits for the next one."""
        self.page.evaluate("document.querySelectorAll('main .view').forEach(v => v.setAttribute('data-stale', ''))")

    def ready(self) -> None:
        self.page.wait_for_selector("main .view[data-ready]:not([data-stale])", state="attached")

    def sign_in(self, who: str) -> None:
        self.page.goto(self.site.base + "/#/timeline")
        self.page.fill("#token", self.site.tokens[who])
        self.page.click("form.signin button[type=submit]")
        self.page.wait_for_selector("#principal .name")
        self.ready()

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / name))

    def close(self) -> None:
        foreign = [u for u in self.requests if not u.startswith(self.site.base) and not u.startswith("data:")]
        self.context.close()
        assert not foreign, f"requests to other origins: {foreign}"
        # (a refused request is logged by the browser itself: the answers are the tests' to check)
        assert not [e for e in self.errors if not e.startswith("Failed to load resource")], self.errors


@pytest.fixture
def tab(browser: Any, site: Site) -> Iterator[Tab]:
    t = Tab(browser, site)
    try:
        yield t
    finally:
        t.close()


def titles(tab: Tab) -> list[str]:
    return [t.strip() for t in tab.page.locator("ol.timeline li.changeset a.title").all_inner_texts()]


def test_static_files_headers(site: Site) -> None:
    with httpx.Client(base_url=site.base, timeout=10) as c:
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "<script>" not in page.text and 'type="module"' in page.text
        script = c.get("/static/app.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert c.get("/static/app.js", headers={"If-None-Match": script.headers["etag"]}).status_code == 304
        vendor = c.get("/static/vendor/dagre-3.1.3.esm.js")
        assert vendor.status_code == 200 and "immutable" in vendor.headers["cache-control"]
        assert c.get("/static/style.css").headers["content-type"].startswith("text/css")
        for bad in ("/static/nope.js", "/static/%2e%2e/__init__.py", "/static/.hidden"):
            missing = c.get(bad)
            assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        assert c.get("/healthz").json()["ok"] is True  # the API's routes still win
        assert c.get("/v1/streams").status_code == 401
    assert (ROOT / "service/web/static/vendor/LICENSES.md").read_text().count("dagre") >= 1


def test_sign_in_and_out(tab: Tab) -> None:
    page = tab.page
    page.goto(tab.site.base + "/#/fleet")
    page.wait_for_selector("#token")
    tab.shot("signin.png")
    page.fill("#token", "slt_not_a_real_token")
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#signin-status:not([hidden])")
    assert "Not signed in" in page.inner_text("#signin-status")
    page.fill("#token", tab.site.tokens["alice"])
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#principal .name")
    assert page.inner_text("#principal") == "alice admin"
    assert page.url.endswith("#/fleet")  # back where the address pointed
    assert page.evaluate("sessionStorage.getItem('schemalog.token')") == tab.site.tokens["alice"]
    assert page.evaluate("localStorage.length") == 0
    page.click("#sign-out")
    page.wait_for_selector("#token")
    assert page.evaluate("sessionStorage.getItem('schemalog.token')") is None


def test_timeline_lists_filters_and_goes_live(tab: Tab) -> None:
    page = tab.page
    tab.sign_in("alice")
    page.wait_for_selector("ol.timeline li.changeset")
    shown = titles(tab)
    ours = [
        "tag release-1 at version 5",
        "created_at and a longer team name",
        "rename mail to email",
        "users and teams",
    ]
    assert [t for t in shown if t in ours] == ours  # newest first
    first = page.locator("li.changeset", has_text="rename mail to email")
    assert "token:bob" in first.inner_text() and "column_renamed users.mail -> email" in first.inner_text()
    assert "release-1" in page.locator("li.changeset", has_text="created_at and a longer").inner_text()
    shop = page.locator("li.changeset", has_text="the shop")  # 9 events: 6 in words, 3 behind a disclosure
    assert shop.locator("details.more-events summary").inner_text() == "3 more events"
    tab.shot("timeline.png")

    page.fill("#f-table", "teams")
    tab.stale()
    page.click("form.filters button[type=submit]")
    page.wait_for_url(lambda u: "table=teams" in u)
    tab.ready()
    page.wait_for_selector(".active-filters")
    assert titles(tab) == ["created_at and a longer team name", "users and teams"]
    tab.stale()
    page.go_back()
    page.wait_for_url(lambda u: "table=" not in u)
    tab.ready()
    page.wait_for_selector("li.changeset >> text=rename mail to email")

    # a new changeset appears at the top, from the change feed, without a reload
    page.evaluate("window.__same_page = true")
    page.wait_for_selector("#feed-status[data-status=live]")
    tab.site.append(
        "bob", "live one", [{"type": "column_added", "table": "teams", "column": {"name": "motto", "type": "text"}}]
    )
    page.wait_for_selector("ol.timeline li.changeset:first-child >> text=live one")
    assert page.evaluate("window.__same_page") is True


def test_diagram_shows_a_point(tab: Tab) -> None:
    page = tab.page
    tab.sign_in("alice")
    tab.go("#/schema/app?at=2")

    def columns(table: str) -> list[str]:
        return page.eval_on_selector_all(
            f'[data-table="{table}"] [data-column]', "els => els.map(e => e.dataset.column)"
        )

    assert sorted(page.eval_on_selector_all("[data-table]", "els => els.map(e => e.dataset.table)")) == [
        "teams",
        "users",
    ]
    assert columns("users") == ["id", "team_id", "mail"]
    assert page.locator('path.fk[data-child="users"][data-parent="teams"]').count() == 1
    assert "v2" in page.inner_text("#schema-point")
    assert page.locator('[data-table="users"] [data-column="id"] text.key').text_content() == "PK"
    tab.go("#/schema/app?at=release-1")
    assert columns("users") == ["id", "team_id", "email", "created_at"]
    assert page.locator('[data-table="teams"] [data-column="name"] text.type').text_content() == "varchar(200)"
    with tab.site.client("alice") as c:  # a time as the point: the rename's own time
        events = c.get("/v1/streams/app/events", params={"type": "column_renamed"}).json()["events"]
    tab.go(f"#/schema/app?at={events[0]['recorded_at']}")
    assert columns("users") == ["id", "team_id", "email"] and "v3" in page.inner_text("#schema-point")
    tab.go("#/schema/shop?at=9")
    shop = [t["table"] for t in SHOP]
    assert sorted(page.eval_on_selector_all("[data-table]", "els => els.map(e => e.dataset.table)")) == sorted(shop)
    assert page.locator("path.fk").count() == sum(len(t["constraints"]) for t in SHOP)
    tab.shot("diagram.png")
    tab.go("#/schema/app?at=release-1")

    # the slider moves the point (and the address); the back button returns
    tab.stale()
    page.fill("#p-slider", "3")
    page.wait_for_url(lambda u: "at=3" in u)
    tab.ready()
    assert columns("users") == ["id", "team_id", "email"]
    tab.stale()
    page.go_back()
    page.wait_for_url(lambda u: "at=release-1" in u)
    tab.ready()
    # focus on one table and its neighbours, from the search box
    page.fill("#d-search", "team")
    tab.stale()
    page.click("#d-focus")
    page.wait_for_url(lambda u: "focus=teams" in u)
    tab.ready()
    assert page.locator('[data-table="teams"].selected').count() == 1


def test_compare_marks_renamed_added_changed(tab: Tab) -> None:
    page = tab.page
    tab.sign_in("alice")
    tab.go("#/schema/app?at=2&compare=5")
    email = page.locator('[data-table="users"] [data-column="email"]')
    assert email.get_attribute("data-change") == "renamed"
    assert "renamed from mail" in (email.get_attribute("aria-label") or "")
    assert page.locator('[data-table="users"] [data-column="mail"]').count() == 0
    assert page.get_attribute('[data-table="users"] [data-column="created_at"]', "data-change") == "added"
    assert page.get_attribute('[data-table="teams"] [data-column="name"]', "data-change") == "changed"
    assert page.get_attribute('[data-table="users"] [data-column="id"]', "data-change") is None
    assert "1 renamed" in page.inner_text("#legend")
    # every mark at once, on the shop
    tab.go("#/schema/shop?at=9&compare=head")
    marks = page.eval_on_selector_all(
        "[data-change]",
        "els => els.map(e => [e.closest('[data-table]').dataset.table, e.dataset.column || '', e.dataset.change])",
    )
    assert ["customers", "email", "renamed"] in marks and ["orders", "shipped_at", "added"] in marks
    assert ["products", "legacy_code", "dropped"] in marks and ["products", "price", "changed"] in marks
    assert ["coupons", "", "dropped"] in marks and ["reviews", "", "added"] in marks
    tab.shot("compare.png")
    # going back in history: the same rename, undone
    tab.go("#/schema/app?at=5&compare=2")
    assert page.get_attribute('[data-table="users"] [data-column="mail"]', "data-change") == "renamed"
    assert page.get_attribute('[data-table="users"] [data-column="created_at"]', "data-change") == "dropped"


def test_blame_names_who_created_and_renamed(tab: Tab) -> None:
    page = tab.page
    tab.sign_in("alice")
    tab.go("#/schema/app?at=release-1")
    page.click('[data-table="users"] [data-column="email"]')
    page.wait_for_selector("#blame")
    blame = page.inner_text("#blame")
    created, changed = blame.split("Last changed by")
    assert "token:alice" in created and "users and teams" in created
    assert "token:bob" in changed and "rename mail to email" in changed
    assert "mail" in blame.split("Former names")[1]
    tab.shot("blame.png")
    # the same from the keyboard: a table opened with Enter lists its columns as buttons
    page.focus('[data-table="teams"]')
    page.keyboard.press("Enter")
    page.click("button[aria-label='Blame of column name']")
    page.wait_for_selector("#blame >> text=created_at and a longer team name")


def test_changeset_page_and_revert(tab: Tab) -> None:
    page = tab.page
    tab.sign_in("alice")
    changeset = tab.site.changesets["rename mail to email"]
    tab.go(f"#/changeset/app/{changeset}")
    assert page.inner_text("h1") == "rename mail to email"
    assert page.inner_text("#chain") == "verifies"
    assert "column_renamed users.mail -> email" in page.inner_text("ol.events")
    assert re.search(r"RENAME", page.inner_text("#panel-postgresql"), re.I)
    page.click("#tab-sqlite")
    assert page.is_visible("#panel-sqlite") and not page.is_visible("#panel-postgresql")
    assert page.is_visible("#revert")
    tab.shot("changeset.png")
    # a revert, appended by the author: its own page follows
    added = tab.site.append(
        "bob", "to revert", [{"type": "column_added", "table": "teams", "column": {"name": "tmp", "type": "text"}}]
    )
    tab.go(f"#/changeset/app/{added['changeset_id']}")
    page.once("dialog", lambda d: d.accept())
    tab.stale()
    page.click("#revert")
    page.wait_for_url(lambda u: "#/changeset/" in u and added["changeset_id"] not in u)
    tab.ready()
    assert "column_dropped teams.tmp" in page.inner_text("ol.events")
    assert page.inner_text("dd.actor") == "token:alice"


def test_reader_is_not_offered_writes(tab: Tab) -> None:
    page = tab.page
    tab.sign_in("rita")
    tab.go(f"#/changeset/app/{tab.site.changesets['rename mail to email']}")
    assert page.inner_text("#chain") == "verifies"
    assert page.locator("#revert").count() == 0 and page.locator("#approve").count() == 0
    tab.go("#/fleet")
    assert page.locator("th", has_text="Actions").count() == 0


def test_phone_width(browser: Any, site: Site) -> None:
    t = Tab(browser, site, width=390, height=844)
    try:
        t.sign_in("alice")
        t.page.wait_for_selector("ol.timeline li.changeset")
        assert t.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        t.shot("phone-timeline.png")
    finally:
        t.close()


def test_fleet_updates_live_from_the_daemon(tab: Tab, tmp_path: Path) -> None:
    from tests.daemon_harness import DaemonProcess

    site = tab.site
    target = tmp_path / "fleet-target.db"
    site.append("alice", "fleet stream", [TEAMS], stream="fleetapp")
    cli(site.url, "db", "add", "shop", "--url", f"sqlite:///{target}", "--stream", "fleetapp", "--actor", "alice")
    daemon = DaemonProcess(site.url, "web", poll=0.5, ttl=3.0)
    try:
        page = tab.page
        tab.sign_in("alice")
        tab.go("#/fleet")
        row = 'tr[data-database="shop"]'
        page.wait_for_selector(f'{row}[data-marker="1"][data-status="Ready"]')
        page.wait_for_selector("#feed-status[data-status=live]")
        assert page.locator(f"{row} th").inner_text() == "shop"
        assert page.is_visible(f"{row} form.inline")  # an admin may set its target
        page.evaluate("window.__same_page = true")
        site.append(
            "bob",
            "fleet change",
            [{"type": "column_added", "table": "teams", "column": {"name": "city", "type": "text"}}],
            stream="fleetapp",
        )
        page.wait_for_selector(f'{row}[data-marker="2"][data-status="Ready"]', timeout=55_000)
        assert page.evaluate("window.__same_page") is True
        assert "migration applied" in page.inner_text(f"{row}")
        tab.shot("fleet.png")
        page.fill(f"{row} input[name=target]", "1")  # a deployer's (here an admin's) new target, recorded
        page.click(f"{row} form.inline button[type=submit]")
        page.wait_for_selector(f"{row} td.target >> text=1")
        with site.client("alice") as c:
            assert c.get("/v1/databases/shop").json()["target"] == "1"
    finally:
        daemon.stop()


def test_fleet_approve_lets_the_daemon_apply(tab: Tab, tmp_path: Path) -> None:
    from tests.daemon_harness import DaemonProcess

    site = tab.site
    cli(site.url, "approvals", "require", "gated", "1")
    site.append("bob", "gated teams", [TEAMS], stream="gated")
    cli(site.url, "db", "add", "held", "--url", f"sqlite:///{tmp_path / 'held.db'}", "--stream", "gated")
    daemon = DaemonProcess(site.url, "web-approve", poll=0.5, ttl=3.0)
    try:
        page = tab.page
        tab.sign_in("alice")  # an admin, and not the changeset's author
        tab.go("#/fleet")
        row = 'tr[data-database="held"]'
        page.wait_for_selector(f"{row} button.approve", timeout=55_000)
        assert page.get_attribute(row, "data-marker") in ("", "0")
        page.click(f"{row} button.approve")
        page.wait_for_selector(f'{row}[data-marker="1"][data-status="Ready"]', timeout=55_000)
        with site.client("alice") as c:
            changeset = c.get("/v1/changesets", params={"stream": "gated"}).json()["changesets"][0]
        assert [a["actor"] for a in changeset["approvals"]] == ["token:alice"]
    finally:
        daemon.stop()


@pytest.mark.postgres
def test_on_postgresql(browser: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.servers import postgres_database_url

    # (the database made and dropped in a thread: Playwright's sync API keeps an event loop running in
    # this one, and the helper runs one of its own)
    made = postgres_database_url()
    with ThreadPoolExecutor(1) as pool:
        url = pool.submit(made.__enter__).result()
    try:
        for pg_site in _site(url):
            t = Tab(browser, pg_site)
            try:
                t.sign_in("bob")
                t.page.wait_for_selector("li.changeset >> text=rename mail to email")
                t.go("#/schema/app?at=2&compare=release-1")
                assert t.page.get_attribute('[data-table="users"] [data-column="email"]', "data-change") == "renamed"
                t.page.click('[data-table="users"] [data-column="email"]')
                t.page.wait_for_selector("#blame >> text=token:bob")
            finally:
                t.close()
    finally:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(made.__exit__, None, None, None).result()


def test_timeline_scrolls_on_the_cursor(browser: Any, tmp_path: Path) -> None:
    for own in _site(f"sqlite:///{tmp_path / 'many.db'}"):  # its own store: 60 changesets more
        own.append("alice", "many: table", [{**TEAMS, "table": "many"}], stream="many")
        for i in range(59):
            own.append(
                "bob",
                f"many: {i}",
                [{"type": "column_added", "table": "many", "column": {"name": f"c{i}", "type": "text"}}],
                stream="many",
            )
        t = Tab(browser, own)
        try:
            t.sign_in("rita")
            t.go("#/timeline?stream=many")
            items = t.page.locator("ol.timeline li.changeset")
            assert items.count() == 50  # one page of the API's
            assert titles(t)[0] == "many: 58"
            t.page.locator(".sentinel").scroll_into_view_if_needed()
            t.page.wait_for_selector("ol.timeline li.changeset:nth-child(60)")
            assert titles(t)[-1] == "many: table" and len(set(titles(t))) == 60
            t.page.wait_for_selector(".more", state="hidden")
        finally:
            t.close()
