// The staff sign-in form: posts name and password as JSON to /api/v1/session, then goes to
// the page that sent the visitor here (the server has checked that `next` is a local path).

import { request } from "./api.js";

const texts = JSON.parse(document.getElementById("texts").textContent);
const form = document.getElementById("signin-form");
const nameField = document.getElementById("signin-name");
const passwordField = document.getElementById("signin-password");
const error = document.getElementById("signin-error");
const button = form.querySelector("button[type=submit]");

// Show `message` under the form and mark `field` (or nothing) as the one to fix.
function showError(message, field) {
  error.textContent = message;
  for (const each of [nameField, passwordField]) {
    each.setAttribute("aria-invalid", String(each === field || field === "both"));
  }
  (field === "both" ? passwordField : field || nameField).focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = nameField.value.trim();
  const password = passwordField.value;
  if (!name) return showError(texts.missing, nameField);
  if (!password) return showError(texts.missing, passwordField);
  error.textContent = "";
  const label = button.textContent;
  button.disabled = true;
  button.textContent = texts.signing;
  const result = await request("POST", "/session", { body: { name, password } });
  button.disabled = false;
  button.textContent = label;
  if (result.ok) {
    window.location.assign(form.dataset.next || "/");
  } else if (result.status === 401 || result.status === 400) {
    passwordField.value = "";
    showError(texts.wrong, "both");
  } else if (result.status === 403) {
    passwordField.value = "";
    showError(texts.disabled, null);
  } else {
    showError(texts.network, null);
  }
});
