// The approver inbox: lists the calls this principal may decide
// (GET /approvals) and approves or denies them. Every value from the API is
// put into the page with textContent, never as HTML. The bearer token lives
// in sessionStorage for this tab only and travels only in the Authorization
// header. `#call=<id>` shows one call (GET /approvals/{id}).
"use strict";

const TOKEN_KEY = "fastmcp.approvals.token";
const REFRESH_MS = 5000;

const $ = (id) => document.getElementById(id);
let timer = null;

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function say(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + token() };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) {
    signOut();
    throw new Error("The token was not accepted (" + (data.detail || "unauthenticated") + ").");
  }
  if (!response.ok) {
    throw new Error((data.code || response.status) + ": " + (data.detail || response.statusText));
  }
  return data;
}

function signedIn() {
  const on = Boolean(token());
  $("sign-in").hidden = on;
  $("sign-out").hidden = !on;
  $("inbox").hidden = !on;
  return on;
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(timer);
  timer = null;
  $("approvals").replaceChildren();
  signedIn();
}

function render(view) {
  const item = $("approval-template").content.firstElementChild.cloneNode(true);
  item.dataset.callId = view.call_id;
  const set = (selector, text) => { item.querySelector(selector).textContent = text; };
  set(".tool", view.tool);
  set(".hint", view.approval.hint || "");
  set(".requester", view.requester.sub + " (" + view.requester.tenant + ")");
  set(".rule", view.approval.rule);
  set(".progress", view.approvals + " of " + view.approval.quorum);
  set(".expires", new Date(view.approval.expires_at).toLocaleString());
  set(".call-status", view.status.replaceAll("_", " "));
  set(".arguments", JSON.stringify(view.arguments, null, 2));
  const decisions = item.querySelector(".decisions");
  for (const d of view.decisions) {
    const li = document.createElement("li");
    li.textContent = d.approver.sub + " " + d.decision + (d.comment ? ": " + d.comment : "");
    decisions.append(li);
  }
  if (view.can_decide) {
    item.querySelector(".approve").addEventListener("click", () => decide(view.call_id, "approve", item));
    item.querySelector(".deny").addEventListener("click", () => decide(view.call_id, "deny", item));
  } else {
    item.querySelector(".decide").remove();
    item.querySelector(".cannot-decide").hidden = false;
  }
  return item;
}

// Re-render, keeping comments being typed.
function show(views) {
  const list = $("approvals");
  const typed = new Map();
  for (const item of list.children) {
    const comment = item.querySelector(".comment");
    if (comment && comment.value) typed.set(item.dataset.callId, comment.value);
  }
  const items = views.map((view) => {
    const item = render(view);
    const comment = item.querySelector(".comment");
    if (comment && typed.has(view.call_id)) comment.value = typed.get(view.call_id);
    return item;
  });
  list.replaceChildren(...items);
  $("empty").hidden = views.length > 0;
}

function selected() {
  const match = /^#call=([0-9a-fA-F-]{36})$/.exec(location.hash);
  return match ? match[1] : null;
}

async function refresh() {
  if (!signedIn()) return;
  try {
    const id = selected();
    if (id) {
      show([await api("GET", "/approvals/" + id)]);
    } else {
      const list = await api("GET", "/approvals");
      show(list.approvals);
      if (list.truncated) say("Showing the oldest " + list.approvals.length + " calls.");
    }
  } catch (error) {
    say(error.message, true);
  }
}

async function decide(id, verdict, item) {
  const comment = item.querySelector(".comment").value.trim();
  for (const button of item.querySelectorAll("button")) button.disabled = true;
  try {
    const view = await api("POST", "/approvals/" + id + "/" + verdict, comment ? { comment } : {});
    const done = verdict === "approve" ? "Approved" : "Denied";
    say(done + " " + view.tool + " (" + view.status.replaceAll("_", " ") + ").");
  } catch (error) {
    say(error.message, true);
  }
  await refresh();
}

function start() {
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    $("token").value = "";
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    say("");
    start();
  });
  $("sign-out").addEventListener("click", () => { signOut(); say("Signed out."); });
  window.addEventListener("hashchange", refresh);
  if (signedIn()) start();
});
