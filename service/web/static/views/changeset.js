// A changeset's page (GET /v1/streams/{stream}/changesets/{id}): its events in words and as recorded, its
// hashes and whether the chain verifies, its outcomes on each database, the SQL for each dialect, and
// revert (an author) and approve (a deployer).

import { api } from "../api.js";
import { errorBox, fill, h, message, route, short, time } from "../dom.js";

const DIALECTS = ["postgresql", "mysql", "sqlite"];

function sqlTabs(sql, errors) {
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "SQL dialect" });
  const panels = [];
  DIALECTS.forEach((dialect, i) => {
    const statements = (sql && sql[dialect]) || [];
    const why = errors && errors[dialect];
    const tab = h("button", {
      type: "button",
      role: "tab",
      id: `tab-${dialect}`,
      "aria-controls": `panel-${dialect}`,
      "aria-selected": i === 0 ? "true" : "false",
      tabindex: i === 0 ? "0" : "-1",
    }, dialect);
    const panel = h(
      "div",
      { role: "tabpanel", id: `panel-${dialect}`, "aria-labelledby": `tab-${dialect}`, hidden: i !== 0, tabindex: "0" },
      statements.length
        ? h("pre", { class: "sql" }, h("code", {}, statements.map((s) => s + ";").join("\n")))
        : h("p", { class: "muted" }, why || "No statements for this dialect."),
    );
    tabs.append(tab);
    panels.push(panel);
  });
  const select = (index) => {
    [...tabs.children].forEach((tab, i) => {
      tab.setAttribute("aria-selected", i === index ? "true" : "false");
      tab.tabIndex = i === index ? 0 : -1;
      panels[i].hidden = i !== index;
    });
    tabs.children[index].focus();
  };
  tabs.addEventListener("click", (e) => {
    const index = [...tabs.children].indexOf(e.target.closest("[role=tab]"));
    if (index >= 0) select(index);
  });
  tabs.addEventListener("keydown", (e) => {
    const index = [...tabs.children].indexOf(document.activeElement);
    if (index < 0) return;
    if (e.key === "ArrowRight") select((index + 1) % DIALECTS.length);
    else if (e.key === "ArrowLeft") select((index + DIALECTS.length - 1) % DIALECTS.length);
    else return;
    e.preventDefault();
  });
  return h("div", { class: "sql-tabs" }, tabs, panels);
}

function eventDetails(event, words) {
  const shown = { ...event };
  for (const k of ["stream", "changeset_id", "actor", "message", "recorded_at", "prev_hash", "hash", "position"]) delete shown[k];
  return h(
    "li",
    { class: "event" },
    h("span", { class: "version badge" }, `v${event.version}`),
    " ",
    h("span", { class: "words" }, words || event.type),
    h("details", {}, h("summary", {}, "as recorded"), h("pre", { class: "json" }, JSON.stringify(shown, null, 2))),
  );
}

export async function renderChangeset(main, ctx) {
  const [stream, id] = ctx.segments;
  if (!stream || !id) {
    fill(main, h("h1", {}, "Changeset"), h("p", { class: "error" }, "The address names no changeset."));
    return;
  }
  document.title = `Changeset ${id} · schemalog`;
  fill(main, h("p", { role: "status" }, "Loading…"));
  let c;
  try {
    c = await api(`/v1/streams/${encodeURIComponent(stream)}/changesets/${encodeURIComponent(id)}`);
  } catch (error) {
    fill(main, h("h1", {}, "Changeset"), errorBox(error), h("p", {}, h("a", { href: "#/timeline" }, "Back to the timeline")));
    main.dataset.ready = "true";
    return;
  }
  const actions = h("div", { class: "actions" });
  const actionStatus = h("p", { role: "status", "aria-live": "polite", class: "action-status" });
  if (ctx.session.can("author") && c.kind === "schema") {
    const revert = h("button", { type: "button", class: "danger", id: "revert", disabled: !c.revertible }, "Revert this changeset");
    if (!c.revertible && c.revert_blocked) revert.title = c.revert_blocked;
    revert.addEventListener("click", async () => {
      if (!confirm(`Append the inverse of changeset ${c.changeset_id} to stream ${c.stream}?`)) return;
      revert.disabled = true;
      try {
        const done = await api(`/v1/streams/${encodeURIComponent(c.stream)}/reverts`, {
          method: "POST",
          body: { target: c.changeset_id, message: `revert ${c.changeset_id}` },
        });
        if (done && done.appended) ctx.navigate(route("changeset", c.stream, done.appended.changeset_id));
        else actionStatus.textContent = "The changeset changed no schema: nothing was appended.";
      } catch (error) {
        actionStatus.textContent = message(error);
        revert.disabled = false;
      }
    });
    actions.append(revert);
    if (!c.revertible && c.revert_blocked) actions.append(h("p", { class: "muted" }, `Cannot revert: ${c.revert_blocked}`));
  }
  if (ctx.session.can("deployer") && c.kind === "schema") {
    const approve = h("button", { type: "button", id: "approve" }, "Approve");
    approve.addEventListener("click", async () => {
      approve.disabled = true;
      try {
        const done = await api(`/v1/streams/${encodeURIComponent(c.stream)}/changesets/${encodeURIComponent(c.changeset_id)}/approvals`, {
          method: "POST",
          body: {},
        });
        actionStatus.textContent = `Approved: ${done.approvers.join(", ")} (${done.required} needed).`;
      } catch (error) {
        actionStatus.textContent = message(error);
        approve.disabled = false;
      }
    });
    actions.append(approve);
  }

  const chain = c.chain || {};
  const hashes = h(
    "table",
    { class: "data" },
    h("caption", {}, "Hash chain"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Version"), h("th", { scope: "col" }, "Hash"), h("th", { scope: "col" }, "Previous hash"))),
    h(
      "tbody",
      {},
      (c.hashes || []).map((x) =>
        h("tr", {}, h("td", {}, `v${x.version}`), h("td", {}, h("code", { title: x.hash }, short(x.hash))), h("td", {}, h("code", { title: x.prev_hash }, short(x.prev_hash)))),
      ),
    ),
  );
  const outcomes = (c.outcomes || []).length
    ? h(
        "table",
        { class: "data" },
        h("caption", {}, "On each database"),
        h("thead", {}, h("tr", {}, ["Database", "Outcome", "From", "To", "By", "When", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          c.outcomes.map((o) =>
            h(
              "tr",
              {},
              h("td", {}, o.database),
              h("td", {}, h("span", { class: `badge outcome-${o.status}` }, o.status.replace(/_/g, " "))),
              h("td", {}, o.from_version ?? "—"),
              h("td", {}, o.to_version ?? "—"),
              h("td", {}, o.actor),
              h("td", {}, time(o.recorded_at)),
              h("td", {}, o.detail || ""),
            ),
          ),
        ),
      )
    : h("p", { class: "muted" }, "No database has recorded an outcome for it yet.");

  const words = c.summary || [];
  fill(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "#/timeline" }, "Timeline"), " › ", h("a", { href: route("timeline", { stream: c.stream }) }, c.stream)),
    h("h1", {}, c.message || `Changeset ${c.changeset_id}`),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Changeset"), h("dd", {}, h("code", {}, c.changeset_id)),
      h("dt", {}, "Stream"), h("dd", {}, c.stream),
      h("dt", {}, "Versions"), h("dd", {}, c.first_version === c.last_version ? `v${c.first_version}` : `v${c.first_version}–v${c.last_version}`),
      h("dt", {}, "Actor"), h("dd", { class: "actor" }, c.actor),
      h("dt", {}, "Recorded"), h("dd", {}, time(c.recorded_at)),
      h("dt", {}, "Chain"),
      h("dd", {}, h("span", { id: "chain", class: `badge ${chain.ok ? "ok" : "bad"}` }, chain.ok ? "verifies" : "does not verify"), chain.detail ? ` ${chain.detail}` : ""),
      c.tags && c.tags.length ? [h("dt", {}, "Tags"), h("dd", {}, c.tags.map((t) => h("span", { class: "tag badge" }, t)))] : null,
      h("dt", {}, "Approvals"),
      h("dd", {}, c.approvals && c.approvals.length ? c.approvals.map((a, i) => [i ? ", " : "", a.actor]) : h("span", { class: "muted" }, "none")),
    ),
    actions,
    actionStatus,
    c.kind === "schema" ? h("p", {}, h("a", { href: route("schema", c.stream, { at: String(c.first_version - 1), compare: String(c.last_version) }) }, "Show what it changed in the diagram")) : null,
    h("section", { "aria-labelledby": "events-title" }, h("h2", { id: "events-title" }, "Events"), h("ol", { class: "events" }, c.events.map((e, i) => eventDetails(e, words[i])))),
    h("section", { "aria-labelledby": "outcomes-title" }, h("h2", { id: "outcomes-title" }, "Outcomes"), outcomes),
    c.kind === "schema" ? h("section", { "aria-labelledby": "sql-title" }, h("h2", { id: "sql-title" }, "SQL"), sqlTabs(c.sql, c.sql_errors)) : null,
    h("section", { "aria-labelledby": "hash-title" }, h("h2", { id: "hash-title" }, "Hashes"), hashes),
  );
  main.dataset.ready = "true";
}
