// What the admin pages' modules share: their texts, the status line, errors beside fields,
// and refreshing a part of the page from the server's own HTML.

export const texts = JSON.parse(document.getElementById("texts").textContent);

// `template` with each {name} replaced by values[name].
export function format(template, values = {}) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

// Say `message` in the page's role="status" line (after clearing it, so that a repeated
// message is announced again).
export function announce(message) {
  const status = document.getElementById("status");
  status.textContent = "";
  window.setTimeout(() => {
    status.textContent = message;
  }, 50);
}

// Show `message` in the error element `id` (hide it for an empty message), and mark `field`.
export function showError(id, message, field = null) {
  const box = document.getElementById(id);
  box.textContent = message || "";
  box.hidden = !message;
  if (field) field.setAttribute("aria-invalid", message ? "true" : "false");
}

// Clear every error of `form`.
export function clearErrors(form) {
  for (const box of form.querySelectorAll(".field-error, .error")) {
    box.textContent = "";
    box.hidden = true;
  }
  for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
}

// Replace the element `id` with its fresh copy from the server's rendering of this page, so
// that lists are written once, in the templates.
export async function refresh(id) {
  const response = await fetch(window.location.href, { credentials: "same-origin" });
  if (!response.ok) return false;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  const replacement = fresh.getElementById(id);
  const current = document.getElementById(id);
  if (!replacement || !current) return false;
  current.replaceWith(document.adoptNode(replacement));
  return true;
}

// Put the server's message for a field next to that field when it names one ("topic is
// empty"), else in the form's own error line.
export function placeServerError(prefix, message, formErrorId) {
  for (const name of ["topic", "description", "invite_code"]) {
    if (message.startsWith(name)) {
      const field = document.getElementById(`${prefix}-${name}`);
      showError(`${prefix}-${name}-error`, message, field);
      field.focus();
      return;
    }
  }
  showError(formErrorId, message);
}
