// Accounts: create one, disable or enable it, set a new password, issue or revoke tokens,
// delete. A password or a token shows once, in the secret box, with a copy button.

import { errorText, request } from "./api.js";
import { announce, clearErrors, format, refresh, showError, texts } from "./admin-ui.js";

// Show the secrets of an answer ({label: value}) once, with copy buttons; focus the box.
function showSecret(title, values) {
  const box = document.getElementById("secret");
  const list = document.getElementById("secret-values");
  const template = document.getElementById("secret-item");
  list.replaceChildren();
  for (const [label, value] of Object.entries(values)) {
    const item = template.content.firstElementChild.cloneNode(true);
    item.querySelector("dt").textContent = label;
    item.querySelector("code").textContent = value;
    const copy = item.querySelector("button.copy");
    copy.setAttribute("aria-label", `${copy.textContent} ${label}`);
    copy.addEventListener("click", () => copyText(value, item.querySelector("code")));
    list.append(item);
  }
  document.getElementById("secret-title").textContent = title;
  box.hidden = false;
  box.focus();
  announce(title);
}

async function copyText(value, code) {
  try {
    await navigator.clipboard.writeText(value);
    announce(texts.copied);
  } catch {
    window.getSelection().selectAllChildren(code);
    announce(texts.copy_failed);
  }
}

function hideSecret() {
  const box = document.getElementById("secret");
  document.getElementById("secret-values").replaceChildren();
  box.hidden = true;
  document.getElementById("accounts-title").focus();
}

// After a change: the fresh list, focus on the account's row (or the heading when it is gone).
async function refreshAccounts(id, message) {
  await refresh("accounts");
  const row = id === null ? null : document.getElementById(`account-${id}`);
  (row || document.getElementById("accounts-title")).focus();
  if (message) announce(message);
}

async function act(action, row) {
  const { id, name } = row.dataset;
  const base = `/accounts/${id}`;
  let result;
  if (action === "password") {
    if (!window.confirm(format(texts.confirm_reset, { name }))) return;
    result = await request("POST", `${base}/password`, { body: {} });
    if (result.ok) showSecret(format(texts.password_reset, { name }), { [texts.password]: result.data.password });
  } else if (action === "token") {
    result = await request("POST", `${base}/tokens`, { body: {} });
    if (result.ok) {
      await refresh("accounts");
      showSecret(format(texts.token_made, { name }), { [texts.token]: result.data.token });
    }
  } else if (action === "revoke") {
    result = await request("DELETE", `${base}/tokens`);
    if (result.ok) await refreshAccounts(id, format(texts.revoked, { count: result.data.revoked, name }));
  } else if (action === "disable" || action === "enable") {
    const disabled = action === "disable";
    if (disabled && !window.confirm(format(texts.confirm_disable, { name }))) return;
    result = await request("PATCH", base, { body: { disabled } });
    if (result.ok) await refreshAccounts(id, format(disabled ? texts.disabled : texts.enabled, { name }));
  } else if (action === "delete") {
    if (!window.confirm(format(texts.confirm_delete, { name }))) return;
    result = await request("DELETE", base);
    if (result.ok) await refreshAccounts(null, format(texts.deleted, { name }));
  }
  if (result && !result.ok) announce(errorText(result, texts.network));
}

export function setUpAccounts(form) {
  document.getElementById("secret-hide").addEventListener("click", hideSecret);
  // One listener for every row, also the rows a refresh brings.
  document.getElementById("accounts-title").parentElement.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    act(button.dataset.action, button.closest(".account"));
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const name = form.elements.name;
    if (!name.value.trim()) {
      showError("account-name-error", texts.name_empty, name);
      name.focus();
      return;
    }
    const body = { name: name.value, role: form.elements.role.value };
    if (form.elements.password.value) body.password = form.elements.password.value;
    const result = await request("POST", "/accounts", { body });
    if (!result.ok) {
      const message = errorText(result, texts.network);
      const field = message.includes("password") ? form.elements.password : name;
      showError(`${field.id}-error`, message, field);
      field.focus();
      announce(message);
      return;
    }
    form.reset();
    await refresh("accounts");
    showSecret(format(texts.account_made, { name: result.data.name }), {
      [texts.password]: result.data.password,
      [texts.token]: result.data.token,
    });
  });
}
