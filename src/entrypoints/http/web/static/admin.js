// The admin page (staff only; the server refuses everyone else): sections for every user's
// conversations (and one opened), the accounts, the models' usage and the audit log. The
// section is in the URL's hash (#users, #conversation/12), so links, reloads and the
// browser's Back button work.

import "./admin-strings.js";
import { signOut } from "./auth.js";
import { append, clear, currentUser, h } from "./dom.js";
import { t } from "./i18n.js";
import { attempt, problem } from "./admin-common.js";
import { auditSection } from "./admin-audit.js";
import { conversationDetail, conversationsSection } from "./admin-conversations.js";
import { usageSection } from "./admin-usage.js";
import { usersSection } from "./admin-users.js";

const SECTIONS = {
  conversations: { label: "nav_conversations", show: conversationsSection },
  users: { label: "nav_users", show: usersSection },
  usage: { label: "nav_usage", show: usageSection },
  audit: { label: "nav_audit", show: auditSection },
};

const app = document.getElementById("app");
const view = h("div", { id: "admin-view" });
const links = Object.entries(SECTIONS).map(([name, section]) => h("a", { href: `#${name}`, dataset: { section: name } }, t(section.label)));
let shown = null;

// "#conversation/12" → {section: "conversations", conversation: "12"}; null for a hash that
// is not a section (the skip link's #main), which leaves the page as it is.
function parseHash() {
  const [name, argument] = location.hash.replace(/^#/, "").split("/");
  if (!name) return { section: "conversations" };
  if (name === "conversation" && /^\d+$/.test(argument || "")) return { section: "conversations", conversation: argument };
  return name in SECTIONS ? { section: name } : null;
}

async function route(event) {
  const place = parseHash() || (shown ? null : { section: "conversations" });
  if (!place) return;
  shown = place;
  for (const link of links) {
    if (link.dataset.section === place.section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(view);
  problem.textContent = "";
  if (place.conversation) {
    await attempt(async () => {
      const content = await conversationDetail(place.conversation);
      // A newer navigation may have happened while this one waited for the server.
      if (shown !== place) return;
      append(view, content);
      if (event) view.querySelector("h1").focus();
    });
  } else {
    append(view, SECTIONS[place.section].show());
    // Coming back from a conversation removes the link that had the focus: start again
    // at the section's heading rather than at the top of the document.
    const focusLost = !document.activeElement || document.activeElement === document.body;
    if (event && focusLost) view.querySelector("h1").focus();
  }
}

function render() {
  clear(app).append(
    h(
      "header",
      { class: "admin-header" },
      h("a", { href: "/" }, t("chat")),
      h("span", { class: "who" }, currentUser().username),
      h("button", { type: "button", onclick: signOut }, t("sign_out")),
    ),
    h("nav", { class: "sections", "aria-label": t("admin_sections") }, h("ul", {}, ...links.map((link) => h("li", {}, link)))),
    h("main", { id: "main", tabindex: "-1" }, problem, view),
  );
  window.addEventListener("hashchange", route);
  route();
}

render();
