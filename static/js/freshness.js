// How fresh the results are: "updated 3 s ago", ticking each second, and a warning when the
// worker falls behind the votes (from /healthz) or the service cannot be reached.

function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
}

export function watchFreshness({ label, warning, texts, computedMs, healthUrl = "/healthz" }) {
  let computed = computedMs;
  // The server's clock may differ from the browser's: measure ages against the server's time.
  let skew = 0;

  function tick() {
    if (computed === null || computed === undefined) {
      label.textContent = texts.never;
      return;
    }
    const age = Math.max(0, Math.round((Date.now() - skew - computed) / 1000));
    label.textContent = age < 120
      ? format(texts.updated, { s: age })
      : format(texts.updated_min, { m: Math.floor(age / 60) });
  }

  function warn(text) {
    if (text) {
      if (warning.textContent !== text) warning.textContent = text;
      warning.hidden = false;
    } else {
      warning.hidden = true;
      warning.textContent = "";
    }
  }

  async function check() {
    try {
      const response = await fetch(healthUrl, { credentials: "same-origin", cache: "no-store" });
      const date = response.headers.get("Date");
      // Date has whole seconds: correct only a real difference of clocks.
      const measured = date ? Date.now() - Date.parse(date) : 0;
      skew = Math.abs(measured) > 2000 ? measured : 0;
      const health = await response.json();
      if (!response.ok || health.database !== "ok") warn(texts.down);
      else if (health.worker && !health.worker.ok) warn(format(texts.behind, { s: Math.round(health.worker.lag_s) }));
      else warn("");
    } catch {
      warn(texts.down);
    }
  }

  tick();
  check();
  window.setInterval(tick, 1000);
  window.setInterval(check, 10000);
  return {
    // A new result was published at `ms`.
    set(ms) {
      computed = ms;
      tick();
    },
    check,
  };
}
