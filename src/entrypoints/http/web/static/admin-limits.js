// One user's limits in a modal dialog: their budget (their own or the default; tokens and
// cost per day and month) and the models they may use, through
// /api/admin/users/{id}/budget/ and /api/admin/users/{id}/models/.

import { api, ApiError } from "./api.js";
import { clear, h } from "./dom.js";
import { t } from "./i18n.js";
import { count, money } from "./admin-common.js";

const BUDGET_FIELDS = ["daily_tokens", "monthly_tokens", "daily_cost", "monthly_cost"];

// A cost in the API's numbers back to the exact decimal text it takes (at most 9 places).
function amountText(value) {
  return value === null || value === undefined ? "" : value.toFixed(9).replace(/\.?0+$/, "");
}

// An empty field is no limit. Tokens go as integers; anything else is sent as written so
// the server, which owns the rules, says what is wrong with it next to the field.
function limitValue(name, text) {
  const value = text.trim();
  if (value === "") return null;
  if (name.endsWith("_tokens") && /^-?\d+$/.test(value)) return Number(value);
  return value;
}

function field(id, label, hint, inputmode) {
  const input = h("input", { id, type: "text", inputmode, autocomplete: "off", "aria-describedby": `${id}-hint ${id}-error` });
  const error = h("p", { class: "field-error", id: `${id}-error` });
  const element = h("div", { class: "field" }, h("label", { for: id }, label), input, h("p", { class: "field-hint", id: `${id}-hint` }, hint), error);
  return { element, input, error };
}

// Shows `error` in the fields it names ({"field": ["..."]}); whatever names no field goes to
// `alert`.
function showErrors(error, fields, alert) {
  for (const { input, error: text } of Object.values(fields)) {
    text.textContent = "";
    input.removeAttribute("aria-invalid");
  }
  alert.textContent = "";
  if (!error) return;
  const body = error instanceof ApiError ? error.body : {};
  let placed = false;
  for (const [name, messages] of Object.entries(body)) {
    if (!(name in fields) || !Array.isArray(messages)) continue;
    fields[name].error.textContent = messages.join(" ");
    fields[name].input.setAttribute("aria-invalid", "true");
    placed = true;
  }
  if (!placed) alert.textContent = error instanceof ApiError ? error.message : String(error);
}

// "Use the default" is disabled while the user is on it; when it becomes disabled under the
// focus, the focus moves to `neighbour` rather than falling to the page.
function keepFocusNear(button, disabled, neighbour) {
  const hadFocus = document.activeElement === button;
  button.disabled = disabled;
  if (hadFocus && disabled) neighbour.focus();
}

function budgetPart(path, done) {
  const fields = {};
  const standing = h("p", { class: "limits-standing" });
  const spent = h("p", { class: "limits-spent" });
  const alert = h("p", { class: "form-error", role: "alert" });
  const inputs = h("div", { class: "limits-fields" });
  const save = h("button", { type: "submit" }, t("limits_save_budget"));
  const reset = h("button", { type: "button", onclick: () => run(() => api("DELETE", path), t("limits_budget_reset")) }, t("limits_use_default"));
  const form = h(
    "form",
    { class: "limits-budget", "aria-labelledby": "limits-budget-title", novalidate: true, onsubmit: submit },
    h("h3", { id: "limits-budget-title" }, t("limits_budget")),
    standing,
    spent,
    inputs,
    alert,
    h("div", { class: "dialog-actions" }, reset, save),
  );

  function show(budget) {
    standing.textContent = budget.own ? t("limits_budget_own") : t("limits_budget_default");
    spent.textContent = t("limits_spent", {
      day_tokens: count(budget.day.spent_tokens),
      day_cost: money(budget.day.spent_cost),
      month_tokens: count(budget.month.spent_tokens),
      month_cost: money(budget.month.spent_cost),
      currency: budget.currency,
    });
    if (!inputs.childElementCount) {
      for (const name of BUDGET_FIELDS) {
        const label = t(`limits_${name}`, { currency: budget.currency });
        fields[name] = field(`limits-${name.replace("_", "-")}`, label, t("limits_empty_is_none"), name.endsWith("_tokens") ? "numeric" : "decimal");
        inputs.append(fields[name].element);
      }
    }
    fields.daily_tokens.input.value = budget.day.limit_tokens ?? "";
    fields.monthly_tokens.input.value = budget.month.limit_tokens ?? "";
    fields.daily_cost.input.value = amountText(budget.day.limit_cost);
    fields.monthly_cost.input.value = amountText(budget.month.limit_cost);
    keepFocusNear(reset, !budget.own, save);
  }

  async function run(call, message) {
    showErrors(null, fields, alert);
    try {
      show((await call()).body);
      done(message);
    } catch (error) {
      showErrors(error, fields, alert);
    }
  }

  function submit(event) {
    event.preventDefault();
    const body = Object.fromEntries(BUDGET_FIELDS.map((name) => [name, limitValue(name, fields[name].input.value)]));
    return run(() => api("PUT", path, { body }), t("limits_budget_saved"));
  }

  return { element: form, show };
}

function modelsPart(path, done) {
  const standing = h("p", { class: "limits-standing" });
  const boxes = h("div", { class: "limits-models" });
  const error = h("p", { class: "field-error", id: "limits-models-error" });
  const alert = h("p", { class: "form-error", role: "alert" });
  const save = h("button", { type: "submit" }, t("limits_save_models"));
  const reset = h("button", { type: "button", onclick: () => run(null, t("limits_models_reset")) }, t("limits_use_default"));
  const form = h(
    "form",
    { class: "limits-models-form", "aria-labelledby": "limits-models-title", onsubmit: submit },
    h("h3", { id: "limits-models-title" }, t("limits_models")),
    standing,
    h("fieldset", { "aria-describedby": "limits-models-error" }, h("legend", {}, t("limits_models_legend")), boxes),
    error,
    alert,
    h("div", { class: "dialog-actions" }, reset, save),
  );

  // `choice`: the models to offer, [{id, name}]; the user's list may name some the staff
  // member's own list leaves out, so those are offered too.
  let offeredBefore = [];
  function show(models, choice = offeredBefore) {
    offeredBefore = choice;
    standing.textContent = models.own ? t("limits_models_own") : t("limits_models_default");
    keepFocusNear(reset, !models.own, save);
    const offered = new Map(choice.map((model) => [model.id, model.name]));
    for (const id of models.allowed_models || []) if (!offered.has(id)) offered.set(id, id);
    const allowed = models.allowed_models === null ? null : new Set(models.allowed_models);
    clear(boxes);
    for (const [id, name] of offered) {
      const boxId = `limits-model-${id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
      boxes.append(
        h(
          "div",
          { class: "limits-model" },
          h("input", { type: "checkbox", id: boxId, value: id, checked: allowed === null || allowed.has(id) }),
          h("label", { for: boxId }, name === id ? id : t("limits_model_label", { name, id })),
        ),
      );
    }
  }

  async function run(allowedModels, message) {
    error.textContent = "";
    alert.textContent = "";
    try {
      const { body } = await api("PUT", path, { body: { allowed_models: allowedModels } });
      show(body);
      done(message);
    } catch (failure) {
      const messages = failure instanceof ApiError ? failure.body.allowed_models : null;
      if (Array.isArray(messages)) error.textContent = messages.join(" ");
      else alert.textContent = failure instanceof ApiError ? failure.message : String(failure);
    }
  }

  function submit(event) {
    event.preventDefault();
    const checked = [...boxes.querySelectorAll("input:checked")].map((box) => box.value);
    return run(checked, t("limits_models_saved"));
  }

  return { element: form, show };
}

// Opens the dialog for `user` ({id, username}); focus goes back to `opener` when it closes.
export async function openLimits(user, opener) {
  const base = `/api/admin/users/${user.id}`;
  const [budget, models, choice] = await Promise.all([
    api("GET", `${base}/budget/`),
    api("GET", `${base}/models/`),
    api("GET", "/api/v1/models/"),
  ]);
  const status = h("p", { class: "limits-status", role: "status" });
  const done = (message) => (status.textContent = message);
  const budgetForm = budgetPart(`${base}/budget/`, done);
  const modelsForm = modelsPart(`${base}/models/`, done);
  budgetForm.show(budget.body);
  // The staff member's usable models with their names; the ids are what the API stores.
  modelsForm.show(models.body, choice.body.map((model) => ({ id: model.id, name: model.name || model.id })));
  const dialog = h(
    "dialog",
    { class: "limits-dialog", "aria-labelledby": "limits-title" },
    h(
      "div",
      { class: "limits-header" },
      h("h2", { id: "limits-title" }, t("limits_for", { user: user.username })),
      h("button", { type: "button", onclick: () => dialog.close() }, t("limits_close")),
    ),
    status,
    budgetForm.element,
    modelsForm.element,
  );
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (opener && opener.isConnected) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
}
