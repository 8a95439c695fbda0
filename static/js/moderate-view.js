// The moderation page's DOM: statement rows (cloned from the page's <template>, user text only
// through textContent), their state, the counts and the log.

const template = document.getElementById("item-template");

// Fill `template`'s `{id}` and `{n}` placeholders.
export function format(text, values) {
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

// Show a row's status, meta flag and author's ban in its badges and buttons.
export function paintItem(item, texts) {
  const { status, meta, banned } = item.dataset;
  const badge = item.querySelector(".status-badge");
  badge.textContent = texts.statuses[status];
  badge.dataset.status = status;
  item.querySelector(".meta-badge").hidden = meta !== "true";
  item.querySelector("[data-act=meta]").setAttribute("aria-pressed", meta);
  const ban = item.querySelector("[data-act=ban]");
  if (ban) ban.textContent = banned === "true" ? texts.unban : texts.ban;
}

// A new row for statement `s` (a queue document's statement).
export function renderItem(s, texts) {
  const item = template.content.firstElementChild.cloneNode(true);
  const id = String(s.id);
  Object.assign(item.dataset, {
    id,
    status: s.status,
    meta: String(s.is_meta),
    author: s.author === null ? "" : String(s.author),
    banned: String(s.author_banned),
  });
  item.id = `item-${id}`;
  item.setAttribute("aria-labelledby", `text-${id}`);
  const pick = item.querySelector(".pick");
  pick.id = `pick-${id}`;
  pick.setAttribute("aria-label", format(texts.select_one, { id }));
  item.querySelector(".number").textContent = `#${id}`;
  const text = item.querySelector(".text");
  text.id = `text-${id}`;
  text.textContent = s.text;
  item.querySelector(".actions").setAttribute("aria-label", format(texts.decide, { id }));
  if (s.author === null) item.querySelector("[data-act=ban]").remove();
  if (s.near_duplicates.length) item.append(nearList(s.near_duplicates, texts));
  paintItem(item, texts);
  return item;
}

function nearList(near, texts) {
  const box = document.createElement("div");
  box.className = "near";
  const title = document.createElement("p");
  title.className = "near-title";
  title.textContent = texts.near;
  const list = document.createElement("ul");
  for (const n of near) {
    const li = document.createElement("li");
    const text = document.createElement("span");
    text.dir = "auto";
    text.textContent = n.text;
    const note = document.createElement("span");
    note.className = "hint";
    note.textContent = ` (#${n.id}, ${texts.statuses[n.status]})`;
    li.append(text, note);
    list.append(li);
  }
  box.append(title, list);
  return box;
}

// Show the counts of each status in the tabs.
export function paintCounts(counts) {
  for (const [name, n] of Object.entries(counts)) {
    const place = document.getElementById(`count-${name}`);
    if (place) place.textContent = String(n);
  }
}

// Replace the log's rows with `entries` (newest first).
export function paintLog(entries, texts) {
  const body = document.getElementById("log");
  const empty = document.getElementById("log-empty");
  if (empty) empty.hidden = entries.length > 0;
  body.replaceChildren(
    ...entries.map((e) => {
      const row = document.createElement("tr");
      const when = document.createElement("td");
      const time = document.createElement("time");
      time.dateTime = new Date(e.created_ms).toISOString();
      time.textContent = new Date(e.created_ms).toLocaleString(document.documentElement.lang);
      when.append(time);
      const who = document.createElement("td");
      who.dir = "auto";
      who.textContent = e.account_name ?? texts.someone;
      const what = document.createElement("td");
      let line = texts.actions[e.action] ?? e.action;
      if (e.statement !== null) line += ` #${e.statement}`;
      if (e.participant !== null) line += ` (${format(texts.participant, { pid: e.participant })})`;
      what.textContent = line;
      row.append(when, who, what);
      return row;
    }),
  );
}
