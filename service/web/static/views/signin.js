// Sign in with an API token (kept in sessionStorage: this tab, this session only).

import { h, message } from "../dom.js";

export function renderSignin(main, { notice, next, signIn, done }) {
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-help",
  });
  const status = h("p", { id: "signin-status", role: "alert", class: "error", hidden: !notice || notice === "Signed out." });
  if (notice && notice !== "Signed out.") status.textContent = notice;
  const note = notice === "Signed out." ? h("p", { class: "note", role: "status" }, "Signed out.") : null;
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "signin card", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to schemalog"),
    note,
    h("label", { for: "token" }, "API token"),
    input,
    h(
      "p",
      { id: "token-help", class: "help" },
      "A token made by ",
      h("code", {}, "schemalog token create --name NAME --role ROLE"),
      ". It is kept for this browser tab only and forgotten when you sign out or close it.",
    ),
    button,
    status,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const secret = input.value.trim();
    if (!secret) return;
    button.disabled = true;
    status.hidden = true;
    try {
      await signIn(secret);
      done(next);
    } catch (error) {
      status.textContent = error.status === 401 ? `Not signed in: ${message(error)}` : message(error);
      status.hidden = false;
      button.disabled = false;
      input.focus();
    }
  });
  main.append(form);
  main.dataset.ready = "true";
  input.focus();
}
