// The shell: the session (sign in and out), the hash router and the shared change feed.
//
// Routes (every view a permalink): #/timeline?table=users, #/changeset/<stream>/<id>,
// #/schema/<stream>?at=3&compare=5&focus=users, #/fleet, #/signin.

import { api, Feed, setUnauthenticatedHandler, token } from "./api.js";
import { allows, fill, h, message } from "./dom.js";
import { renderSignin } from "./views/signin.js";
import { renderTimeline } from "./views/timeline.js";
import { renderChangeset } from "./views/changeset.js";
import { renderSchema } from "./views/schema.js";
import { renderFleet } from "./views/fleet.js";

const VIEWS = {
  timeline: renderTimeline,
  changeset: renderChangeset,
  schema: renderSchema,
  fleet: renderFleet,
};

const main = document.getElementById("main");
const feed = new Feed();
const session = { principal: null, can: (role) => !!session.principal && allows(session.principal.role, role) };
let cleanup = null;
let rendered = null;
let renders = 0; // each render's number: a view still loading when the next one starts is cleaned up

/** The route of a hash: {view, segments, params}. */
export function parseHash(hash) {
  const text = (hash || "").replace(/^#\/?/, "");
  const [path, query = ""] = text.split("?", 2);
  const segments = path.split("/").filter(Boolean).map((s) => decodeURIComponent(s));
  const view = segments.shift() || "timeline";
  return { view, segments, params: new URLSearchParams(query) };
}

function announce(text) {
  const box = document.getElementById("announce");
  box.textContent = "";
  setTimeout(() => (box.textContent = text), 50);
}

function showChrome() {
  const signedIn = !!session.principal;
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  if (signedIn) {
    const p = session.principal;
    fill(document.getElementById("principal"), h("span", { class: "name" }, p.name), " ", h("span", { class: "role badge" }, p.role));
  }
}

async function signIn(secret) {
  const principal = await api("/v1/whoami", { bearer: secret });
  token.set(secret);
  session.principal = principal;
  showChrome();
  feed.start();
  return principal;
}

function signOut(reason) {
  token.clear();
  session.principal = null;
  feed.stop();
  showChrome();
  const back = location.hash && !location.hash.startsWith("#/signin") ? location.hash : "";
  rendered = null;
  renderRoute({ view: "signin", segments: [], params: new URLSearchParams(back ? { next: back } : {}) }, reason);
}

setUnauthenticatedHandler((problem) => {
  if (session.principal) signOut((problem && problem.detail) || "the token no longer authenticates: sign in again");
});

async function renderRoute(route, notice) {
  if (cleanup) {
    try {
      cleanup();
    } catch (error) {
      console.error(error);
    }
    cleanup = null;
  }
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === route.view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.body.dataset.view = route.view;
  const seq = ++renders;
  // each view draws into its own element: one still loading after the next has started writes into a
  // detached element, never over the page shown
  const root = h("div", { class: "view", dataset: { view: route.view } });
  fill(main, root);
  if (route.view === "signin" || !session.principal) {
    document.title = "Sign in · schemalog";
    cleanup = renderSignin(root, {
      notice,
      next: route.params.get("next") || (route.view === "signin" ? "" : location.hash),
      signIn,
      done: (next) => {
        rendered = null;
        const target = next && !next.startsWith("#/signin") ? next : "#/timeline";
        if (location.hash === target) onHash();
        else location.hash = target;
      },
    });
    return;
  }
  const view = VIEWS[route.view];
  if (!view) {
    fill(root, h("h1", {}, "Not found"), h("p", {}, "No such page: ", h("a", { href: "#/timeline" }, "the timeline")));
    root.dataset.ready = "true";
    return;
  }
  const ctx = { ...route, session, feed, announce, navigate: (hash, replace) => navigate(hash, replace) };
  window.scrollTo(0, 0);
  try {
    const done = (await view(root, ctx)) || null;
    if (seq !== renders) {
      if (done) done();
      return;
    }
    cleanup = done;
    // a screen reader's focus follows the page (unless the view put it somewhere itself)
    if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
  } catch (error) {
    fill(root, h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, message(error)));
    root.dataset.ready = "true";
  }
}

function navigate(hash, replace = false) {
  if (replace) {
    history.replaceState(null, "", hash);
    onHash();
  } else {
    location.hash = hash;
  }
}

function onHash() {
  const key = location.hash || "#/timeline";
  if (key === rendered) return;
  rendered = key;
  renderRoute(parseHash(key));
}

window.addEventListener("hashchange", onHash);
document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));
feed.onStatus((status) => {
  const box = document.getElementById("feed-status");
  box.dataset.status = status;
  box.textContent = status === "live" ? "● live" : status === "reconnecting" ? "○ reconnecting…" : "";
  box.title = status === "live" ? "new changes appear as they are recorded" : "";
});

async function boot() {
  const saved = token.get();
  if (saved) {
    try {
      await signIn(saved);
    } catch (error) {
      token.clear();
      rendered = location.hash;
      renderRoute(parseHash("#/signin"), message(error));
      return;
    }
  }
  rendered = null;
  onHash();
}

boot();
