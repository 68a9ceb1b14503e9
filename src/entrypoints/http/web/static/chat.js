// The chat page: your conversations, and one of them with its messages; a reply streams
// in as the model writes it (Server-Sent Events), and can be stopped or retried. On a
// phone-sized screen the list folds away behind a "Conversations" button.

import { api, ApiError, getJson, request } from "./api.js";
import { renderSignIn, signOut } from "./auth.js";
import { clear, currentUser, h } from "./dom.js";
import { t } from "./i18n.js";
import "./chat-strings.js";
import { attachControls, attachedImage, attachmentPreview, clearAttachment, updateAttachAvailability } from "./chat-attach.js";
import { conversationHeader, showConversation } from "./chat-conversation.js";
import { conversationList, markCurrent, reloadList } from "./chat-list.js";
import { follow, messageView, stopReply } from "./chat-messages.js";
import { loadModelsAndSettings, modelPicker, settingsPanel, showModel } from "./chat-settings.js";
import { state } from "./chat-state.js";

const app = document.getElementById("app");

function composerStatus(text) {
  document.getElementById("composer-status").textContent = text;
}

function failed(error) {
  composerStatus(error instanceof ApiError ? error.message : String(error));
}

// Every message of the current branch, oldest first, a page (500) at a time.
async function currentBranch(id) {
  const messages = [];
  for (;;) {
    const { body, headers } = await api(
      "GET",
      `/api/v1/conversations/${id}/messages/?limit=500&offset=${messages.length}`,
    );
    messages.push(...body);
    const total = Number(headers.get("X-Total-Count") ?? messages.length);
    if (!body.length || messages.length >= total) return messages;
  }
}

async function openConversation(id) {
  setListOpen(false);
  composerStatus("");
  clearAttachment();
  const [conversation, history] = await Promise.all([getJson(`/api/v1/conversations/${id}/`), currentBranch(id)]);
  showConversation(conversation);
  showModel();
  markCurrent();
  const messages = document.getElementById("messages");
  clear(messages).append(...history.map(messageView));
  const input = document.getElementById("composer-input");
  if (!input.disabled) input.focus();
  const streaming = history.find((message) => message.status === "streaming");
  if (streaming && streaming.stream_url) {
    const view = messages.querySelector(`[data-id="${streaming.id}"]`);
    const response = await request("GET", streaming.stream_url, { headers: { Accept: "text/event-stream" } });
    await follow(response, view).catch(failed);
  }
}

async function send(event) {
  event.preventDefault();
  const input = document.getElementById("composer-input");
  const text = input.value;
  if (!text.trim() || input.disabled) return;
  composerStatus("");
  const body = { message: text, stream: true };
  if (state.conversation) body.conversation_id = state.conversation.id;
  const image = attachedImage();
  if (image) body.image_url = image;
  try {
    const response = await request("POST", "/api/v1/messages/chat/", {
      body,
      headers: { Accept: "text/event-stream" },
    });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    input.value = "";
    clearAttachment();
    let started = null;
    await follow(response, null, (data) => {
      // The conversation a first message started is the open one from now on, before
      // its reply ends (a model picked meanwhile is that conversation's).
      if (state.conversation) return;
      started = data.conversation_id;
      showConversation({ id: started, title: "", status: "active", model: null });
    });
    if (started !== null) changed(await getJson(`/api/v1/conversations/${started}/`));
    else await reloadList();
  } catch (error) {
    failed(error);
  }
}

// Enter sends, Shift+Enter starts a new line; not while an input method composes text.
function sendOnEnter(event) {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    event.currentTarget.form.requestSubmit();
  }
}

function newConversation() {
  setListOpen(false);
  showConversation(null);
  showModel();
  markCurrent();
  clear(document.getElementById("messages"));
  composerStatus("");
  document.getElementById("composer-input").focus();
}

function setListOpen(open) {
  const toggle = document.getElementById("list-toggle");
  if (!toggle) return;
  toggle.setAttribute("aria-expanded", String(open));
  app.classList.toggle("list-open", open);
}

function toggleList() {
  const open = document.getElementById("list-toggle").getAttribute("aria-expanded") !== "true";
  setListOpen(open);
  if (open) document.getElementById("new-conversation").focus();
}

// Escape folds the list away again and gives the focus back to its button.
function closeListOnEscape(event) {
  const toggle = document.getElementById("list-toggle");
  if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
    setListOpen(false);
    toggle.focus();
  }
}

function deleted() {
  newConversation();
  reloadList().catch(failed);
}

function changed(conversation) {
  showConversation(conversation);
  showModel();
  reloadList().catch(failed);
}

function render() {
  const user = currentUser();
  const sidebar = h(
    "nav",
    { id: "sidebar", class: "sidebar", "aria-label": t("conversations"), onkeydown: closeListOnEscape },
    h("button", { type: "button", id: "new-conversation", class: "primary", onclick: newConversation }, t("new_conversation")),
    ...conversationList((id) => openConversation(id).catch(failed)),
  );
  const composer = h(
    "form",
    { class: "composer", onsubmit: send },
    h("div", { class: "composer-tools" }, modelPicker(updateAttachAvailability), settingsPanel(), attachControls()),
    attachmentPreview(),
    h("p", { id: "composer-note", class: "composer-note", hidden: true }),
    h(
      "div",
      { class: "composer-row" },
      h("label", { for: "composer-input", class: "visually-hidden" }, t("message")),
      h("textarea", {
        id: "composer-input",
        name: "message",
        maxlength: 4000,
        placeholder: t("message"),
        "aria-describedby": "composer-note",
        onkeydown: sendOnEnter,
      }),
      h("button", { type: "submit", id: "send", class: "primary" }, t("send")),
      h("button", { type: "button", id: "stop", hidden: true, onclick: () => stopReply().catch(failed) }, t("stop")),
    ),
  );
  const toggle = h(
    "button",
    { type: "button", id: "list-toggle", class: "list-toggle", "aria-expanded": "false", "aria-controls": "sidebar", onclick: toggleList },
    t("conversations_toggle"),
  );
  const pane = h(
    "main",
    { id: "main", class: "pane" },
    h(
      "header",
      {},
      toggle,
      ...conversationHeader({ changed, deleted }),
      h("span", { class: "spacer" }),
      user.isStaff ? h("a", { href: "/admin/" }, t("admin")) : null,
      // Signed in, WeChat's login links the WeChat account to this one (README, WeChat).
      user.wechat ? h("a", { href: "/auth/wechat/start/?next=/" }, t("link_wechat")) : null,
      h("span", { class: "who" }, user.username),
      h("button", { type: "button", onclick: signOut }, t("sign_out")),
    ),
    h("div", { id: "messages", class: "messages", "aria-live": "polite" }),
    h("p", { id: "composer-status", class: "form-error", role: "alert" }),
    composer,
  );
  app.classList.add("chat");
  clear(app).append(sidebar, pane);
  reloadList().catch(failed);
  loadModelsAndSettings().catch(failed);
}

if (currentUser().username) render();
else renderSignIn(app);
