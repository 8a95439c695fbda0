// The moderation page: decide on statements one at a time or many at once (with one undo),
// by mouse or by keys, ban authors, and take in new submissions from the event stream.

import { errorText, listen, request } from "./api.js";
import { bindKeys } from "./moderate-keys.js";
import { format, paintCounts, paintItem, paintLog, renderItem } from "./moderate-view.js";

const texts = JSON.parse(document.getElementById("texts").textContent);
const data = JSON.parse(document.getElementById("page-data").textContent);
const base = `/conversations/${data.conversation}`;
const list = document.getElementById("queue");
const statusLine = document.getElementById("status");
const undoButton = document.getElementById("undo");
const selectAll = document.getElementById("select-all");
const selectedCount = document.getElementById("selected-count");
let undoStep = null; // [{ id, status, meta }] as they were before the last action

const items = () => [...list.querySelectorAll(":scope > .item")];
const itemOf = (id) => document.getElementById(`item-${id}`);
const picked = () => items().filter((item) => item.querySelector(".pick").checked);

function say(message, undoable = false) {
  statusLine.textContent = message;
  undoButton.hidden = !undoable;
}

function showSelection() {
  const n = picked().length;
  selectedCount.textContent = n ? format(texts.selected, { n }) : "";
  selectAll.checked = n > 0 && n === items().length;
  selectAll.indeterminate = n > 0 && n < items().length;
}

// Put the server's answer for each changed statement on its row.
function apply(statements) {
  for (const s of statements) {
    const item = itemOf(s.id);
    if (!item) continue;
    item.dataset.status = s.status;
    item.dataset.meta = String(s.is_meta);
    paintItem(item, texts);
  }
}

async function refresh() {
  const [queue, log] = await Promise.all([
    request("GET", `${base}/moderation/queue`, {
      params: { status: data.status, q: data.q, offset: data.offset, limit: data.limit },
    }),
    request("GET", `${base}/moderation/log`, { params: { limit: data.log_limit } }),
  ]);
  if (queue.ok) {
    paintCounts(queue.data.counts);
    addNew(queue.data.statements);
  }
  if (log.ok) paintLog(log.data.entries, texts);
}

// Add the rows of statements not shown yet (new submissions); say how many arrived.
function addNew(statements) {
  const fresh = statements.filter((s) => !itemOf(s.id));
  for (const s of fresh) list.append(renderItem(s, texts));
  if (fresh.length) {
    document.getElementById("empty").hidden = true;
    document.getElementById("live").textContent = format(texts.arrived, { n: fresh.length });
    showSelection();
  }
}

// Change `targets` (rows) to `change` ({status} and/or {is_meta}); remember how to undo it.
async function decide(targets, change, message) {
  if (!targets.length) return say(texts.none_selected);
  const before = targets.map((item) => ({
    id: Number(item.dataset.id),
    status: item.dataset.status,
    meta: item.dataset.meta === "true",
  }));
  const ids = before.map((b) => b.id);
  const result =
    ids.length === 1
      ? await request("PATCH", `${base}/statements/${ids[0]}`, { body: change })
      : await request("POST", `${base}/moderation`, { body: { statement_ids: ids, ...change } });
  if (!result.ok) return say(errorText(result, texts.network));
  apply(result.data.statements || [result.data]);
  undoStep = before;
  say(message, true);
  refresh();
}

async function undo() {
  if (!undoStep) return;
  const groups = new Map();
  for (const b of undoStep) {
    const key = `${b.status}|${b.meta}`;
    if (!groups.has(key)) groups.set(key, { status: b.status, is_meta: b.meta, ids: [] });
    groups.get(key).ids.push(b.id);
  }
  for (const g of groups.values()) {
    const body = { statement_ids: g.ids, status: g.status, is_meta: g.is_meta };
    const result = await request("POST", `${base}/moderation`, { body });
    if (!result.ok) return say(errorText(result, texts.network));
    apply(result.data.statements);
  }
  const first = itemOf(undoStep[0].id);
  const n = undoStep.length;
  undoStep = null;
  say(format(texts.undone, { n }));
  if (first) first.focus();
  refresh();
}

async function ban(item) {
  const banned = item.dataset.banned === "true";
  const author = item.dataset.author;
  const result = await request(banned ? "DELETE" : "PUT", `${base}/participants/${author}/ban`);
  if (!result.ok) return say(errorText(result, texts.network));
  for (const other of items().filter((i) => i.dataset.author === author)) {
    other.dataset.banned = String(result.data.banned);
    paintItem(other, texts);
  }
  say(format(result.data.banned ? texts.banned : texts.unbanned, { id: item.dataset.id }));
  refresh();
}

// One statement's action (a button or a key): accept, reject, meta, ban.
export function act(item, action) {
  const id = item.dataset.id;
  if (action === "accept") return decide([item], { status: "accepted" }, format(texts.accepted, { id }));
  if (action === "reject") return decide([item], { status: "rejected" }, format(texts.rejected, { id }));
  if (action === "meta") {
    const on = item.dataset.meta !== "true";
    return decide([item], { is_meta: on }, format(on ? texts.meta_on : texts.meta_off, { id }));
  }
  if (action === "ban" && item.dataset.author !== "") return ban(item);
  return undefined;
}

function bulk(status) {
  const targets = picked();
  const key = status === "accepted" ? texts.bulk_accepted : texts.bulk_rejected;
  return decide(targets, { status }, format(key, { n: targets.length })).then(() => {
    for (const item of targets) item.querySelector(".pick").checked = false;
    showSelection();
  });
}

list.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-act]");
  if (button) act(button.closest(".item"), button.dataset.act);
});
list.addEventListener("change", (event) => {
  if (event.target.classList.contains("pick")) showSelection();
});
selectAll.addEventListener("change", () => {
  for (const item of items()) item.querySelector(".pick").checked = selectAll.checked;
  showSelection();
});
document.getElementById("bulk-accept").addEventListener("click", () => bulk("accepted"));
document.getElementById("bulk-reject").addEventListener("click", () => bulk("rejected"));
undoButton.addEventListener("click", undo);
bindKeys({ items, act, showSelection });

for (const time of document.querySelectorAll("#log time[data-ms]")) {
  time.textContent = new Date(Number(time.dataset.ms)).toLocaleString(document.documentElement.lang);
}

let revision = null;
listen(
  data.conversation,
  () => {},
  (state) => {
    document.getElementById("live").textContent = state === "live" ? texts.live : texts.reconnecting;
  },
  {
    statements: (event) => {
      if (revision !== null && event.revision !== revision) refresh();
      revision = event.revision;
    },
  },
);
