// The participant page: vote on one statement at a time, by button or key; write a statement;
// change one's votes. The page is complete without this script; it only makes it live.

import { errorText, request } from "./api.js";

const root = document.getElementById("participant");
const text = JSON.parse(document.getElementById("texts").textContent);
const conversation = root.dataset.conversation;
const xid = root.dataset.xid;
const invite = root.dataset.invite;

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
}

// A participant's POST: the xid and the invite code (when the link had them) go along as
// query parameters.
function send(path, body) {
  return request("POST", `/conversations/${conversation}${path}`, {
    body,
    params: { xid, invite },
  });
}

function errorMessage(result) {
  return errorText(result, text.network);
}

// -- voting --------------------------------------------------------------------------------

const statement = document.getElementById("statement");
const statementBox = document.getElementById("statement-box");
const done = document.getElementById("done");
const progress = document.getElementById("progress");
const voteError = document.getElementById("vote-error");

function showNext(payload) {
  if (payload.statement) {
    statement.textContent = payload.statement.text;
    statement.dataset.id = String(payload.statement.id);
    statementBox.hidden = false;
    done.hidden = true;
    progress.textContent = fill(text.progress, { n: payload.voted + 1, total: payload.total });
    statement.focus();
  } else {
    statementBox.hidden = true;
    done.hidden = false;
    progress.textContent = ""; // the focused end message says it
    done.focus();
  }
}

let voting = false;

async function castVote(value) {
  if (voting || !statement || statementBox.hidden) return;
  voting = true;
  voteError.hidden = true;
  const buttons = statementBox.querySelectorAll("button.vote");
  buttons.forEach((button) => { button.disabled = true; });
  const sid = Number(statement.dataset.id);
  const result = await send("/votes", { statement_id: sid, vote: value });
  buttons.forEach((button) => { button.disabled = false; });
  voting = false;
  if (!result.ok) {
    voteError.textContent = errorMessage(result);
    voteError.hidden = false;
    return;
  }
  rememberVote(sid, statement.textContent, value);
  showNext(result.data);
  votesSinceRefresh += 1;
  if (votesSinceRefresh >= 5 || !result.data.statement) refreshStanding();
}

function shortcutsOn() {
  const box = document.getElementById("shortcuts-on");
  return Boolean(box && box.checked);
}

function onKey(event) {
  if (!shortcutsOn() || event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  const value = { a: 1, d: -1, p: 0 }[event.key.toLowerCase()];
  if (value === undefined) return;
  event.preventDefault();
  castVote(value);
}

// The switch is remembered in this browser; storage may be refused (an embedded page, a
// private window), and then the switch simply starts on.
function storedSwitch() {
  try {
    return window.localStorage.getItem("polis-like:shortcuts");
  } catch {
    return null;
  }
}

function storeSwitch(on) {
  try {
    window.localStorage.setItem("polis-like:shortcuts", on ? "on" : "off");
  } catch {
    // not remembered; it still works for this page
  }
}

function setUpShortcuts() {
  const box = document.getElementById("shortcuts-on");
  if (!box) return;
  box.checked = storedSwitch() !== "off";
  box.addEventListener("change", () => storeSwitch(box.checked));
  document.addEventListener("keydown", onKey);
}

// -- one's own votes -------------------------------------------------------------------------

function voteName(value) {
  return { 1: text.agree, "-1": text.disagree, 0: text.pass }[String(value)];
}

function rememberVote(sid, statementText, value) {
  const section = document.getElementById("mine");
  const list = section?.querySelector("ul");
  if (!list) return;
  let item = list.querySelector(`li[data-id="${sid}"]`);
  if (!item) {
    item = document.getElementById("mine-item").content.firstElementChild.cloneNode(true);
    item.dataset.id = String(sid);
    item.querySelector(".mine-text").textContent = statementText;
    list.append(item);
    document.getElementById("mine-count").textContent = String(list.children.length);
    section.hidden = false;
  }
  item.querySelector(".mine-vote").textContent = voteName(value);
  item.querySelectorAll("button[data-vote]").forEach((button) => {
    button.setAttribute("aria-pressed", String(Number(button.dataset.vote) === value));
  });
}

async function changeVote(event) {
  const button = event.target.closest("button[data-vote]");
  if (!button) return;
  const item = button.closest("li");
  const sid = Number(item.dataset.id);
  const value = Number(button.dataset.vote);
  const result = await send("/votes", { statement_id: sid, vote: value });
  const status = document.getElementById("progress");
  if (!result.ok) {
    status.textContent = errorMessage(result);
    return;
  }
  rememberVote(sid, item.querySelector(".mine-text").textContent, value);
  status.textContent = fill(text.changed, { vote: voteName(value) });
}

// -- writing a statement -------------------------------------------------------------------

function setUpWriting() {
  const form = document.getElementById("write-form");
  if (!form) return;
  const area = document.getElementById("write-text");
  const count = document.getElementById("write-count");
  const message = document.getElementById("write-message");
  const limit = Number(area.getAttribute("maxlength"));
  const update = () => {
    count.textContent = fill(text.left, { n: limit - area.value.length });
  };
  area.addEventListener("input", update);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.className = "";
    if (!area.value.trim()) {
      message.textContent = text.empty;
      message.className = "error";
      area.setAttribute("aria-invalid", "true");
      area.focus();
      return;
    }
    const result = await send("/statements", { text: area.value });
    if (!result.ok) {
      message.textContent = result.status === 409 ? text.duplicate : errorMessage(result);
      message.className = "error";
      area.setAttribute("aria-invalid", "true");
      area.focus();
      return;
    }
    area.removeAttribute("aria-invalid");
    area.value = "";
    update();
    message.textContent = result.data.status === "pending" ? text.pending : text.shown;
  });
}

// -- where one stands ----------------------------------------------------------------------

// The server renders "where you stand" from the latest result. Rather than hold an event
// stream (one server thread each), the page asks for itself again now and then: after a few
// votes, and when it becomes visible, at most once per REFRESH_MS; only that section changes.
const REFRESH_MS = 30000;
let votesSinceRefresh = 0;
let refreshedAt = Date.now();

async function refreshStanding() {
  if (Date.now() - refreshedAt < REFRESH_MS && votesSinceRefresh < 5) return;
  votesSinceRefresh = 0;
  refreshedAt = Date.now();
  let html;
  try {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    html = await response.text();
  } catch {
    return;
  }
  const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("standing-slot");
  const slot = document.getElementById("standing-slot");
  if (fresh && slot && fresh.innerHTML !== slot.innerHTML) slot.replaceChildren(...fresh.childNodes);
}

function setUpStanding() {
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshStanding();
  });
}

// -- embedding ----------------------------------------------------------------------------

function reportHeight() {
  if (!document.body.classList.contains("embed") || window.parent === window) return;
  const sendHeight = () => {
    window.parent.postMessage(
      { type: "polis-like:height", conversation, height: document.documentElement.scrollHeight },
      "*",
    );
  };
  new ResizeObserver(sendHeight).observe(document.body);
  sendHeight();
}

reportHeight();
if (root.dataset.state === "open") {
  statementBox.querySelectorAll("button.vote").forEach((button) => {
    button.addEventListener("click", () => castVote(Number(button.dataset.vote)));
  });
  setUpShortcuts();
  setUpWriting();
  setUpStanding();
}
document.getElementById("my-votes")?.addEventListener("click", changeVote);
