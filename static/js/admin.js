// The admin pages: each part sets itself up when its form is on the page.

import { setUpAccounts } from "./admin-accounts.js";
import { setUpCreate, setUpImport, setUpModerators, setUpSettings } from "./admin-conversations.js";

const parts = [
  ["create-form", setUpCreate],
  ["import-form", setUpImport],
  ["settings-form", setUpSettings],
  ["moderators-form", setUpModerators],
  ["account-form", setUpAccounts],
];
for (const [id, setUp] of parts) {
  const form = document.getElementById(id);
  if (form) setUp(form);
}

// After a reload that names a new conversation (?created=), focus it.
const created = document.querySelector(".conversation.created h3");
if (created) created.focus();
