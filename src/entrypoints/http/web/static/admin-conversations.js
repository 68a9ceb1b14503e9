// Every user's conversations (GET /api/admin/conversations/ with its search, user and status
// filters, a page at a time), closing and reopening them, and one conversation opened:
// its messages (GET .../{id}/, which the server audits) beside its statistics.

import { api } from "./api.js";
import { h } from "./dom.js";
import { formatTime, t } from "./i18n.js";
import { attempt, count, filteredListSection, pageState } from "./admin-common.js";

const listState = pageState({ search: "", user: "", status: "" });

function filterForm(onSubmit) {
  const { search, user, status } = listState.params;
  const form = h(
    "form",
    { class: "filters", role: "search" },
    h("div", { class: "field" }, h("label", { for: "f-search" }, t("search")), h("input", { id: "f-search", name: "search", type: "search", value: search })),
    h("div", { class: "field" }, h("label", { for: "f-user" }, t("owner")), h("input", { id: "f-user", name: "user", value: user })),
    h(
      "div",
      { class: "field" },
      h("label", { for: "f-status" }, t("status")),
      h(
        "select",
        { id: "f-status", name: "status" },
        ...["", "active", "closed"].map((value) => h("option", { value, selected: value === status }, t(value || "any"))),
      ),
    ),
    h("button", { type: "submit", class: "primary" }, t("search")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit(Object.fromEntries(new FormData(form)));
  });
  return form;
}

function conversationRow(conversation, reload) {
  const closing = conversation.status === "active";
  const path = `/api/admin/conversations/${conversation.id}/${closing ? "close" : "reopen"}/`;
  return h(
    "tr",
    { dataset: { id: conversation.id } },
    h("td", {}, h("a", { href: `#conversation/${conversation.id}` }, conversation.title || t("untitled", { id: conversation.id }))),
    h("td", {}, conversation.user_username),
    h("td", {}, t(conversation.status)),
    h("td", {}, h("time", { datetime: conversation.updated_at }, formatTime(conversation.updated_at))),
    h(
      "td",
      {},
      h(
        "button",
        { type: "button", onclick: () => attempt(async () => (await api("POST", path), await reload())) },
        closing ? t("close") : t("reopen"),
      ),
    ),
  );
}

export function conversationsSection() {
  const table = {
    path: "/api/admin/conversations/",
    id: "admin-conversations",
    what: t("all_conversations"),
    headings: [t("title"), t("owner"), t("status"), t("updated"), t("actions")],
    row: conversationRow,
    state: listState,
  };
  return filteredListSection(t("all_conversations"), table, filterForm);
}

function statsList(stats) {
  const time = (iso) => (iso ? h("time", { datetime: iso }, formatTime(iso)) : t("none"));
  const entries = [
    ["message_count", count(stats.message_count)],
    ["user_messages", count(stats.user_messages)],
    ["ai_messages", count(stats.ai_messages)],
    ["first_message", time(stats.first_message_time)],
    ["last_message", time(stats.last_message_time)],
    ["duration", t("minutes", { n: count(stats.duration_minutes) })],
  ];
  return h(
    "dl",
    { class: "stats" },
    ...entries.map(([key, value]) => h("div", { dataset: { stat: key } }, h("dt", {}, t(key)), h("dd", {}, value))),
  );
}

function messageItem(message) {
  const sender = message.sender === "user" ? "user" : "ai";
  return h(
    "li",
    { class: `message ${sender}`, dataset: { id: message.id } },
    h(
      "div",
      { class: "meta" },
      h("strong", {}, t(`sender_${sender}`)),
      " · ",
      h("time", { datetime: message.timestamp }, formatTime(message.timestamp)),
      message.status && message.status !== "completed" ? ` · ${t("message_status", { status: message.status })}` : null,
    ),
    h("div", { class: "text" }, message.content || ""),
  );
}

// The messages and the statistics of one conversation; the section's heading takes the
// focus so a keyboard or screen reader user lands on what just opened.
export async function conversationDetail(id) {
  const base = `/api/admin/conversations/${encodeURIComponent(id)}/`;
  const [{ body: conversation }, { body: stats }] = await Promise.all([api("GET", base), api("GET", `${base}stats/`)]);
  const messages = conversation.messages || [];
  return [
    h("p", {}, h("a", { href: "#conversations", class: "back" }, `← ${t("back_to_conversations")}`)),
    h("h1", { tabindex: "-1" }, conversation.title || t("untitled", { id: conversation.id })),
    h(
      "p",
      { class: "owner" },
      t("conversation_by", {
        user: conversation.user_username,
        status: t(conversation.status),
        model: conversation.model || t("no_model"),
      }),
    ),
    h("section", { "aria-labelledby": "stats-heading" }, h("h2", { id: "stats-heading" }, t("stats")), statsList(stats)),
    h(
      "section",
      { "aria-labelledby": "messages-heading" },
      h("h2", { id: "messages-heading" }, t("messages")),
      messages.length ? h("ol", { class: "transcript" }, ...messages.map(messageItem)) : h("p", {}, t("no_messages")),
    ),
  ];
}
