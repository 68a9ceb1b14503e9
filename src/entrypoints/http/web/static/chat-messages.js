// Messages as the page shows them, and a reply streaming in (Server-Sent Events): a new
// turn's, a resumed one's, or a retried one's, which takes the failed reply's place.

import { api, ApiError, request, serverEvents } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { renderMarkdown } from "./markdown.js";
import { state } from "./chat-state.js";

const UNFINISHED = ["failed", "partial", "blocked", "interrupted"];

// Both dialects' message shapes: /api {sender: "user" | "ai"}, /api/v1 {role, image_url}.
export function normalize(message) {
  const sender = message.sender || (message.role === "user" ? "user" : "ai");
  return { ...message, sender };
}

export function messageView(raw) {
  const message = normalize(raw);
  const sender = message.sender === "user" ? "user" : "ai";
  const unfinished = sender === "ai" && UNFINISHED.includes(message.status);
  const note = unfinished ? h("span", { class: "note" }, t(`status_${message.status}`)) : null;
  const retry = unfinished
    ? h("button", { type: "button", class: "retry", onclick: (event) => retryReply(event, message.id) }, t("retry"))
    : null;
  const image = message.image_url
    ? h("img", { class: "attachment", src: message.image_url, alt: t("sent_image") })
    : null;
  return h(
    "article",
    { class: `message ${sender} ${message.status || ""}`, dataset: { id: message.id } },
    h("span", { class: "visually-hidden" }, sender === "user" ? t("you") : t("assistant")),
    image,
    // A finished answer is Markdown built as DOM nodes (markdown.js: never HTML); a reply
    // still streaming, and what people write, stay plain text.
    sender === "ai" && message.status !== "streaming"
      ? h("div", { class: "text markdown" }, renderMarkdown(message.content || ""))
      : h("div", { class: "text" }, message.content || ""),
    note,
    retry,
  );
}

function composerStatus(text) {
  document.getElementById("composer-status").textContent = text;
}

// Reads a streamed reply to its end. `target` is the view the reply replaces (a reply
// being resumed or retried); without one, the turn's two messages are appended.
// `onReply(data)` gets the `reply` event's data (for a v1 send, its conversation_id).
export async function follow(response, target = null, onReply = () => {}) {
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const messages = document.getElementById("messages");
  const stop = document.getElementById("stop");
  stop.hidden = false;
  messages.setAttribute("aria-busy", "true");
  let reply = null;
  try {
    for await (const event of serverEvents(response)) {
      if (event.event === "reply" && !reply) {
        onReply(event.data);
        state.cancelUrl = event.data.cancel_url;
        reply = messageView({ ...event.data.ai_message, content: "" });
        if (target) target.replaceWith(reply);
        else messages.append(messageView(event.data.user_message), reply);
      } else if (event.event === "delta" && reply) {
        reply.querySelector(".text").append(event.data.text);
        reply.scrollIntoView({ block: "end" });
      } else if (event.event === "error" && event.data.code !== "cancelled") {
        composerStatus(new ApiError(0, event.data).message);
      } else if (event.event === "done" && reply && event.data.ai_message) {
        const done = messageView(event.data.ai_message);
        reply.replaceWith(done);
        reply = done;
      }
    }
  } finally {
    stop.hidden = true;
    messages.removeAttribute("aria-busy");
    state.cancelUrl = null;
  }
}

// Asks again for a reply that failed, stopped or was withheld: a new reply to the same
// message (the conversation's current branch), streamed into the old one's place.
async function retryReply(event, messageId) {
  const button = event.currentTarget;
  const view = button.closest(".message");
  button.disabled = true;
  composerStatus("");
  try {
    const response = await request("POST", `/api/messages/${messageId}/regenerate/`, {
      body: { stream: true },
      headers: { Accept: "text/event-stream" },
    });
    await follow(response, view);
  } catch (error) {
    button.disabled = false;
    composerStatus(error instanceof ApiError ? error.message : String(error));
  }
}

export async function stopReply() {
  if (state.cancelUrl) await api("POST", state.cancelUrl);
}
