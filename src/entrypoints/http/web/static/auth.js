// Sign in (a browser session from POST /api/auth/session/), register (POST
// /api/v1/register/, then the same sign-in), WeChat's QR login when the server has it
// (the page routes /auth/wechat/start/ and /auth/wechat/).

import { api, ApiError } from "./api.js";
import { clear, currentUser, h } from "./dom.js";
import { t } from "./i18n.js";

function field(name, label, type, autocomplete) {
  const id = `auth-${name}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name, type, autocomplete, required: true }),
  );
}

function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  // Only a path of this site: an open redirect would let a link send people elsewhere.
  // Browsers read "/\host" as "//host", so the URL parser, not a prefix, decides.
  if (!next.startsWith("/")) return "/";
  const target = new URL(next, location.origin);
  return target.origin === location.origin ? target.pathname + target.search + target.hash : "/";
}

export async function signIn(username, password) {
  await api("POST", "/api/auth/session/", { body: { username, password } });
}

export async function signOut() {
  await api("DELETE", "/api/auth/session/");
  location.assign("/");
}

export function renderSignIn(root, mode = "sign_in") {
  const registering = mode === "register";
  const status = h("p", { class: "form-error", role: "alert", "aria-live": "assertive" });
  const form = h(
    "form",
    { class: "auth-form", "aria-labelledby": "auth-title" },
    h("h1", { id: "auth-title" }, registering ? t("register") : t("sign_in")),
    field("username", t("username"), "text", "username"),
    registering ? field("email", t("email"), "email", "email") : null,
    field("password", t("password"), "password", registering ? "new-password" : "current-password"),
    status,
    h("button", { type: "submit", class: "primary" }, registering ? t("register") : t("sign_in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    status.textContent = t("signing_in");
    try {
      if (registering) await api("POST", "/api/v1/register/", { body: values });
      await signIn(values.username, values.password);
      location.assign(nextPage());
    } catch (error) {
      status.textContent = error instanceof ApiError ? error.message : String(error);
    }
  });
  const other = h(
    "button",
    { type: "button", class: "link", onclick: () => renderSignIn(root, registering ? "sign_in" : "register") },
    registering ? t("have_account") : t("no_account"),
  );
  const wechat = currentUser().wechat
    ? h("button", { type: "button", class: "wechat", onclick: startWeChat }, t("wechat"))
    : null;
  clear(root).append(
    h("main", { id: "main", class: "centered auth" }, h("p", { class: "brand" }, t("app_name")), form, other, wechat),
  );
  form.querySelector("input").focus();
}

// The server starts the login (its state bound to this browser by a cookie on
// /auth/wechat/) and sends the browser on to WeChat's QR page; WeChat sends it back to
// /auth/wechat/, which signs in and opens the page that was asked for.
function startWeChat() {
  location.assign(`/auth/wechat/start/?next=${encodeURIComponent(nextPage())}`);
}
