// The moderation page's single-key shortcuts: J / K move, A accept, R reject, M meta, X select.
// A switch turns them off (WCAG 2.1.4), remembered in this browser.

const KEY = "polis-like.moderate-shortcuts";
const ACTIONS = { a: "accept", r: "reject", m: "meta" };

// Whether a key press belongs to a field or carries a modifier (then it is not a shortcut).
function ignored(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return true;
  const target = event.target;
  return target.matches("input:not([type=checkbox]), textarea, select, [contenteditable]");
}

export function bindKeys({ items, act, showSelection }) {
  const toggle = document.getElementById("shortcuts-on");
  toggle.checked = window.localStorage.getItem(KEY) !== "off";
  toggle.addEventListener("change", () => {
    window.localStorage.setItem(KEY, toggle.checked ? "on" : "off");
  });
  const current = () => document.activeElement?.closest?.(".item") ?? null;
  const move = (step) => {
    const all = items();
    if (!all.length) return;
    const here = all.indexOf(current());
    const next = here < 0 ? (step > 0 ? 0 : all.length - 1) : here + step;
    all[Math.max(0, Math.min(all.length - 1, next))].focus();
  };
  document.addEventListener("keydown", (event) => {
    if (!toggle.checked || ignored(event)) return;
    const key = event.key.toLowerCase();
    if (key === "j" || key === "k") {
      event.preventDefault();
      move(key === "j" ? 1 : -1);
      return;
    }
    const item = current();
    if (!item) return;
    if (ACTIONS[key]) {
      event.preventDefault();
      const next = key === "m" ? item : items()[items().indexOf(item) + 1];
      Promise.resolve(act(item, ACTIONS[key])).then(() => (next || item).focus());
    } else if (key === "x") {
      event.preventDefault();
      const pick = item.querySelector(".pick");
      pick.checked = !pick.checked;
      showSelection();
    }
  });
}
