// The open conversation's title and what can be done to it: rename (inline: Enter saves,
// Escape cancels), close and reopen, delete (after a confirmation dialog). A closed
// conversation says so, and its composer is disabled with the reason.

import { api, ApiError } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { state } from "./chat-state.js";

const hooks = { changed: () => {}, deleted: () => {} };

function fail(error) {
  document.getElementById("composer-status").textContent =
    error instanceof ApiError ? error.message : String(error);
}

// The header's part: the title, a "Closed" badge, the actions and the delete dialog.
// `changed(conversation)` runs after a rename, close or reopen; `deleted()` after a delete.
export function conversationHeader({ changed, deleted }) {
  Object.assign(hooks, { changed, deleted });
  const dialog = h(
    "dialog",
    { id: "delete-dialog", "aria-labelledby": "delete-title", "aria-describedby": "delete-text" },
    h("h2", { id: "delete-title" }, t("delete_title")),
    h("p", { id: "delete-text" }),
    h("p", { id: "delete-error", class: "form-error", role: "alert" }),
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { type: "button", onclick: () => dialog.close() }, t("cancel")),
      h("button", { type: "button", class: "danger", onclick: confirmDelete }, t("delete_confirm")),
    ),
  );
  return [
    h("h1", { id: "title" }, t("pick")),
    h("span", { id: "closed-badge", class: "badge", hidden: true }, t("closed_badge")),
    h(
      "div",
      { id: "conversation-actions", class: "actions", role: "group", "aria-label": t("conversation_actions"), hidden: true },
      h("button", { type: "button", id: "rename", onclick: startRename }, t("rename")),
      h("button", { type: "button", id: "close-reopen", onclick: closeOrReopen }),
      h("button", { type: "button", id: "delete", onclick: askDelete }, t("delete_conversation")),
    ),
    dialog,
  ];
}

// Shows `conversation` (the /api/v1 shape), or a new one still to be started (null).
export function showConversation(conversation) {
  state.conversation = conversation;
  const closed = conversation !== null && conversation.status === "closed";
  document.getElementById("title").textContent = (conversation && conversation.title) || t("untitled");
  document.getElementById("closed-badge").hidden = !closed;
  document.getElementById("conversation-actions").hidden = conversation === null;
  document.getElementById("close-reopen").textContent = closed ? t("reopen_conversation") : t("close_conversation");
  document.getElementById("composer-input").disabled = closed;
  document.getElementById("send").disabled = closed;
  const note = document.getElementById("composer-note");
  note.textContent = closed ? t("closed_reason") : "";
  note.hidden = !closed;
}

function startRename() {
  const title = document.getElementById("title");
  const rename = document.getElementById("rename");
  const input = h("input", {
    id: "title-input",
    class: "title-input",
    "aria-label": t("title_label"),
    maxlength: 200,
    value: state.conversation.title || "",
  });
  let busy = false;
  const finish = () => {
    input.replaceWith(title);
    rename.hidden = false;
    rename.focus();
  };
  input.addEventListener("keydown", async (event) => {
    if (event.isComposing) return;
    if (event.key === "Escape") {
      event.preventDefault();
      busy = true;
      finish();
    } else if (event.key === "Enter") {
      event.preventDefault();
      busy = true;
      try {
        const { body } = await api("PATCH", `/api/v1/conversations/${state.conversation.id}/`, {
          body: { title: input.value },
        });
        finish();
        hooks.changed(body);
      } catch (error) {
        busy = false;
        fail(error);
      }
    }
  });
  // Leaving the field without Enter keeps the old title, as Escape does.
  input.addEventListener("blur", () => {
    if (!busy) finish();
  });
  title.replaceWith(input);
  rename.hidden = true;
  input.focus();
  input.select();
}

async function closeOrReopen() {
  const action = state.conversation.status === "closed" ? "reopen" : "close";
  document.getElementById("composer-status").textContent = "";
  try {
    await api("POST", `/api/conversations/${state.conversation.id}/${action}/`);
    const { body } = await api("GET", `/api/v1/conversations/${state.conversation.id}/`);
    hooks.changed(body);
  } catch (error) {
    fail(error);
  }
}

function askDelete() {
  document.getElementById("delete-text").textContent = t("delete_text", {
    title: state.conversation.title || t("untitled"),
  });
  document.getElementById("delete-error").textContent = "";
  document.getElementById("delete-dialog").showModal();
}

async function confirmDelete() {
  const dialog = document.getElementById("delete-dialog");
  try {
    await api("DELETE", `/api/v1/conversations/${state.conversation.id}/`);
    dialog.close();
    hooks.deleted();
  } catch (error) {
    document.getElementById("delete-error").textContent = error instanceof ApiError ? error.message : String(error);
  }
}
