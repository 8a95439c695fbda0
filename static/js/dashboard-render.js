// The dashboard's lists and tables, rebuilt from a results document with its texts: the same
// as server/web/dashboard_view.py and dashboard.html render before any script runs (keep them
// in step). User text goes in with textContent only.

const SVG = "http://www.w3.org/2000/svg";
const SHOWN = 5;
const TABLE_ROWS = 20;

export function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
}

function element(name, attributes = {}, text = null) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

function svg(name, attributes = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

export function bars(agree, disagree, seen) {
  const passes = Math.max(0, seen - agree - disagree), total = Math.max(seen, 1);
  return {
    agree, disagree, pass: passes, seen,
    pa: Math.round((100 * agree) / total),
    pd: Math.round((100 * disagree) / total),
    pp: Math.round((100 * passes) / total),
  };
}

function overall(doc, sid) {
  const s = doc.statements[String(sid)];
  return bars(s.agree, s.disagree, s.agree + s.disagree + s.pass);
}

function bar(b, texts) {
  const box = element("div", { class: "bar" });
  const graph = svg("svg", { class: "bar-graph", viewBox: "0 0 100 6", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" });
  graph.append(
    svg("rect", { class: "b-agree", x: 0, y: 0, height: 6, width: b.pa }),
    svg("rect", { class: "b-disagree", x: b.pa, y: 0, height: 6, width: b.pd }),
    svg("rect", { class: "b-pass", x: b.pa + b.pd, y: 0, height: 6, width: b.pp }),
  );
  box.append(graph, element("p", { class: "bar-text" }, format(texts.bar, { ...b, n: b.seen })));
  return box;
}

function statementList(list, items, texts) {
  list.replaceChildren(
    ...(items.length ? items.map((item) => {
      const li = element("li", { "data-id": item.id });
      li.append(element("p", { class: "statement-text", dir: "auto" }, item.text));
      if (item.score !== undefined) li.append(element("p", { class: "hint" }, format(texts.informed_score, item)));
      li.append(bar(item.bars, texts));
      return li;
    }) : [element("li", { class: "hint" }, texts.none)]),
  );
}

export function shapeIcon(shape, name) {
  const icon = svg("svg", { class: `shape-icon g-${shape}`, viewBox: "-12 -12 24 24", width: 24, height: 24, "aria-hidden": "true", focusable: "false" });
  const text = svg("text", { x: 0, y: 4, "text-anchor": "middle" });
  text.textContent = name;
  icon.append(svg("use", { href: `#shape-${shape}` }), text);
  return icon;
}

// The view of a document (as dashboard_view.view): groups, consensus, group-informed consensus.
export function view(doc, texts, shapes) {
  const known = (sid) => Object.prototype.hasOwnProperty.call(doc.texts || {}, String(sid));
  const text = (sid) => doc.texts[String(sid)];
  const groups = doc.groups.map((group) => ({
    id: group.id, name: group.name, size: group.size, shape: shapes[group.id % shapes.length],
    statements: group.representative.filter((r) => known(r.statement)).slice(0, SHOWN).map((r) => ({
      id: r.statement, text: text(r.statement),
      bars: bars(group.votes.agree[r.statement], group.votes.disagree[r.statement], group.votes.seen[r.statement]),
    })),
  }));
  const consensus = {};
  for (const side of ["agree", "disagree"]) {
    consensus[side] = (doc.consensus[side] || []).filter((m) => known(m.statement)).slice(0, SHOWN)
      .map((m) => ({ id: m.statement, text: text(m.statement), bars: overall(doc, m.statement) }));
  }
  const informed = Object.entries(doc.statements)
    .filter(([sid, s]) => s.group_informed_consensus !== null && !s.moderated_out && known(sid))
    .sort((a, b) => b[1].group_informed_consensus - a[1].group_informed_consensus || Number(b[0]) - Number(a[0]))
    .slice(0, SHOWN)
    .map(([sid, s]) => ({ id: Number(sid), text: text(sid), score: Math.round(100 * s.group_informed_consensus), bars: overall(doc, sid) }));
  return { groups, consensus, informed };
}

export function renderLists(shown, texts) {
  const box = document.getElementById("groups");
  box.replaceChildren(...shown.groups.map((group) => {
    const article = element("article", { class: "group", "data-group": group.id });
    const heading = element("h3");
    heading.append(shapeIcon(group.shape, group.name), ` ${format(texts.group, group)}: ${format(texts.members, { n: group.size })}`);
    const list = element("ol", { class: "statements", id: `rep-${group.id}` });
    statementList(list, group.statements, texts);
    article.append(heading, list);
    return article;
  }));
  statementList(document.getElementById("consensus-agree"), shown.consensus.agree, texts);
  statementList(document.getElementById("consensus-disagree"), shown.consensus.disagree, texts);
  statementList(document.getElementById("informed"), shown.informed, texts);
}

// The map's table twin: each group's size and centre (from the map's own summary).
export function renderGroupsTable(shown, summary, texts) {
  const body = document.querySelector("#groups-table tbody");
  body.replaceChildren(...shown.groups.map((group) => {
    const row = element("tr");
    const head = element("th", { scope: "row" });
    head.append(shapeIcon(group.shape, group.name), ` ${format(texts.group, group)}`);
    const centre = summary.groups[group.id] && summary.groups[group.id].centre;
    const place = element("td");
    place.append(centre ? element("span", { dir: "ltr" }, `${centre[0].toFixed(2)}, ${centre[1].toFixed(2)}`) : "–");
    row.append(head, element("td", {}, String(group.size)), place);
    return row;
  }));
}

export function renderSeriesTable(series, texts) {
  const table = document.getElementById("series-table");
  const latest = series.slice(-TABLE_ROWS).reverse();
  table.querySelector("caption").textContent = format(texts.caption, { n: latest.length, total: series.length });
  table.querySelector("tbody").replaceChildren(...latest.map((point) => {
    const when = new Date(point.computed_ms);
    const time = element("time", { datetime: when.toISOString().slice(0, 19) + "+00:00" },
      when.toISOString().slice(0, 19).replace("T", " "));
    const cell = element("td");
    cell.append(time);
    const row = element("tr");
    row.append(element("th", { scope: "row" }, String(point.tick)), cell,
      element("td", {}, String(point.participants)), element("td", {}, String(point.votes)));
    return row;
  }));
}
