// The fleet (GET /v1/databases): every database with its marker, target, status, lag, last outcome and
// drift, read again whenever the change feed reports an event. A deployer may set a target, approve the
// next changeset a database waits for, or resume a halted rollout.

import { api } from "../api.js";
import { errorBox, fill, h, message, route, time } from "../dom.js";

const enc = encodeURIComponent;

export async function renderFleet(main, ctx) {
  document.title = "Fleet · schemalog";
  const deployer = ctx.session.can("deployer");
  const body = h("tbody", {});
  const status = h("p", { role: "status", "aria-live": "polite", class: "list-status" }, "Loading…");
  const actionStatus = h("p", { role: "status", "aria-live": "polite", class: "action-status" });
  const updated = h("p", { class: "muted", id: "fleet-updated" });
  const headers = ["Database", "Stream", "Wave", "Status", "Marker", "Target", "Lag", "Last outcome", "Detail and drift"];
  if (deployer) headers.push("Actions");
  fill(
    main,
    h("h1", {}, "Fleet"),
    h("p", { class: "help" }, "Every registered database, as the log and the daemon's leases say; it updates as changes are recorded."),
    status,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data fleet", id: "fleet" },
        h("caption", { class: "visually-hidden" }, "Databases of the fleet"),
        h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
        body,
      ),
    ),
    actionStatus,
    updated,
  );

  async function act(label, fn) {
    actionStatus.textContent = `${label}…`;
    try {
      await fn();
      actionStatus.textContent = `${label}: done.`;
      await refresh();
    } catch (error) {
      actionStatus.textContent = `${label}: ${message(error)}`;
    }
  }

  async function approveNext(db) {
    // the first changeset the database waits for (the API's awaiting_approval), else the one after the marker
    const waiting = (db.awaiting_approval || [])[0];
    if (waiting) {
      await api(`/v1/streams/${enc(db.stream)}/changesets/${enc(waiting.changeset_id)}/approvals`, { method: "POST", body: {} });
      return;
    }
    const wanted = (db.marker || 0) + 1;
    const page = await api("/v1/changesets", { params: { stream: db.stream, limit: 200 } });
    const next = page.changesets.find((c) => c.first_version <= wanted && wanted <= c.last_version);
    if (!next) throw new Error(`no changeset holds v${wanted} of ${db.stream}`);
    await api(`/v1/streams/${enc(db.stream)}/changesets/${enc(next.changeset_id)}/approvals`, { method: "POST", body: {} });
  }

  function actions(db) {
    const input = h("input", { type: "text", name: "target", value: db.target, size: 8, id: `target-${db.name}`, "aria-label": `New target of ${db.name}` });
    const setTarget = h(
      "form",
      { class: "inline" },
      input,
      h("button", { type: "submit" }, "Set target"),
    );
    setTarget.addEventListener("submit", (e) => {
      e.preventDefault();
      const target = input.value.trim();
      if (target) act(`Target of ${db.name} set to ${target}`, () => api(`/v1/databases/${enc(db.name)}/target`, { method: "PUT", body: { target } }));
    });
    const out = [setTarget];
    if (db.status === "Halted") {
      out.push(
        h("button", {
          type: "button",
          class: "resume",
          onclick: () => act(`Rollout of ${db.stream} resumed`, () => api(`/v1/streams/${enc(db.stream)}/rollout/resume`, { method: "POST", body: { to_version: db.target_version } })),
        }, "Resume rollout"),
      );
    }
    if (db.status !== "Ready" && ((db.awaiting_approval || []).length || (db.detail && /approv/i.test(db.detail)))) {
      out.push(h("button", { type: "button", class: "approve", onclick: () => act(`Next changeset for ${db.name} approved`, () => approveNext(db)) }, "Approve next"));
    }
    return h("td", { class: "actions" }, out);
  }

  function row(db) {
    return h(
      "tr",
      { dataset: { database: db.name, status: db.status, marker: db.marker ?? "" } },
      h("th", { scope: "row" }, db.name),
      h("td", {}, h("a", { href: route("schema", db.stream) }, db.stream)),
      h("td", {}, String(db.wave)),
      h("td", {}, h("span", { class: `badge status-${db.status.toLowerCase()}` }, db.status)),
      h("td", { class: "marker" }, db.marker === null || db.marker === undefined ? "—" : `v${db.marker}`),
      h("td", { class: "target" }, db.target, db.target_version !== null && String(db.target_version) !== db.target ? h("span", { class: "muted" }, ` (v${db.target_version})`) : null),
      h("td", {}, db.lag === null || db.lag === undefined ? "—" : String(db.lag)),
      h("td", {}, db.last_outcome ? [db.last_outcome.replace(/_/g, " "), h("br"), time(db.last_outcome_at)] : h("span", { class: "muted" }, "none yet")),
      h(
        "td",
        { class: "detail" },
        db.detail || "",
        db.drift && db.drift.length ? h("ul", { class: "drift", "aria-label": "Drift" }, db.drift.map((d) => h("li", {}, d))) : null,
        db.owner ? h("div", { class: "muted" }, `run by ${db.owner}`) : null,
        db.next_attempt ? h("div", { class: "muted" }, "next attempt ", time(db.next_attempt)) : null,
      ),
      deployer ? actions(db) : null,
    );
  }

  let stopped = false;
  let pending = null;
  let running = false;
  let again = false;
  async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const databases = await api("/v1/databases");
      if (stopped) return;
      const focused = document.activeElement && body.contains(document.activeElement) ? document.activeElement.id : null;
      fill(body, databases.map(row));
      if (focused && main.querySelector(`[id="${CSS.escape(focused)}"]`)) main.querySelector(`[id="${CSS.escape(focused)}"]`).focus();
      status.textContent = databases.length ? `${databases.length} database${databases.length > 1 ? "s" : ""}.` : "No database is registered (schemalog db add).";
      fill(updated, "Updated ", time(new Date().toISOString()));
    } catch (error) {
      fill(status, errorBox(error));
    } finally {
      running = false;
      main.dataset.ready = "true";
    }
    if (again && !stopped) {
      again = false;
      refresh();
    }
  }
  const off = ctx.feed.on(() => {
    if (!pending) pending = setTimeout(() => ((pending = null), refresh()), 200);
  });
  // the daemon's leases (Reconciling, Stalled) are not in the log: read them again now and then too
  const timer = setInterval(refresh, 60000);
  await refresh();
  return () => {
    stopped = true;
    off();
    clearInterval(timer);
    if (pending) clearTimeout(pending);
  };
}
