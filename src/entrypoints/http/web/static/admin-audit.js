// The audit log (GET /api/admin/audit-log/, newest first, a page at a time): who did what
// to which target, when, filtered by actor, action and target type.

import { h } from "./dom.js";
import { formatTime, t } from "./i18n.js";
import { filteredListSection, pageState } from "./admin-common.js";

const listState = pageState({ actor: "", action: "", target_type: "" });

// {"reason": "spam", "limit": 10} as `reason: spam, limit: 10`: short enough for a cell.
function compact(details) {
  return Object.entries(details || {})
    .map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(", ");
}

function targetName(entry) {
  const type = ["conversation", "user"].includes(entry.target_type) ? t(`type_${entry.target_type}`) : entry.target_type;
  return entry.target_id === null || entry.target_id === undefined ? type : `${type} #${entry.target_id}`;
}

function auditRow(entry) {
  return h(
    "tr",
    { dataset: { id: entry.id } },
    h("td", {}, h("time", { datetime: entry.created_at }, formatTime(entry.created_at))),
    h("td", {}, entry.actor_username),
    h("td", {}, h("code", {}, entry.action)),
    h("td", {}, targetName(entry)),
    h("td", { class: "details" }, compact(entry.details)),
  );
}

function filterForm(onSubmit) {
  const { actor, action, target_type: targetType } = listState.params;
  const form = h(
    "form",
    { class: "filters" },
    h("div", { class: "field" }, h("label", { for: "a-actor" }, t("actor")), h("input", { id: "a-actor", name: "actor", value: actor })),
    h(
      "div",
      { class: "field" },
      h("label", { for: "a-action" }, t("action")),
      h("input", { id: "a-action", name: "action", value: action, placeholder: "conversation.close" }),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "a-target-type" }, t("target_type")),
      h(
        "select",
        { id: "a-target-type", name: "target_type" },
        h("option", { value: "" }, t("any")),
        ...["conversation", "user"].map((value) => h("option", { value, selected: value === targetType }, t(`type_${value}`))),
      ),
    ),
    h("button", { type: "submit", class: "primary" }, t("filter")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit(Object.fromEntries(new FormData(form)));
  });
  return form;
}

export function auditSection() {
  const table = {
    path: "/api/admin/audit-log/",
    id: "admin-audit",
    what: t("audit_log"),
    headings: [t("time"), t("actor"), t("action"), t("target"), t("details")],
    row: auditRow,
    state: listState,
  };
  return filteredListSection(t("audit_log"), table, filterForm);
}
