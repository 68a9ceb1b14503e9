// The model picker and the chat settings panel. The picker shows the model a turn will
// use: the open conversation's (changing it changes the conversation's model), or, for a
// new conversation, the user's chat setting (changing it changes the setting). The panel
// holds the sampling settings (temperature, max tokens) of /api/chat-setting/.

import { api, ApiError, getJson } from "./api.js";
import { clear, h } from "./dom.js";
import { t } from "./i18n.js";
import { modelInEffect, state } from "./chat-state.js";

const FIELDS = ["temperature", "max_tokens"];
let modelChanged = () => {};

function status(text) {
  document.getElementById("composer-status").textContent = text;
}

// `onChange()` runs whenever the model in effect may have changed.
export function modelPicker(onChange) {
  modelChanged = onChange;
  return h(
    "div",
    { class: "model-picker" },
    h("label", { for: "model-select" }, t("model")),
    h("select", { id: "model-select", onchange: chooseModel }),
  );
}

function numberField(name, label, attributes) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: `setting-${name}` }, label),
    h("input", {
      id: `setting-${name}`,
      name,
      type: "number",
      inputmode: "decimal",
      "aria-describedby": `setting-${name}-error`,
      ...attributes,
    }),
    h("p", { id: `setting-${name}-error`, class: "field-error" }),
  );
}

export function settingsPanel() {
  // novalidate: out-of-range values go to the server, whose field errors are shown.
  const form = h(
    "form",
    { id: "settings-form", class: "settings-form", novalidate: true, onsubmit: saveSettings },
    numberField("temperature", t("temperature"), { min: 0, max: 2, step: 0.1 }),
    numberField("max_tokens", t("max_tokens"), { min: 1, max: 1000000, step: 1 }),
    h("p", { id: "settings-status", class: "settings-status", role: "status" }),
    h("button", { type: "submit", class: "primary" }, t("save")),
  );
  return h("details", { id: "settings", class: "settings" }, h("summary", {}, t("settings")), form);
}

export async function loadModelsAndSettings() {
  const [models, settings] = await Promise.all([getJson("/api/v1/models/"), getJson("/api/chat-setting/")]);
  state.models = models;
  state.settings = settings;
  clear(document.getElementById("model-select")).append(
    ...models.map((model) => h("option", { value: model.id }, model.name)),
  );
  fillSettings(settings);
  showModel();
}

function fillSettings(settings) {
  for (const name of FIELDS) {
    document.getElementById(`setting-${name}`).value = String(settings[name]);
    showFieldError(name, "");
  }
}

// The picker follows the open conversation (or the setting, for a new one).
export function showModel() {
  const select = document.getElementById("model-select");
  const model = modelInEffect();
  if (model) select.value = model.id;
  modelChanged();
}

async function chooseModel(event) {
  const model = event.currentTarget.value;
  status("");
  try {
    if (state.conversation) {
      const { body } = await api("PATCH", `/api/v1/conversations/${state.conversation.id}/`, { body: { model } });
      state.conversation = body;
    } else {
      const { body } = await api("PATCH", `/api/chat-setting/${state.settings.id}/`, { body: { ai_model: model } });
      state.settings = body;
    }
  } catch (error) {
    status(error instanceof ApiError ? error.message : String(error));
  }
  showModel();
}

function showFieldError(name, text) {
  const input = document.getElementById(`setting-${name}`);
  document.getElementById(`setting-${name}-error`).textContent = text;
  if (text) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

async function saveSettings(event) {
  event.preventDefault();
  const saved = document.getElementById("settings-status");
  saved.textContent = "";
  const body = {};
  for (const name of FIELDS) {
    const input = document.getElementById(`setting-${name}`);
    showFieldError(name, "");
    // What was typed goes as it is (a number when it reads as one): the server judges it.
    body[name] = Number.isNaN(input.valueAsNumber) ? input.value : input.valueAsNumber;
  }
  try {
    const { body: settings } = await api("PATCH", `/api/chat-setting/${state.settings.id}/`, { body });
    state.settings = settings;
    fillSettings(settings);
    saved.textContent = t("settings_saved");
  } catch (error) {
    const fields = error instanceof ApiError ? FIELDS.filter((name) => Array.isArray(error.body[name])) : [];
    for (const name of fields) showFieldError(name, error.body[name].join(" "));
    if (!fields.length) saved.textContent = error instanceof ApiError ? error.message : String(error);
    else document.getElementById(`setting-${fields[0]}`).focus();
  }
}
