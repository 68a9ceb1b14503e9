// The chat page: your conversations, and one of them with its messages; a reply streams
// in as the model writes it (Server-Sent Events from send_message/), and can be stopped.

import { api, ApiError, getJson, request, serverEvents } from "./api.js";
import { renderSignIn, signOut } from "./auth.js";
import { clear, currentUser, h } from "./dom.js";
import { register, t } from "./i18n.js";

register({
  en: {
    new_conversation: "New conversation",
    conversations: "Your conversations",
    untitled: "New conversation",
    message: "Message",
    send: "Send",
    stop: "Stop",
    you: "You",
    assistant: "Assistant",
    pick: "Start or pick a conversation.",
    status_closed: "closed",
    status_failed: "The model could not answer.",
    status_partial: "The answer stopped part way.",
    status_blocked: "The provider withheld this answer.",
    status_interrupted: "The server stopped before the answer was complete.",
  },
  zh: {
    new_conversation: "新对话",
    conversations: "我的对话",
    untitled: "新对话",
    message: "消息",
    send: "发送",
    stop: "停止",
    you: "我",
    assistant: "助手",
    pick: "新建或选择一个对话。",
    status_closed: "已关闭",
    status_failed: "模型未能回答。",
    status_partial: "回答中途停止了。",
    status_blocked: "服务商拦截了这条回答。",
    status_interrupted: "服务器在回答完成前停止了。",
  },
});

const state = { conversation: null, cancelUrl: null };
const app = document.getElementById("app");

function messageView(message) {
  const sender = message.sender === "user" ? "user" : "ai";
  const note = ["failed", "partial", "blocked", "interrupted"].includes(message.status)
    ? h("span", { class: "note" }, t(`status_${message.status}`))
    : null;
  return h(
    "article",
    { class: `message ${sender} ${message.status || ""}`, dataset: { id: message.id } },
    h("span", { class: "visually-hidden" }, sender === "user" ? t("you") : t("assistant")),
    h("div", { class: "text" }, message.content || ""),
    note,
  );
}

async function loadConversations(list) {
  const { body } = await api("GET", "/api/conversations/");
  const items = Array.isArray(body) ? body : body.results || [];
  clear(list).append(
    ...items.map((conversation) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            "aria-current": String(conversation.id === state.conversation),
            onclick: () => openConversation(conversation.id),
          },
          conversation.title || t("untitled"),
          conversation.status === "closed" ? h("span", { class: "status" }, t("status_closed")) : null,
        ),
      ),
    ),
  );
}

async function openConversation(id) {
  state.conversation = id;
  const conversation = await getJson(`/api/conversations/${id}/`);
  const messages = document.getElementById("messages");
  clear(messages).append(...conversation.messages.map(messageView));
  document.getElementById("title").textContent = conversation.title || t("untitled");
  await loadConversations(document.getElementById("conversation-list"));
  const streaming = conversation.messages.find((message) => message.status === "streaming");
  if (streaming && streaming.stream_url) {
    state.cancelUrl = streaming.cancel_url;
    const view = messages.querySelector(`[data-id="${streaming.id}"]`);
    view.querySelector(".text").textContent = "";
    await follow(await request("GET", streaming.stream_url, { headers: { Accept: "text/event-stream" } }), view);
  }
  document.getElementById("composer-input").focus();
}

async function follow(response, view) {
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const stop = document.getElementById("stop");
  stop.hidden = false;
  let reply = view;
  try {
    for await (const event of serverEvents(response)) {
      if (event.event === "reply") {
        state.cancelUrl = event.data.cancel_url;
        if (!reply) {
          const messages = document.getElementById("messages");
          messages.append(messageView(event.data.user_message));
          reply = messageView({ ...event.data.ai_message, content: "" });
          messages.append(reply);
        }
      } else if (event.event === "delta" && reply) {
        reply.querySelector(".text").append(event.data.text);
        reply.scrollIntoView({ block: "end" });
      } else if (event.event === "done" && reply && event.data.ai_message) {
        reply.replaceWith(messageView(event.data.ai_message));
      }
    }
  } finally {
    stop.hidden = true;
    state.cancelUrl = null;
  }
}

async function send(event) {
  event.preventDefault();
  const input = document.getElementById("composer-input");
  const status = document.getElementById("composer-status");
  const text = input.value;
  if (!text.trim()) return;
  status.textContent = "";
  try {
    if (state.conversation === null) {
      const { body } = await api("POST", "/api/conversations/");
      state.conversation = body.id;
    }
    const response = await request("POST", `/api/conversations/${state.conversation}/send_message/`, {
      body: { message: text, stream: true },
      headers: { Accept: "text/event-stream" },
    });
    input.value = "";
    await follow(response, null);
    await loadConversations(document.getElementById("conversation-list"));
  } catch (error) {
    status.textContent = error instanceof ApiError ? error.message : String(error);
  }
}

async function stopReply() {
  if (state.cancelUrl) await api("POST", state.cancelUrl);
}

function render() {
  const user = currentUser();
  const list = h("ul", { id: "conversation-list", "aria-label": t("conversations") });
  const sidebar = h(
    "nav",
    { class: "sidebar", "aria-label": t("conversations") },
    h("button", { type: "button", class: "primary", onclick: newConversation }, t("new_conversation")),
    list,
  );
  const composer = h(
    "form",
    { class: "composer", onsubmit: send },
    h("label", { for: "composer-input", class: "visually-hidden" }, t("message")),
    h("textarea", { id: "composer-input", name: "message", maxlength: 4000, placeholder: t("message") }),
    h("button", { type: "submit", class: "primary" }, t("send")),
    h("button", { type: "button", id: "stop", hidden: true, onclick: stopReply }, t("stop")),
  );
  const pane = h(
    "main",
    { id: "main", class: "pane" },
    h(
      "header",
      {},
      h("h1", { id: "title" }, t("pick")),
      user.isStaff ? h("a", { href: "/admin/" }, t("admin")) : null,
      h("span", {}, user.username),
      h("button", { type: "button", onclick: signOut }, t("sign_out")),
    ),
    h("div", { id: "messages", class: "messages", "aria-live": "polite" }),
    h("p", { id: "composer-status", class: "form-error", role: "alert" }),
    composer,
  );
  app.classList.add("chat");
  clear(app).append(sidebar, pane);
  loadConversations(list);
}

function newConversation() {
  state.conversation = null;
  clear(document.getElementById("messages"));
  document.getElementById("title").textContent = t("untitled");
  document.getElementById("composer-input").focus();
}

if (currentUser().username) render();
else renderSignIn(app);
