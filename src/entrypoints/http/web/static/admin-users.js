// The accounts (GET /api/admin/users/, a page at a time) with their conversations,
// messages and this day's and month's spend, deactivate / reactivate, and each one's limits
// (budget and models, in a dialog: admin-limits.js).

import { api } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { attempt, count, money, numeric, pagedTable, pageState } from "./admin-common.js";
import { openLimits } from "./admin-limits.js";

const listState = pageState();

function userRow(user, reload) {
  const action = user.is_active ? "deactivate" : "reactivate";
  const spend = user.spend || { day: {}, month: {} };
  const standing = [user.is_active ? t("active") : t("deactivated"), user.is_staff ? t("staff") : null];
  return h(
    "tr",
    { dataset: { id: user.id, username: user.username } },
    h("td", {}, user.username),
    h("td", {}, standing.filter(Boolean).join(" · ")),
    h("td", { class: "number" }, count(user.conversation_count)),
    h("td", { class: "number" }, count(user.total_messages)),
    h("td", { class: "number" }, count(spend.day.tokens)),
    h("td", { class: "number" }, money(spend.day.cost)),
    h("td", { class: "number" }, count(spend.month.tokens)),
    h("td", { class: "number" }, money(spend.month.cost)),
    h(
      "td",
      { class: "row-actions" },
      h(
        "button",
        {
          type: "button",
          "aria-label": t("limits_for", { user: user.username }),
          onclick: (event) => {
            const opener = event.currentTarget;
            attempt(() => openLimits(user, opener));
          },
        },
        t("limits"),
      ),
      " ",
      h(
        "button",
        {
          type: "button",
          onclick: () => attempt(async () => (await api("POST", `/api/admin/users/${user.id}/${action}/`), await reload())),
        },
        t(action),
      ),
    ),
  );
}

export function usersSection() {
  const list = pagedTable({
    path: "/api/admin/users/",
    id: "admin-users",
    what: t("users"),
    headings: [
      t("account"),
      t("status"),
      numeric(t("conversations_count")),
      numeric(t("messages_count")),
      numeric(t("tokens_today")),
      numeric(t("cost_today")),
      numeric(t("tokens_month")),
      numeric(t("cost_month")),
      t("actions"),
    ],
    row: userRow,
    state: listState,
  });
  list.reload();
  return [h("h1", { tabindex: "-1" }, t("users")), list.element];
}
