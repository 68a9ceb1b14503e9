// The conversation list, as the API orders it (pinned first, then newest first), a page
// at a time: "Show more" asks for the next page by offset.

import { api, ApiError } from "./api.js";
import { clear, h } from "./dom.js";
import { t } from "./i18n.js";
import { state } from "./chat-state.js";

const PAGE_SIZE = 20;
const shown = { items: [], total: 0, onOpen: () => {} };

export function conversationList(onOpen) {
  shown.onOpen = onOpen;
  return [
    h("ul", { id: "conversation-list", "aria-label": t("conversations") }),
    h("button", { type: "button", id: "show-more", class: "show-more", hidden: true, onclick: () => showMore().catch(failed) }, t("show_more")),
  ];
}

function failed(error) {
  document.getElementById("composer-status").textContent = error instanceof ApiError ? error.message : String(error);
}

async function fetchPage(offset, limit) {
  const { body, headers } = await api("GET", `/api/v1/conversations/?limit=${limit}&offset=${offset}`);
  shown.total = Number(headers.get("X-Total-Count") ?? offset + body.length);
  return body;
}

// Fetches again what is shown (at least a page), so a new, renamed, closed or deleted
// conversation shows as it now is without losing the pages already loaded.
export async function reloadList() {
  shown.items = await fetchPage(0, Math.max(PAGE_SIZE, shown.items.length));
  draw();
}

async function showMore() {
  const known = new Set(shown.items.map((conversation) => conversation.id));
  // A conversation started meanwhile shifts the offsets: skip what is already listed.
  const fresh = (await fetchPage(shown.items.length, PAGE_SIZE)).filter((c) => !known.has(c.id));
  shown.items.push(...fresh);
  draw();
  // Keyboard users land on the first of the newly listed conversations.
  const first = fresh.length && document.querySelector(`#conversation-list [data-id="${fresh[0].id}"]`);
  if (first) first.focus();
}

function item(conversation) {
  const current = state.conversation !== null && conversation.id === state.conversation.id;
  return h(
    "li",
    {},
    h(
      "button",
      {
        type: "button",
        dataset: { id: conversation.id },
        "aria-current": String(current),
        onclick: () => shown.onOpen(conversation.id),
      },
      conversation.title || t("untitled"),
      conversation.status === "closed" ? h("span", { class: "status" }, t("status_closed")) : null,
    ),
  );
}

function draw() {
  const list = document.getElementById("conversation-list");
  if (!list) return;
  clear(list).append(...shown.items.map(item));
  document.getElementById("show-more").hidden = shown.items.length >= shown.total;
}

// Marks the open conversation without asking the server again.
export function markCurrent() {
  draw();
}
