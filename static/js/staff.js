// The staff pages' header: "Sign out" ends the session (DELETE /api/v1/session) for real.

import { request } from "./api.js";

const button = document.getElementById("sign-out");
if (button) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    const result = await request("DELETE", "/session");
    button.disabled = false;
    if (result.ok) window.location.assign(button.dataset.done);
  });
}
