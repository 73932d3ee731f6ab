// Small DOM helpers shared by the views: elements from data (never from HTML text), times, roles.

export const ROLES = ["reader", "author", "deployer", "admin"];

/** Whether `role` includes `needed` (reader < author < deployer < admin). */
export function allows(role, needed) {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed) && ROLES.indexOf(needed) >= 0;
}

/**
 * An element: h("a", {href: "#/x", class: "y", onclick: fn}, "text", child, [more]).
 * Attributes named on* become listeners; false/null attributes are left out; children may be
 * strings, nodes, arrays or null.
 */
export function h(tag, attrs, ...children) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A <time> of an ISO timestamp, shown in the viewer's locale, the ISO text as its tooltip. */
export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  const shown = isNaN(date) ? iso : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  return h("time", { datetime: iso, title: iso }, shown);
}

/** How long ago, in words ("3 min ago"). */
export function ago(iso) {
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  if (!isFinite(seconds)) return "";
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A problem document's message (or an error's). */
export function message(error) {
  if (error && error.problem) return error.problem.detail || error.problem.title || String(error);
  return error && error.message ? error.message : String(error);
}

/** An alert box for an error. */
export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, message(error));
}

/** A route's hash: route("changeset", stream, id) -> "#/changeset/<stream>/<id>", query from an object. */
export function route(...parts) {
  let query = null;
  if (parts.length && typeof parts[parts.length - 1] === "object") query = parts.pop();
  let hash = "#/" + parts.map((p) => encodeURIComponent(p)).join("/");
  if (query) {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === null || v === undefined || v === "") continue;
      for (const one of Array.isArray(v) ? v : [v]) search.append(k, one);
    }
    const text = search.toString();
    if (text) hash += "?" + text;
  }
  return hash;
}

/** Escape text for SVG/HTML markup built as a string (the diagram, for speed). */
export function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** A short hash for display. */
export function short(hash) {
  return hash ? hash.slice(0, 12) : "";
}
