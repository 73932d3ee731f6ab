// The schema at any point (#/schema/<stream>?at=3&compare=5&focus=users): a point picker (version, time
// or tag) and a slider over the stream's history, the entity-relationship diagram, a comparison of two
// points, and blame (who created each column and who last changed it, following renames).

import { api } from "../api.js";
import { errorBox, fill, h, message, route, time } from "../dom.js";
import { compareMarks } from "../compare.js";
import { layout, model, mountDiagram, neighbourhood } from "../diagram.js";

const enc = encodeURIComponent;

function isSchemaStream(name) {
  return !name.startsWith("db:") && !name.startsWith("schemalog:");
}

function blameEntry(label, who) {
  if (!who) return null;
  return [
    h("dt", {}, label),
    h(
      "dd",
      {},
      h("span", { class: "actor" }, who.actor),
      ", ",
      time(who.recorded_at),
      ", v",
      String(who.version),
      " (",
      (who.type || "").replace(/_/g, " "),
      ")",
      who.message ? [": ", h("q", {}, who.message)] : null,
      " ",
      who.changeset_id ? h("a", { href: route("changeset", who.stream || "", who.changeset_id) }, "changeset") : null,
    ),
  ];
}

/** The schema at the point shown (and, comparing, the first point's and the diff between them). */
function readPoints(stream, at, compare) {
  const shown = compare || at;
  const reads = [api(`/v1/streams/${enc(stream)}/schema`, { params: { at: shown || undefined } })];
  if (compare) {
    reads.push(api(`/v1/streams/${enc(stream)}/schema`, { params: { at: at || undefined } }));
    reads.push(api(`/v1/streams/${enc(stream)}/diff`, { params: { from: at || "head", to: compare } }));
  }
  return Promise.all(reads);
}

export async function renderSchema(main, ctx) {
  const params = ctx.params;
  const stream = ctx.segments[0];
  const at = params.get("at") || "";
  const compare = params.get("compare") || "";
  const focus = params.get("focus") || "";
  // the point's reads start at once, beside the list of streams
  const reads = stream ? readPoints(stream, at, compare) : null;
  if (reads) reads.catch(() => {});
  const streams = (await api("/v1/streams")).filter((s) => isSchemaStream(s.name));
  if (!stream) {
    if (!streams.length) {
      fill(main, h("h1", {}, "Schema"), h("p", {}, "No schema stream yet: append a changeset first."));
      main.dataset.ready = "true";
      return;
    }
    ctx.navigate(route("schema", streams[0].name), true);
    return;
  }
  const head = streams.find((s) => s.name === stream);
  document.title = `Schema ${stream}${at ? " at " + at : ""} · schemalog`;

  const panel = h("aside", { class: "side", id: "side", "aria-live": "polite", "aria-label": "Details" }, h("p", { class: "muted" }, "Click a table or a column for its details and its blame."));
  const canvas = h("div", { class: "canvas", id: "canvas" }, h("p", { role: "status", class: "loading" }, "Loading the schema…"));
  const legend = h("div", { class: "legend", id: "legend" });
  const streamSelect = h("select", { id: "p-stream", name: "stream" }, streams.map((s) => h("option", { value: s.name, selected: s.name === stream }, s.name)));
  const atInput = h("input", { id: "p-at", name: "at", type: "text", value: at, placeholder: "head", list: "points", autocomplete: "off", "aria-describedby": "point-help" });
  const compareInput = h("input", { id: "p-compare", name: "compare", type: "text", value: compare, placeholder: "none", list: "points", autocomplete: "off" });
  const points = h("datalist", { id: "points" }, h("option", { value: "head" }));
  const timeInput = h("input", { id: "p-time", type: "datetime-local", step: 1 });
  timeInput.addEventListener("change", () => {
    const date = new Date(timeInput.value);
    if (!isNaN(date)) atInput.value = date.toISOString();
  });
  const headVersion = head ? head.version : 0;
  const slider = h("input", { id: "p-slider", type: "range", min: 0, max: headVersion, step: 1, value: headVersion, "aria-label": "Version of the stream's history" });
  const sliderValue = h("output", { for: "p-slider", id: "p-slider-value" }, `v${headVersion}`);
  const form = h(
    "form",
    { class: "points", "aria-label": "Point in history" },
    h("div", { class: "field" }, h("label", { for: "p-stream" }, "Stream"), streamSelect),
    h("div", { class: "field" }, h("label", { for: "p-at" }, "At"), atInput),
    h("div", { class: "field" }, h("label", { for: "p-time" }, "or at a time"), timeInput),
    h("div", { class: "field" }, h("label", { for: "p-compare" }, "Compare with"), compareInput),
    h("div", { class: "field actions" }, h("button", { type: "submit", class: "primary" }, "Show")),
    h("div", { class: "field slider" }, h("label", { for: "p-slider" }, "History"), slider, sliderValue),
    h("p", { id: "point-help", class: "help" }, "A version (3), a time (2026-12-04T10:00Z) or a tag; empty for the head. Compare colours what changed from the first point to the second."),
    points,
  );
  const navigateTo = (changes) => {
    const query = { at, compare, focus, ...changes };
    ctx.navigate(route("schema", query.stream || stream, { at: query.at, compare: query.compare, focus: query.focus }));
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    navigateTo({ stream: streamSelect.value, at: atInput.value.trim(), compare: compareInput.value.trim() });
  });
  streamSelect.addEventListener("change", () => ctx.navigate(route("schema", streamSelect.value)));
  slider.addEventListener("input", () => (sliderValue.textContent = `v${slider.value}`));
  slider.addEventListener("change", () => navigateTo({ at: String(slider.value) }));

  const search = h("input", { id: "d-search", type: "search", placeholder: "table name", list: "table-names", autocomplete: "off" });
  const names = h("datalist", { id: "table-names" });
  const searchForm = h(
    "form",
    { class: "diagram-tools", role: "search", "aria-label": "Find a table" },
    h("label", { for: "d-search" }, "Find table"),
    search,
    names,
    h("button", { type: "submit" }, "Find"),
    h("button", { type: "button", id: "d-focus" }, "Focus"),
    focus ? h("a", { class: "button", id: "d-all", href: route("schema", stream, { at, compare }) }, "Show all tables") : null,
    h("span", { class: "spacer" }),
    h("button", { type: "button", id: "d-zoom-in", "aria-label": "Zoom in" }, "+"),
    h("button", { type: "button", id: "d-zoom-out", "aria-label": "Zoom out" }, "−"),
    h("button", { type: "button", id: "d-fit" }, "Fit"),
  );

  fill(
    main,
    h("h1", {}, "Schema ", h("span", { class: "muted", id: "schema-point" }, "")),
    form,
    searchForm,
    legend,
    h("div", { class: "schema-view" }, canvas, panel),
    h("p", { class: "help" }, "Drag to pan, scroll to zoom. With the diagram focused: arrows pan, + and − zoom, 0 fits, Tab moves from table to table, Enter opens one."),
  );

  api(`/v1/streams/${enc(stream)}/tags`)
    .then((tags) => {
      for (const t of tags) points.append(h("option", { value: t.name }, `v${t.version}`));
    })
    .catch(() => {});

  let schema;
  let baseSchema = null;
  let marks = null;
  try {
    const [found, base, diff] = await reads;
    schema = found;
    if (compare) {
      baseSchema = base;
      marks = compareMarks(diff.changes, base);
    }
  } catch (error) {
    fill(canvas, errorBox(error));
    main.dataset.ready = "true";
    return;
  }
  slider.value = String(compare ? baseSchema.version : schema.version);
  sliderValue.textContent = `v${slider.value}`;
  fill(
    main.querySelector("#schema-point"),
    compare ? `${stream}: v${baseSchema.version} compared with v${schema.version}` : `${stream} at v${schema.version}`,
  );

  if (marks) {
    const c = marks.counts;
    const k = marks.columnCounts;
    fill(
      legend,
      h("span", { class: "swatch added" }, "added"),
      h("span", { class: "swatch dropped" }, "dropped"),
      h("span", { class: "swatch renamed" }, "renamed"),
      h("span", { class: "swatch changed" }, "changed"),
      h("span", { class: "muted" }, ` Tables: ${c.added} added, ${c.dropped} dropped, ${c.renamed} renamed. Columns: ${k.added} added, ${k.dropped} dropped, ${k.renamed} renamed, ${k.changed} changed.`),
      marks.lines.length
        ? h("details", { class: "changes" }, h("summary", {}, `${marks.lines.length} changes in words`), h("ul", {}, marks.lines.map((l) => h("li", {}, l))))
        : null,
    );
  }

  const started = performance.now();
  const full = model(schema, marks, marks ? marks.dropped : null);
  for (const n of full.nodes) names.append(h("option", { value: n.name }));
  let shownModel = full;
  if (focus && full.byName.has(focus)) shownModel = neighbourhood(full, focus, 1);
  performance.mark("diagram-model");
  const size = layout(shownModel);
  performance.mark("diagram-layout");
  const pointOf = compare || at || "head";
  let diagram = null;

  async function showBlame(tableName, columnName) {
    const node = shownModel.byName.get(tableName);
    const column = node && node.columns.find((c) => c.name === columnName);
    const dropped = (column && column.mark && column.mark.change === "dropped") || (node && node.mark && node.mark.change === "dropped");
    fill(panel, h("h2", {}, `${tableName}.${columnName}`), h("p", { role: "status" }, "Reading its blame…"));
    let blameTable = tableName;
    let blamePoint = pointOf;
    if (dropped && baseSchema) {
      blamePoint = at || "head";
      blameTable = (node.mark && node.mark.from) || tableName;
    }
    try {
      const blame = await api(`/v1/streams/${enc(stream)}/blame/${enc(blameTable)}`, { params: { at: blamePoint } });
      const line = blame.lines.find((l) => l.kind === "column" && l.name === columnName);
      if (!line) {
        fill(panel, h("h2", {}, `${tableName}.${columnName}`), h("p", {}, "No blame for this column at this point."));
        return;
      }
      const withStream = (who) => (who ? { ...who, stream } : who);
      fill(
        panel,
        h("h2", { id: "blame-title" }, `${tableName}.${columnName}`),
        column ? h("p", { class: "type" }, h("code", {}, column.type), column.pk ? " primary key" : "", column.fk ? " foreign key" : "", column.nullable === false ? " not null" : "") : null,
        column && column.mark ? h("p", { class: `badge ${column.mark.change}` }, column.mark.change, column.mark.from ? ` from ${column.mark.from}` : "") : null,
        h(
          "dl",
          { class: "blame", "aria-labelledby": "blame-title", id: "blame" },
          blameEntry("Created by", withStream(line.created)),
          blameEntry("Last changed by", withStream(line.last_changed)),
          line.former_names && line.former_names.length ? [h("dt", {}, "Former names"), h("dd", {}, line.former_names.join(", "))] : null,
        ),
        h("p", {}, h("a", { href: route("timeline", { stream, table: tableName, column: columnName }) }, "Every change to this column")),
        h("button", { type: "button", class: "link", onclick: () => showTable(tableName) }, `Back to table ${tableName}`),
      );
    } catch (error) {
      fill(panel, h("h2", {}, `${tableName}.${columnName}`), h("p", { class: "error", role: "alert" }, message(error)));
    }
  }

  function showTable(tableName) {
    const node = shownModel.byName.get(tableName) || full.byName.get(tableName);
    if (!node) return;
    diagram.highlight(tableName);
    const related = new Set();
    for (const e of full.edges) {
      if (e.child === tableName) related.add(e.parent);
      if (e.parent === tableName) related.add(e.child);
    }
    related.delete(tableName);
    fill(
      panel,
      h("h2", {}, tableName),
      node.mark ? h("p", { class: `badge ${node.mark.change}` }, node.mark.change, node.mark.from ? ` from ${node.mark.from}` : "") : null,
      h(
        "ul",
        { class: "columns", "aria-label": `Columns of ${tableName}` },
        node.columns.map((c) =>
          h(
            "li",
            {},
            h(
              "button",
              { type: "button", class: `link col-button${c.mark ? " " + c.mark.change : ""}`, onclick: () => showBlame(tableName, c.name), "aria-label": `Blame of column ${c.name}` },
              c.name,
            ),
            " ",
            h("code", {}, c.type),
            c.pk ? " PK" : "",
            c.fk ? " FK" : "",
            c.mark ? h("span", { class: "muted" }, ` (${c.mark.change}${c.mark.from ? " from " + c.mark.from : ""})`) : null,
          ),
        ),
      ),
      related.size
        ? h("p", {}, "Related: ", [...related].sort().map((r, i) => [i ? ", " : "", h("a", { href: route("schema", stream, { at, compare, focus: r }) }, r)]))
        : null,
      h(
        "p",
        {},
        h("a", { href: route("schema", stream, { at, compare, focus: tableName }) }, "Focus on it and its neighbours"),
        " · ",
        h("a", { href: route("timeline", { stream, table: tableName }) }, "Its timeline"),
      ),
    );
  }

  diagram = mountDiagram(canvas, shownModel, size, {
    label: `Entity-relationship diagram of ${stream}: ${shownModel.nodes.length} tables, ${shownModel.edges.length} foreign keys`,
    onSelect: (tableName, columnName) => (columnName ? (diagram.highlight(tableName), showBlame(tableName, columnName)) : showTable(tableName)),
  });
  if (focus && shownModel.byName.has(focus)) {
    diagram.highlight(focus);
    showTable(focus);
  }
  const find = () => {
    const text = search.value.trim().toLowerCase();
    if (!text) return null;
    const all = shownModel.nodes.map((n) => n.name);
    return all.find((n) => n.toLowerCase() === text) || all.find((n) => n.toLowerCase().startsWith(text)) || all.find((n) => n.toLowerCase().includes(text)) || null;
  };
  searchForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = find();
    if (!name) {
      const other = full.byName.has(search.value.trim()) ? search.value.trim() : null;
      if (other) return ctx.navigate(route("schema", stream, { at, compare, focus: other }));
      fill(panel, h("p", { role: "alert" }, `No table matches “${search.value}”.`));
      return;
    }
    diagram.show(name);
    showTable(name);
  });
  main.querySelector("#d-focus").addEventListener("click", () => {
    const name = find() || focus;
    if (name) ctx.navigate(route("schema", stream, { at, compare, focus: name }));
  });
  main.querySelector("#d-zoom-in").addEventListener("click", () => diagram.zoomIn());
  main.querySelector("#d-zoom-out").addEventListener("click", () => diagram.zoomOut());
  main.querySelector("#d-fit").addEventListener("click", () => diagram.fit());

  // ready: laid out, drawn and every handler attached (bench/web.py waits for this)
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  canvas.dataset.tables = String(shownModel.nodes.length);
  canvas.dataset.renderMs = String(Math.round(performance.now() - started));
  performance.mark("diagram-ready");
  main.dataset.ready = "true";
  return () => diagram && diagram.destroy();
}
