// The admin page (staff only; the server refuses everyone else): every user's
// conversations with the search and filters of GET /api/admin/conversations/, closing and
// reopening them, and the accounts with deactivate / reactivate.

import { api, ApiError } from "./api.js";
import { signOut } from "./auth.js";
import { clear, currentUser, h } from "./dom.js";
import { register, t } from "./i18n.js";

register({
  en: {
    all_conversations: "All conversations",
    users: "Users",
    search: "Search",
    owner: "User",
    status: "Status",
    any: "any",
    active: "active",
    closed: "closed",
    title: "Title",
    messages_count: "Messages",
    actions: "Actions",
    reopen: "Reopen",
    deactivate: "Deactivate",
    reactivate: "Reactivate",
    account: "Account",
    conversations_count: "Conversations",
  },
  zh: {
    all_conversations: "全部对话",
    users: "用户",
    search: "搜索",
    owner: "用户",
    status: "状态",
    any: "全部",
    active: "进行中",
    closed: "已关闭",
    title: "标题",
    messages_count: "消息数",
    actions: "操作",
    reopen: "重新打开",
    deactivate: "停用",
    reactivate: "恢复",
    account: "账户",
    conversations_count: "对话数",
  },
});

const app = document.getElementById("app");
const problem = h("p", { class: "form-error", role: "alert" });

async function act(method, path, then) {
  problem.textContent = "";
  try {
    await api(method, path);
    await then();
  } catch (error) {
    problem.textContent = error instanceof ApiError ? error.message : String(error);
  }
}

function table(headings, rows) {
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, ...headings.map((heading) => h("th", { scope: "col" }, heading)))),
    h("tbody", {}, ...rows),
  );
}

async function showConversations(target, filters) {
  const query = new URLSearchParams(Object.entries(filters).filter(([, value]) => value));
  const { body } = await api("GET", `/api/admin/conversations/?${query}`);
  const rows = (Array.isArray(body) ? body : body.results || []).map((conversation) => {
    const closing = conversation.status === "active";
    const path = `/api/admin/conversations/${conversation.id}/${closing ? "close" : "reopen"}/`;
    return h(
      "tr",
      { dataset: { id: conversation.id } },
      h("td", {}, conversation.title || "—"),
      h("td", {}, conversation.user_username),
      h("td", {}, t(conversation.status)),
      h(
        "td",
        {},
        h(
          "button",
          { type: "button", onclick: () => act("POST", path, () => showConversations(target, filters)) },
          closing ? t("close") : t("reopen"),
        ),
      ),
    );
  });
  clear(target).append(table([t("title"), t("owner"), t("status"), t("actions")], rows));
}

async function showUsers(target) {
  const { body } = await api("GET", "/api/admin/users/");
  const rows = (Array.isArray(body) ? body : body.results || []).map((user) => {
    const action = user.is_active ? "deactivate" : "reactivate";
    return h(
      "tr",
      {},
      h("td", {}, user.username),
      h("td", {}, String(user.conversation_count)),
      h("td", {}, String(user.total_messages)),
      h(
        "td",
        {},
        h(
          "button",
          { type: "button", onclick: () => act("POST", `/api/admin/users/${user.id}/${action}/`, () => showUsers(target)) },
          t(action),
        ),
      ),
    );
  });
  clear(target).append(table([t("account"), t("conversations_count"), t("messages_count"), t("actions")], rows));
}

function render() {
  const results = h("div", { id: "admin-conversations" });
  const users = h("div", { id: "admin-users" });
  const filters = h(
    "form",
    { class: "filters", role: "search" },
    h("div", { class: "field" }, h("label", { for: "f-search" }, t("search")), h("input", { id: "f-search", name: "search", type: "search" })),
    h("div", { class: "field" }, h("label", { for: "f-user" }, t("owner")), h("input", { id: "f-user", name: "user" })),
    h(
      "div",
      { class: "field" },
      h("label", { for: "f-status" }, t("status")),
      h(
        "select",
        { id: "f-status", name: "status" },
        h("option", { value: "" }, t("any")),
        h("option", { value: "active" }, t("active")),
        h("option", { value: "closed" }, t("closed")),
      ),
    ),
    h("button", { type: "submit", class: "primary" }, t("search")),
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    act("GET", "/api/admin/conversations/", () => showConversations(results, Object.fromEntries(new FormData(filters))));
  });
  clear(app).append(
    h(
      "main",
      { id: "main" },
      h("header", {}, h("a", { href: "/" }, t("chat")), " · ", h("span", {}, currentUser().username), " ", h("button", { type: "button", onclick: signOut }, t("sign_out"))),
      h("h1", {}, t("all_conversations")),
      filters,
      problem,
      results,
      h("h2", {}, t("users")),
      users,
    ),
  );
  showConversations(results, {});
  showUsers(users);
}

render();
