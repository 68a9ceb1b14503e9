// The pages speak English and Chinese. The server picks the language from the browser's
// Accept-Language and writes it into <html lang>; each page registers its own strings.

export const lang = document.documentElement.lang === "zh" ? "zh" : "en";

const strings = { en: {}, zh: {} };

export function register(table) {
  for (const code of ["en", "zh"]) Object.assign(strings[code], table[code]);
}

// t("sent_at", {time}) fills {time}; a missing key shows as itself, visibly.
export function t(key, values = {}) {
  const template = strings[lang][key] ?? strings.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export function formatTime(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en", {
    dateStyle: "medium",
    timeStyle: "short",
  }).format(new Date(iso));
}

register({
  en: {
    app_name: "Parley",
    sign_in: "Sign in",
    sign_out: "Sign out",
    register: "Create account",
    username: "Username",
    email: "Email",
    password: "Password",
    have_account: "Already have an account? Sign in",
    no_account: "New here? Create an account",
    wechat: "Sign in with WeChat",
    link_wechat: "Link WeChat",
    signing_in: "Signing in…",
    admin: "Admin",
    chat: "Chat",
    error: "Something went wrong: {message}",
    loading: "Loading…",
    close: "Close",
    cancel: "Cancel",
    save: "Save",
    more: "Load more",
  },
  zh: {
    app_name: "Parley",
    sign_in: "登录",
    sign_out: "退出登录",
    register: "注册账户",
    username: "用户名",
    email: "邮箱",
    password: "密码",
    have_account: "已有账户？登录",
    no_account: "第一次来？注册账户",
    wechat: "微信登录",
    link_wechat: "绑定微信",
    signing_in: "正在登录…",
    admin: "管理",
    chat: "对话",
    error: "出错了：{message}",
    loading: "加载中…",
    close: "关闭",
    cancel: "取消",
    save: "保存",
    more: "加载更多",
  },
});
