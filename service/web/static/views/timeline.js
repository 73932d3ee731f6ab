// The timeline: every changeset of every stream, newest first (GET /v1/changesets), its filters in the
// URL, the next page read on the API's cursor as the list is scrolled, new changesets put on top as the
// change feed reports them.

import { api } from "../api.js";
import { ago, errorBox, fill, h, route, time } from "../dom.js";

const FILTERS = ["stream", "table", "column", "actor", "type", "since", "until"];
const EVENT_TYPES = [
  "table_created", "table_dropped", "table_renamed", "table_altered", "column_added", "column_dropped",
  "column_renamed", "column_altered", "index_created", "index_dropped", "constraint_added", "constraint_dropped",
  "primary_key_set", "enum_created", "enum_value_added", "enum_value_dropped", "enum_dropped", "sql_run",
  "tag_created", "migration_applied", "migration_faked", "migration_failed", "drift_found",
];
const PAGE = 50;

function key(c) {
  return `${c.stream}\u0000${c.changeset_id}`;
}

/** A datetime-local input's value as ISO (UTC), and back. */
function toIso(local) {
  if (!local) return "";
  const date = new Date(local);
  return isNaN(date) ? local : date.toISOString();
}
function toLocal(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (isNaN(date)) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

const SHOWN_LINES = 6;

/** The events in words; past a few, the rest behind a disclosure. */
function summaryList(lines) {
  const item = (line) => h("li", {}, line);
  if (lines.length <= SHOWN_LINES + 1) return h("ul", { class: "summary" }, lines.map(item));
  return [
    h("ul", { class: "summary" }, lines.slice(0, SHOWN_LINES).map(item)),
    h("details", { class: "more-events" }, h("summary", {}, `${lines.length - SHOWN_LINES} more events`), h("ul", { class: "summary" }, lines.slice(SHOWN_LINES).map(item))),
  ];
}

export function changesetItem(c, { fresh = false } = {}) {
  const link = route("changeset", c.stream, c.changeset_id);
  const versions = c.first_version === c.last_version ? `v${c.first_version}` : `v${c.first_version}–v${c.last_version}`;
  return h(
    "li",
    { class: `changeset kind-${c.kind}${fresh ? " fresh" : ""}`, dataset: { key: key(c), stream: c.stream, changeset: c.changeset_id } },
    h(
      "article",
      { "aria-labelledby": `cs-${c.first_position}` },
      h(
        "header",
        {},
        h("a", { class: "stream badge", href: route("timeline", { stream: c.stream }), title: `only stream ${c.stream}` }, c.stream),
        " ",
        h("a", { id: `cs-${c.first_position}`, class: "title", href: link }, c.message || h("span", { class: "muted" }, "(no message)")),
        h("span", { class: "versions" }, versions),
      ),
      h(
        "p",
        { class: "meta" },
        h("a", { class: "actor", href: route("timeline", { actor: c.actor }), title: `only changes by ${c.actor}` }, c.actor),
        " · ",
        time(c.recorded_at),
        h("span", { class: "muted" }, ` (${ago(c.recorded_at)})`),
      ),
      summaryList(c.summary || []),
      c.tags && c.tags.length
        ? h("p", { class: "tags" }, h("span", { class: "visually-hidden" }, "Tags: "), c.tags.map((t) => h("span", { class: "tag badge" }, t)))
        : null,
      c.approvals && c.approvals.length
        ? h(
            "p",
            { class: "approvals" },
            "Approved by ",
            c.approvals.map((a, i) => [i ? ", " : "", h("span", { class: "actor" }, a.actor)]),
          )
        : null,
    ),
  );
}

export async function renderTimeline(main, ctx) {
  const params = ctx.params;
  const filters = {};
  for (const name of FILTERS) {
    const values = params.getAll(name).filter(Boolean);
    if (values.length) filters[name] = name === "type" ? values : values[0];
  }
  document.title = "Timeline · schemalog";

  const field = (name, label, input) =>
    h("div", { class: "field" }, h("label", { for: `f-${name}` }, label), input);
  const streamSelect = h("select", { id: "f-stream", name: "stream" }, h("option", { value: "" }, "every stream"));
  const text = (name, placeholder) =>
    h("input", { id: `f-${name}`, name, type: "text", value: filters[name] || "", placeholder, autocomplete: "off" });
  const typeSelect = h(
    "select",
    { id: "f-type", name: "type" },
    h("option", { value: "" }, "any type"),
    EVENT_TYPES.map((t) => h("option", { value: t, selected: (filters.type || []).includes(t) }, t.replace(/_/g, " "))),
  );
  const since = h("input", { id: "f-since", name: "since", type: "datetime-local", value: toLocal(filters.since) });
  const until = h("input", { id: "f-until", name: "until", type: "datetime-local", value: toLocal(filters.until) });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter the timeline" },
    field("stream", "Stream", streamSelect),
    field("table", "Table", text("table", "users")),
    field("column", "Column", text("column", "email")),
    field("actor", "Actor", text("actor", "token:alice")),
    field("type", "Event type", typeSelect),
    field("since", "Since", since),
    field("until", "Until", until),
    h("div", { class: "field actions" }, h("button", { type: "submit", class: "primary" }, "Filter"), h("a", { href: "#/timeline", class: "button" }, "Clear")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const query = {};
    for (const name of FILTERS) {
      const value = String(data.get(name) || "").trim();
      if (!value) continue;
      query[name] = name === "since" || name === "until" ? toIso(value) : value;
    }
    ctx.navigate(route("timeline", query));
  });

  const list = h("ol", { class: "timeline", "aria-label": "Changesets, newest first", "aria-busy": "true" });
  const status = h("p", { class: "list-status", role: "status", "aria-live": "polite" }, "Loading…");
  const more = h("button", { type: "button", class: "more", hidden: true }, "Older changesets");
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const active = Object.entries(filters).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(", ") : v}`);
  const box = h(
    "details",
    { class: "filter-box", open: !window.matchMedia("(max-width: 720px)").matches },
    h("summary", {}, "Filters", Object.keys(filters).length ? ` (${Object.keys(filters).length} in use)` : ""),
    form,
  );
  fill(
    main,
    h("h1", {}, "Timeline"),
    box,
    active.length ? h("p", { class: "active-filters" }, "Filtered by ", active.join("; ")) : null,
    list,
    status,
    more,
    sentinel,
  );

  api("/v1/streams")
    .then((streams) => {
      for (const s of streams) streamSelect.append(h("option", { value: s.name, selected: filters.stream === s.name }, s.name));
      if (filters.stream && !streams.some((s) => s.name === filters.stream))
        streamSelect.append(h("option", { value: filters.stream, selected: true }, filters.stream));
    })
    .catch(() => {});

  const shown = new Map();
  let next = undefined; // undefined: not read yet; null: the end
  let loading = false;
  let stopped = false;

  async function loadMore() {
    if (loading || next === null || stopped) return;
    loading = true;
    list.setAttribute("aria-busy", "true");
    try {
      const page = await api("/v1/changesets", { params: { ...filters, before: next, limit: PAGE } });
      if (stopped) return;
      for (const c of page.changesets) {
        if (shown.has(key(c))) continue;
        const item = changesetItem(c);
        shown.set(key(c), item);
        list.append(item);
      }
      next = page.next_before;
      status.textContent = shown.size ? (next === null ? `${shown.size} changesets, the oldest last.` : `${shown.size} changesets shown.`) : "No changesets match.";
      more.hidden = next === null;
    } catch (error) {
      fill(status, errorBox(error));
      next = null;
    } finally {
      loading = false;
      list.setAttribute("aria-busy", "false");
      main.dataset.ready = "true";
    }
    if (next !== null && !stopped && sentinel.getBoundingClientRect().top < window.innerHeight + 400) loadMore();
  }

  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  }, { rootMargin: "400px" });
  observer.observe(sentinel);
  more.addEventListener("click", loadMore);

  // Live: on an event from the feed, read the newest page again and put on top what is new (replacing
  // what changed: a tag or an approval added to a changeset already shown).
  let pending = null;
  async function refreshTop() {
    pending = null;
    if (stopped || next === undefined) return;
    try {
      const page = await api("/v1/changesets", { params: { ...filters, limit: PAGE } });
      if (stopped) return;
      const fresh = [];
      for (const c of page.changesets) {
        const old = shown.get(key(c));
        if (old) {
          const item = changesetItem(c);
          old.replaceWith(item);
          shown.set(key(c), item);
        } else fresh.push(c);
      }
      let anchor = list.firstChild;
      for (const c of fresh) {
        const item = changesetItem(c, { fresh: true });
        shown.set(key(c), item);
        list.insertBefore(item, anchor);
      }
      // (newest first within what is new: the page is newest first, inserted in order before the old top)
      if (fresh.length) {
        ctx.announce(`${fresh.length} new changeset${fresh.length > 1 ? "s" : ""}`);
        status.textContent = `${shown.size} changesets shown.`;
      }
    } catch {
      // the next event tries again
    }
  }
  const off = ctx.feed.on((kind) => {
    if (kind === "open" && next === undefined) return;
    if (!pending) pending = setTimeout(refreshTop, 250);
  });

  await loadMore();
  return () => {
    stopped = true;
    off();
    observer.disconnect();
    if (pending) clearTimeout(pending);
  };
}
