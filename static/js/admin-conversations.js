// Create a conversation (with seed statements), change its settings, import a Pol.is export.

import { apiUrl, errorText, request } from "./api.js";
import { announce, clearErrors, format, placeServerError, refresh, showError, texts } from "./admin-ui.js";
import { checkSeeds, seedsFromCsv } from "./admin-seeds.js";

// The settings of a form as the API takes them.
function settingsOf(form) {
  const settings = {
    topic: form.elements.topic.value,
    description: form.elements.description.value,
    moderation: form.elements.moderation.value,
    write_enabled: form.elements.write_enabled.checked,
    map_enabled: form.elements.map_enabled.checked,
    xid_mode: form.elements.xid_mode.value,
    invite_code: form.elements.invite_code.value.trim() || null,
  };
  if (form.elements.is_open) settings.is_open = form.elements.is_open.checked;
  return settings;
}

function topicMissing(form, prefix) {
  if (form.elements.topic.value.trim()) return false;
  showError(`${prefix}-topic-error`, texts.topic_empty, form.elements.topic);
  form.elements.topic.focus();
  return true;
}

// List each problem of the seed box by line number, beside it.
function showSeedProblems(problems) {
  const list = document.getElementById("create-seeds-error");
  list.replaceChildren(
    ...problems.map((problem) => {
      const item = document.createElement("li");
      item.textContent = format(texts[problem.key], problem);
      return item;
    }),
  );
  list.hidden = problems.length === 0;
  document.getElementById("create-seeds").setAttribute("aria-invalid", problems.length ? "true" : "false");
}

async function readCsv(input, seedBox) {
  const file = input.files[0];
  showError("create-csv-error", "");
  if (!file) return;
  const { seeds, header } = seedsFromCsv(await file.text());
  seedBox.value = seeds.join("\n");
  const { problems } = checkSeeds(seedBox.value, Number(seedBox.dataset.limit));
  showSeedProblems(problems);
  let message = format(texts.csv_read, { count: seeds.length, file: file.name });
  if (header) message += ` ${texts.csv_header}`;
  announce(message);
  seedBox.focus();
}

export function setUpCreate(form) {
  const seedBox = document.getElementById("create-seeds");
  document.getElementById("create-csv").addEventListener("change", (event) => readCsv(event.target, seedBox));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (topicMissing(form, "create")) return;
    const { seeds, problems } = checkSeeds(seedBox.value, Number(seedBox.dataset.limit));
    showSeedProblems(problems);
    if (problems.length) {
      announce(format(texts.seeds_bad, { count: problems.length }));
      seedBox.focus();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const result = await request("POST", "/conversations", { body: { ...settingsOf(form), seed_statements: seeds } });
    button.disabled = false;
    if (!result.ok) {
      placeServerError("create", errorText(result, texts.network), "create-error");
      announce(errorText(result, texts.network));
      return;
    }
    form.reset();
    await showNew(result.data.id, format(texts.created, { topic: result.data.topic, count: seeds.length }));
  });
}

// Refresh the list of conversations, mark the new one, move focus to it and say so.
async function showNew(id, message) {
  if (new URL(window.location.href).searchParams.get("page") > 1) {
    window.location.assign(`${window.location.pathname}?created=${id}#conversation-${id}`);
    return;
  }
  await refresh("conversations");
  const item = document.getElementById(`conversation-${id}`);
  if (item) {
    item.classList.add("created");
    item.querySelector("h3").focus();
  }
  announce(message);
}

export function setUpSettings(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (topicMissing(form, "edit")) return;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const result = await request("PATCH", `/conversations/${form.dataset.conversation}`, { body: settingsOf(form) });
    button.disabled = false;
    if (!result.ok) {
      placeServerError("edit", errorText(result, texts.network), "edit-error");
      announce(errorText(result, texts.network));
      return;
    }
    document.getElementById("conversation-topic").textContent = result.data.topic;
    announce(texts.saved);
  });
}

// The moderators given a conversation: the checked accounts, saved at once.
export function setUpModerators(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ids = [...form.querySelectorAll("input[name=account]:checked")].map((box) => Number(box.value));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const result = await request("PUT", `/conversations/${form.dataset.conversation}/moderators`, {
      body: { account_ids: ids },
    });
    button.disabled = false;
    if (!result.ok) {
      showError("moderators-error", errorText(result, texts.network));
      announce(errorText(result, texts.network));
      return;
    }
    showError("moderators-error", "");
    announce(texts.saved);
  });
}

// The import: the upload's progress from the browser, then a line saying the server works.
export function setUpImport(form) {
  const box = document.getElementById("import-progress");
  const bar = document.getElementById("import-bar");
  const state = document.getElementById("import-state");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form);
    const input = form.elements.file;
    if (!input.files.length) {
      showError("import-file-error", texts.choose_file, input);
      input.focus();
      return;
    }
    const data = new FormData();
    data.append("file", input.files[0]);
    if (form.elements.topic.value.trim()) data.append("topic", form.elements.topic.value);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    box.hidden = false;
    bar.value = 0;
    state.textContent = format(texts.uploading, { percent: 0 });
    const xhr = new XMLHttpRequest();
    xhr.open("POST", apiUrl("/conversations/import"));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (progress) => {
      if (!progress.lengthComputable) return;
      const percent = Math.round((100 * progress.loaded) / progress.total);
      bar.value = percent;
      state.textContent = format(texts.uploading, { percent });
    });
    xhr.upload.addEventListener("load", () => {
      bar.removeAttribute("value"); // indeterminate: the server is reading the export
      state.textContent = texts.importing;
    });
    const fail = (message) => {
      button.disabled = false;
      box.hidden = true;
      showError("import-file-error", message, input);
      input.focus();
      announce(message);
    };
    xhr.addEventListener("error", () => fail(texts.network));
    xhr.addEventListener("load", async () => {
      const body = xhr.response;
      if (xhr.status !== 201) {
        fail(errorText({ data: body }, texts.network));
        return;
      }
      button.disabled = false;
      box.hidden = true;
      form.reset();
      await showNew(body.id, format(texts.imported, { topic: body.topic }));
    });
    xhr.send(data);
  });
}
