// The entity-relationship diagram: tables (their columns, types and keys) as SVG boxes, foreign keys as
// edges; laid out automatically, panned and zoomed.
//
// Layout: the tables are split into connected components (by foreign key). A small component is laid out
// by dagre (vendored), a large one by a layered layout of our own (longest path ranks, barycentre order,
// tall ranks wrapped into columns): dagre's cost grows much faster than the table count. The components
// are then packed on shelves. The SVG is built as one string and parsed once (fast for thousands of
// elements); events are delegated from the root. At a distant zoom the column rows are hidden (CSS).

import { layout as dagreLayout, graphlib } from "./vendor/dagre-3.1.3.esm.js";
import { esc } from "./dom.js";

export const ROW = 18;
export const HEAD = 26;
const CHAR = 7.2; // the diagram's 12px monospace advance
const GAP = 28;
const RANK_GAP = 90;
const DAGRE_MAX = 40; // components larger than this get the layered layout (dagre: 6.7 s for 1,000 tables)
const EAGER_MAX = 150; // diagrams larger than this draw column rows only for the tables in view
const FAR = 0.45; // below this zoom, column rows are not shown

/**
 * The diagram model of a schema document (GET /schema?format=json): nodes (tables) and edges (foreign
 * keys), each column with its key marks. `marks` (from a comparison) gives each table and column a change.
 */
export function model(schema, marks = null, extraDropped = null) {
  const nodes = [];
  const byName = new Map();
  const tables = Object.values(schema.tables || {});
  for (const t of tables) {
    const pk = new Set(t.primary_key || []);
    const fkCols = new Set();
    for (const c of t.constraints || []) if (c.kind === "foreign_key") for (const col of c.columns) fkCols.add(col);
    const tableMark = marks ? marks.table(t.name) : null;
    const columns = t.columns.map((c) => ({
      name: c.name,
      type: c.type,
      nullable: c.nullable,
      pk: pk.has(c.name),
      fk: fkCols.has(c.name),
      mark: marks ? marks.column(t.name, c.name) : null,
    }));
    if (extraDropped && extraDropped.columns.has(t.name)) {
      for (const c of extraDropped.columns.get(t.name)) columns.push({ ...c, mark: { change: "dropped" } });
    }
    const node = { name: t.name, columns, mark: tableMark, constraints: t.constraints || [] };
    nodes.push(node);
    byName.set(t.name, node);
  }
  if (extraDropped) {
    for (const t of extraDropped.tables) {
      if (byName.has(t.name)) continue;
      const pk = new Set(t.primary_key || []);
      const node = {
        name: t.name,
        columns: t.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable, pk: pk.has(c.name), fk: false, mark: { change: "dropped" } })),
        mark: { change: "dropped" },
        constraints: [],
      };
      nodes.push(node);
      byName.set(t.name, node);
    }
  }
  // a table that is itself unchanged but whose columns changed is marked changed
  for (const node of nodes) {
    if (!node.mark && node.columns.some((c) => c.mark)) node.mark = { change: "changed" };
  }
  const edges = [];
  for (const node of nodes) {
    for (const c of node.constraints) {
      if (c.kind !== "foreign_key" || !c.references || !byName.has(c.references.table)) continue;
      edges.push({ name: c.name, child: node.name, parent: c.references.table, columns: c.columns, refColumns: c.references.columns });
    }
  }
  for (const node of nodes) {
    const widest = node.columns.reduce(
      (m, c) => Math.max(m, c.name.length + c.type.length + 6 + (c.mark && c.mark.from ? c.mark.from.length + 3 : 0)),
      node.name.length + 4 + (node.mark ? markText(node.mark).length : 0),
    );
    node.w = Math.min(420, Math.max(150, Math.ceil(widest * CHAR) + 20));
    node.h = HEAD + ROW * node.columns.length + 6;
  }
  return { nodes, edges, byName };
}

/** The tables of `m` within `depth` foreign keys of `name` (either way). */
export function neighbourhood(m, name, depth = 1) {
  const keep = new Set([name]);
  let frontier = [name];
  for (let i = 0; i < depth; i++) {
    const next = [];
    for (const e of m.edges) {
      for (const [a, b] of [[e.child, e.parent], [e.parent, e.child]]) {
        if (frontier.includes(a) && !keep.has(b)) {
          keep.add(b);
          next.push(b);
        }
      }
    }
    frontier = next;
  }
  const nodes = m.nodes.filter((n) => keep.has(n.name));
  const edges = m.edges.filter((e) => keep.has(e.child) && keep.has(e.parent));
  return { nodes, edges, byName: new Map(nodes.map((n) => [n.name, n])) };
}

function components(nodes, edges) {
  const parent = new Map(nodes.map((n) => [n.name, n.name]));
  const find = (x) => {
    while (parent.get(x) !== x) {
      parent.set(x, parent.get(parent.get(x)));
      x = parent.get(x);
    }
    return x;
  };
  for (const e of edges) {
    const a = find(e.child);
    const b = find(e.parent);
    if (a !== b) parent.set(a, b);
  }
  const groups = new Map();
  for (const n of nodes) {
    const root = find(n.name);
    if (!groups.has(root)) groups.set(root, { nodes: [], edges: [] });
    groups.get(root).nodes.push(n);
  }
  for (const e of edges) groups.get(find(e.child)).edges.push(e);
  return [...groups.values()];
}

function layoutDagre(comp) {
  const g = new graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "LR", nodesep: GAP, ranksep: RANK_GAP, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of comp.nodes) g.setNode(n.name, { width: n.w, height: n.h });
  for (const e of comp.edges) if (e.child !== e.parent) g.setEdge(e.parent, e.child, {}, e.name);
  dagreLayout(g);
  let maxX = 0;
  let maxY = 0;
  for (const n of comp.nodes) {
    const p = g.node(n.name);
    n.x = p.x - n.w / 2;
    n.y = p.y - n.h / 2;
  }
  let minX = Infinity;
  let minY = Infinity;
  for (const n of comp.nodes) {
    minX = Math.min(minX, n.x);
    minY = Math.min(minY, n.y);
  }
  for (const n of comp.nodes) {
    n.x -= minX;
    n.y -= minY;
    maxX = Math.max(maxX, n.x + n.w);
    maxY = Math.max(maxY, n.y + n.h);
  }
  return { w: maxX, h: maxY };
}

/** Our layered layout: referenced tables left of the tables referencing them. */
function layoutLayered(comp, maxHeight) {
  const parents = new Map(comp.nodes.map((n) => [n.name, []]));
  const children = new Map(comp.nodes.map((n) => [n.name, []]));
  for (const e of comp.edges) {
    if (e.child === e.parent) continue;
    parents.get(e.child).push(e.parent);
    children.get(e.parent).push(e.child);
  }
  const rank = new Map();
  const state = new Map(); // 1 visiting, 2 done (a back edge of a cycle counts as nothing)
  const visit = (start) => {
    const stack = [[start, 0]];
    state.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const ps = parents.get(top[0]);
      if (top[1] < ps.length) {
        const p = ps[top[1]++];
        if (!state.has(p)) {
          state.set(p, 1);
          stack.push([p, 0]);
        }
        continue;
      }
      let r = 0;
      for (const p of ps) if (state.get(p) === 2) r = Math.max(r, rank.get(p) + 1);
      rank.set(top[0], r);
      state.set(top[0], 2);
      stack.pop();
    }
  };
  for (const n of comp.nodes) if (!state.has(n.name)) visit(n.name);
  const ranks = [];
  for (const n of comp.nodes) {
    const r = rank.get(n.name);
    (ranks[r] ||= []).push(n);
  }
  const index = new Map();
  const place = () => ranks.forEach((nodes) => nodes && nodes.forEach((n, i) => index.set(n.name, i)));
  place();
  const bary = (n, near) => {
    const xs = near.get(n.name).filter((m) => index.has(m)).map((m) => index.get(m));
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : index.get(n.name);
  };
  for (let sweep = 0; sweep < 2; sweep++) {
    for (let r = 1; r < ranks.length; r++) {
      if (!ranks[r]) continue;
      const score = new Map(ranks[r].map((n) => [n.name, bary(n, parents)]));
      ranks[r].sort((a, b) => score.get(a.name) - score.get(b.name));
      ranks[r].forEach((n, i) => index.set(n.name, i));
    }
    for (let r = ranks.length - 2; r >= 0; r--) {
      if (!ranks[r]) continue;
      const score = new Map(ranks[r].map((n) => [n.name, bary(n, children)]));
      ranks[r].sort((a, b) => score.get(a.name) - score.get(b.name));
      ranks[r].forEach((n, i) => index.set(n.name, i));
    }
  }
  let x = 0;
  let maxY = 0;
  for (const nodes of ranks) {
    if (!nodes) continue;
    let y = 0;
    let width = 0;
    for (const n of nodes) {
      if (y > 0 && y + n.h > maxHeight) {
        x += width + GAP * 2;
        y = 0;
        width = 0;
      }
      n.x = x;
      n.y = y;
      y += n.h + GAP;
      width = Math.max(width, n.w);
      maxY = Math.max(maxY, n.y + n.h);
    }
    x += width + RANK_GAP;
  }
  return { w: x - RANK_GAP, h: maxY };
}

/** Positions every node (x, y: its top left); the size of the whole. */
export function layout(m) {
  const comps = components(m.nodes, m.edges);
  const area = m.nodes.reduce((a, n) => a + (n.w + GAP) * (n.h + GAP), 0);
  const side = Math.max(1400, Math.sqrt(area) * 1.4);
  const boxes = comps.map((comp) => ({ comp, ...(comp.nodes.length <= DAGRE_MAX ? layoutDagre(comp) : layoutLayered(comp, side)) }));
  boxes.sort((a, b) => b.h - a.h || b.comp.nodes.length - a.comp.nodes.length);
  const rowWidth = Math.max(side, ...boxes.map((b) => b.w));
  let x = 0;
  let y = 0;
  let shelf = 0;
  let width = 0;
  for (const b of boxes) {
    if (x > 0 && x + b.w > rowWidth) {
      x = 0;
      y += shelf + RANK_GAP;
      shelf = 0;
    }
    for (const n of b.comp.nodes) {
      n.x += x;
      n.y += y;
    }
    x += b.w + RANK_GAP;
    shelf = Math.max(shelf, b.h);
    width = Math.max(width, x - RANK_GAP);
  }
  return { w: width, h: y + shelf };
}

function rowY(node, column) {
  const i = node.columns.findIndex((c) => c.name === column);
  return node.y + HEAD + ROW * Math.max(0, i) + ROW / 2 + 3;
}

function edgePath(m, e) {
  const a = m.byName.get(e.child);
  const b = m.byName.get(e.parent);
  const y1 = rowY(a, e.columns[0]);
  const y2 = rowY(b, e.refColumns && e.refColumns[0]);
  if (a === b) {
    const x = a.x + a.w;
    return `M${x} ${y1}C${x + 40} ${y1},${x + 40} ${y2},${x} ${y2}`;
  }
  const leftOfB = a.x + a.w / 2 < b.x + b.w / 2;
  const x1 = leftOfB ? a.x + a.w : a.x;
  const x2 = leftOfB ? b.x : b.x + b.w;
  const bend = Math.max(40, Math.abs(x2 - x1) / 2);
  const c1 = leftOfB ? x1 + bend : x1 - bend;
  const c2 = leftOfB ? x2 - bend : x2 + bend;
  return `M${x1} ${y1}C${c1} ${y1},${c2} ${y2},${x2} ${y2}`;
}

const CHANGE_WORDS = { added: "added", dropped: "dropped", renamed: "renamed", changed: "changed" };

function markText(mark) {
  if (!mark) return "";
  let text = CHANGE_WORDS[mark.change] || mark.change;
  if (mark.change === "renamed" && mark.from) text += ` from ${mark.from}`;
  if (mark.also) text += ` and ${mark.also}`;
  return text;
}

/** The markup of a table's column rows. */
export function columnsMarkup(n) {
  const out = [];
  n.columns.forEach((c, i) => {
    const y = HEAD + ROW * i;
    const cm = c.mark ? ` ${c.mark.change}` : "";
    const keys = (c.pk ? "PK " : "") + (c.fk ? "FK " : "");
    const aria = `Column ${c.name}, ${c.type}${c.pk ? ", primary key" : ""}${c.fk ? ", foreign key" : ""}${c.nullable === false ? ", not null" : ""}${c.mark ? ", " + markText(c.mark) : ""}`;
    out.push(`<g class="col${cm}" data-column="${esc(c.name)}"${c.mark ? ` data-change="${c.mark.change}"` : ""} aria-label="${esc(aria)}"><title>${esc(aria)}</title>`);
    out.push(`<rect class="row" y="${y}" width="${n.w}" height="${ROW}"/>`);
    out.push(`<text class="key" x="6" y="${y + 13}">${keys.trim()}</text>`);
    const was = c.mark && c.mark.change === "renamed" && c.mark.from ? `<tspan class="was"> ← ${esc(c.mark.from)}</tspan>` : "";
    out.push(`<text class="name" x="30" y="${y + 13}">${esc(c.name)}${c.nullable === false && !c.pk ? "*" : ""}${was}</text>`);
    out.push(`<text class="type" x="${n.w - 8}" y="${y + 13}" text-anchor="end">${esc(c.type)}</text></g>`);
  });
  return out.join("");
}

/**
 * The SVG markup of the laid-out model (edges under the tables). With `lazy`, each table's column rows
 * are left out (an empty <g class="cols">), to be drawn when the table is in view close enough to read.
 */
export function svgMarkup(m, lazy = false) {
  const out = [];
  out.push('<g class="edges">');
  for (const e of m.edges) {
    out.push(`<path class="fk" data-child="${esc(e.child)}" data-parent="${esc(e.parent)}" d="${edgePath(m, e)}" marker-end="url(#arrow)"><title>${esc(e.child)}(${esc(e.columns.join(", "))}) → ${esc(e.parent)}</title></path>`);
  }
  out.push("</g><g class=\"tables\">");
  for (const n of m.nodes) {
    const change = n.mark ? ` ${n.mark.change}` : "";
    const label = `Table ${n.name}, ${n.columns.length} columns${n.mark ? ", " + markText(n.mark) : ""}`;
    out.push(`<g class="table${change}" data-table="${esc(n.name)}"${n.mark ? ` data-change="${n.mark.change}"` : ""} transform="translate(${n.x},${n.y})" tabindex="0" role="button" aria-label="${esc(label)}">`);
    out.push(`<rect class="box" width="${n.w}" height="${n.h}" rx="4"/>`);
    out.push(`<rect class="head" width="${n.w}" height="${HEAD}" rx="4"/>`);
    out.push(`<text class="title" x="10" y="17">${esc(n.name)}${n.mark ? `<tspan class="note"> ${esc(markText(n.mark))}</tspan>` : ""}</text>`);
    out.push(`<g class="cols">${lazy ? "" : columnsMarkup(n)}</g></g>`);
  }
  out.push("</g>");
  return out.join("");
}

/**
 * The interactive diagram in `container`: {svg, focusTable(name), fit(), destroy()}. `onSelect(table,
 * column|null)` is called on a click (or Enter) on a table or a column.
 */
export function mountDiagram(container, m, size, { label, onSelect }) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "diagram");
  svg.setAttribute("role", "group");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("tabindex", "0");
  svg.setAttribute("aria-roledescription", "diagram");
  // (markup parsed once, in the SVG namespace, as the content of an <svg> element: no script runs from it
  // and every name in it is escaped)
  const lazy = m.nodes.length > EAGER_MAX;
  svg.innerHTML = `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" class="arrowhead"/></marker></defs><g class="viewport">${svgMarkup(m, lazy)}</g>`;
  container.replaceChildren(svg);
  performance.mark("diagram-svg");
  const viewport = svg.querySelector(".viewport");
  const view = { k: 1, x: 0, y: 0 };
  const pending = lazy ? new Map([...svg.querySelectorAll("g.table")].map((el) => [el.dataset.table, el])) : new Map();
  let filling = 0;

  // the column rows of the tables in view, once close enough to read them (large diagrams only)
  const fillInView = () => {
    filling = 0;
    if (!pending.size || view.k < FAR) return;
    const box = svg.getBoundingClientRect();
    const x0 = -view.x / view.k;
    const y0 = -view.y / view.k;
    const x1 = x0 + box.width / view.k;
    const y1 = y0 + box.height / view.k;
    for (const [name, el] of pending) {
      const n = m.byName.get(name);
      if (n.x > x1 || n.x + n.w < x0 || n.y > y1 || n.y + n.h < y0) continue;
      el.querySelector("g.cols").innerHTML = columnsMarkup(n);
      pending.delete(name);
    }
  };
  const apply = () => {
    viewport.setAttribute("transform", `translate(${view.x} ${view.y}) scale(${view.k})`);
    svg.classList.toggle("far", view.k < FAR);
    if (pending.size && view.k >= FAR && !filling) filling = requestAnimationFrame(fillInView);
  };
  const fit = () => {
    const box = svg.getBoundingClientRect();
    const w = box.width || 800;
    const hgt = box.height || 600;
    view.k = Math.min(1.4, (w - 40) / Math.max(1, size.w), (hgt - 40) / Math.max(1, size.h));
    view.x = (w - size.w * view.k) / 2;
    view.y = Math.max(20, (hgt - size.h * view.k) / 2);
    apply();
  };
  const zoomAt = (factor, cx, cy) => {
    const k = Math.min(4, Math.max(0.02, view.k * factor));
    view.x = cx - ((cx - view.x) * k) / view.k;
    view.y = cy - ((cy - view.y) * k) / view.k;
    view.k = k;
    apply();
  };
  const centre = () => {
    const box = svg.getBoundingClientRect();
    return [box.width / 2, box.height / 2];
  };

  svg.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      const box = svg.getBoundingClientRect();
      zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - box.left, e.clientY - box.top);
    },
    { passive: false },
  );
  let drag = null;
  const touches = new Map(); // two fingers: pinch to zoom about their midpoint
  let pinch = null;
  const spread = () => {
    const [a, b] = [...touches.values()];
    return [Math.hypot(a.x - b.x, a.y - b.y), (a.x + b.x) / 2, (a.y + b.y) / 2];
  };
  svg.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "touch") {
      touches.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (touches.size === 2) {
        drag = null;
        pinch = spread()[0];
        return;
      }
    }
    if (e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false, id: e.pointerId };
  });
  svg.addEventListener("pointermove", (e) => {
    if (touches.has(e.pointerId)) {
      touches.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (touches.size === 2 && pinch) {
        const [d, mx, my] = spread();
        const box = svg.getBoundingClientRect();
        zoomAt(d / pinch, mx - box.left, my - box.top);
        pinch = d;
        svg.dataset.dragged = "1";
        return;
      }
    }
    if (!drag || drag.id !== e.pointerId) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    if (!drag.moved) svg.setPointerCapture(e.pointerId);
    drag.moved = true;
    svg.classList.add("panning");
    view.x = drag.vx + dx;
    view.y = drag.vy + dy;
    apply();
  });
  const endDrag = (e) => {
    touches.delete(e.pointerId);
    if (touches.size < 2 && pinch) {
      pinch = null;
      setTimeout(() => delete svg.dataset.dragged, 0);
    }
    if (!drag || drag.id !== e.pointerId) return;
    const moved = drag.moved;
    drag = null;
    svg.classList.remove("panning");
    if (moved) {
      svg.dataset.dragged = "1";
      setTimeout(() => delete svg.dataset.dragged, 0);
    }
  };
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);
  svg.addEventListener("click", (e) => {
    if (svg.dataset.dragged) return;
    const table = e.target.closest("[data-table]");
    if (!table) return;
    const column = e.target.closest("[data-column]");
    onSelect(table.dataset.table, column ? column.dataset.column : null);
  });
  svg.addEventListener("keydown", (e) => {
    const step = 60;
    const [cx, cy] = centre();
    if (e.key === "Enter" || e.key === " ") {
      const table = e.target.closest && e.target.closest("[data-table]");
      if (table) onSelect(table.dataset.table, null);
      else return;
    } else if (e.key === "+" || e.key === "=") zoomAt(1.25, cx, cy);
    else if (e.key === "-") zoomAt(0.8, cx, cy);
    else if (e.key === "0") fit();
    else if (e.key === "ArrowLeft") (view.x += step), apply();
    else if (e.key === "ArrowRight") (view.x -= step), apply();
    else if (e.key === "ArrowUp") (view.y += step), apply();
    else if (e.key === "ArrowDown") (view.y -= step), apply();
    else return;
    e.preventDefault();
  });
  // a table reached by Tab is brought into view
  svg.addEventListener("focusin", (e) => {
    const table = e.target.closest && e.target.closest("[data-table]");
    if (table && table !== svg) show(table.dataset.table, false);
  });

  let highlighted = [];
  function highlight(name) {
    for (const el of highlighted) el.classList.remove("selected", "neighbour");
    highlighted = [];
    if (!name) return;
    const el = svg.querySelector(`[data-table="${CSS.escape(name)}"]`);
    if (el) {
      el.classList.add("selected");
      highlighted.push(el);
    }
    for (const path of svg.querySelectorAll(`path.fk[data-child="${CSS.escape(name)}"], path.fk[data-parent="${CSS.escape(name)}"]`)) {
      path.classList.add("neighbour");
      highlighted.push(path);
    }
  }

  function show(name, zoom = true) {
    const n = m.byName.get(name);
    if (!n) return false;
    const box = svg.getBoundingClientRect();
    if (zoom) view.k = Math.max(view.k, 0.9);
    const sx = n.x * view.k + view.x;
    const sy = n.y * view.k + view.y;
    const inView = sx >= 0 && sy >= 0 && sx + n.w * view.k <= box.width && sy + n.h * view.k <= box.height;
    if (zoom || !inView) {
      view.x = box.width / 2 - (n.x + n.w / 2) * view.k;
      view.y = box.height / 2 - (n.y + n.h / 2) * view.k;
      apply();
    }
    return true;
  }

  const resize = new ResizeObserver(() => {
    if (!svg.dataset.touched) fit();
  });
  svg.addEventListener("pointerdown", () => (svg.dataset.touched = "1"), { once: true });
  svg.addEventListener("wheel", () => (svg.dataset.touched = "1"), { once: true, passive: true });
  fit();
  resize.observe(container);

  return {
    svg,
    fit,
    zoomIn: () => zoomAt(1.25, ...centre()),
    zoomOut: () => zoomAt(0.8, ...centre()),
    show: (name) => {
      svg.dataset.touched = "1";
      const found = show(name, true);
      fillInView();
      return found;
    },
    highlight,
    fillNow: fillInView,
    destroy: () => resize.disconnect(),
  };
}
