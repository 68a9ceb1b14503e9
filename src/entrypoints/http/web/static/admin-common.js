// What the admin sections share: the one alert that shows the server's refusals, tables
// that scroll sideways on a phone, numbers in the page's language, and the API's list
// convention (limit/offset, X-Total-Count, a Link with rel="next") as a table with
// Previous / Next buttons and the total.

import { api, ApiError } from "./api.js";
import { clear, h } from "./dom.js";
import { lang, t } from "./i18n.js";

export const problem = h("p", { class: "form-error", role: "alert" });

export function report(error) {
  problem.textContent = error instanceof ApiError ? error.message : String(error);
}

// Runs an async step and shows what went wrong instead of leaving it to the console.
export async function attempt(step) {
  problem.textContent = "";
  try {
    await step();
  } catch (error) {
    report(error);
  }
}

const locale = lang === "zh" ? "zh-CN" : "en";
const integers = new Intl.NumberFormat(locale);
const amounts = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 6 });

export const count = (value) => integers.format(value ?? 0);
export const money = (value) => amounts.format(value ?? 0);

// A heading of a column of numbers (right-aligned, as its cells are).
export const numeric = (text) => ({ text, number: true });

export function table(headings, rows, caption) {
  const th = (heading) =>
    typeof heading === "string"
      ? h("th", { scope: "col" }, heading)
      : h("th", { scope: "col", class: heading.number ? "number" : null }, heading.text);
  return h(
    "table",
    {},
    caption ? h("caption", { class: "visually-hidden" }, caption) : null,
    h("thead", {}, h("tr", {}, ...headings.map(th))),
    h("tbody", {}, ...rows),
  );
}

// A region that scrolls sideways when the table is wider than the screen; focusable, so
// the keyboard can scroll it too.
export function scroller(label, id, ...children) {
  return h("div", { class: "table-scroll", id, role: "region", "aria-label": label, tabindex: "0" }, ...children);
}

export function query(params) {
  return new URLSearchParams(
    Object.entries(params).filter(([, value]) => value !== "" && value !== null && value !== undefined),
  );
}

function hasNext(headers) {
  return /rel="next"/.test(headers.get("Link") || "");
}

function rows(body) {
  return Array.isArray(body) ? body : body.results || [];
}

// Every page of a list (a report, not a table to page through), following rel="next".
export async function everyPage(path, params, pageLimit = 20) {
  const items = [];
  for (let offset = 0, pages = 0; pages < pageLimit; pages += 1) {
    const { body, headers } = await api("GET", `${path}?${query({ ...params, limit: 500, offset })}`);
    items.push(...rows(body));
    if (!hasNext(headers)) break;
    offset += 500;
  }
  return items;
}

const PAGE_SIZES = [10, 25, 50, 100];

export function pageState(params = {}) {
  return { params, offset: 0, limit: 25 };
}

// One list of the API shown a page at a time. `state` ({params, offset, limit}) outlives the
// table, so coming back to a section shows the same page; `row(item, reload)` makes a <tr>.
export function pagedTable({ path, id, what, headings, row, state }) {
  const region = scroller(what, id);
  const position = h("span", { class: "page-position", "aria-live": "polite" });
  const previous = h("button", { type: "button", onclick: () => go(-1) }, t("previous"));
  const next = h("button", { type: "button", onclick: () => go(1) }, t("next"));
  const sizeId = `${id}-size`;
  const size = h(
    "select",
    { id: sizeId, onchange: () => ((state.limit = Number(size.value)), (state.offset = 0), reload()) },
    ...PAGE_SIZES.map((n) => h("option", { value: n, selected: n === state.limit }, String(n))),
  );
  const pager = h(
    "nav",
    { class: "pager", "aria-label": t("pages", { what }) },
    previous,
    position,
    next,
    h("span", { class: "page-size" }, h("label", { for: sizeId }, t("page_size")), size),
  );

  async function load() {
    const { body, headers } = await api("GET", `${path}?${query({ ...state.params, limit: state.limit, offset: state.offset })}`);
    const items = rows(body);
    if (!items.length && state.offset > 0) {
      // The list shrank under us (a filter elsewhere, rows gone): show its last page.
      state.offset = Math.max(0, state.offset - state.limit);
      return load();
    }
    const total = Number(headers.get("X-Total-Count") ?? items.length);
    clear(region).append(table(headings, items.map((item) => row(item, reload)), what));
    const key = headers.get("X-Total-Count-Capped") === "true" ? "page_position_capped" : "page_position";
    position.textContent = items.length
      ? t(key, { first: count(state.offset + 1), last: count(state.offset + items.length), total: count(total) })
      : t("page_empty");
    const focused = document.activeElement;
    previous.disabled = state.offset === 0;
    next.disabled = !hasNext(headers);
    // A button that just became disabled drops the focus; hand it to its neighbour.
    if (focused === next && next.disabled && !previous.disabled) previous.focus();
    if (focused === previous && previous.disabled && !next.disabled) next.focus();
  }

  function reload() {
    return attempt(load);
  }

  function go(direction) {
    state.offset = Math.max(0, state.offset + direction * state.limit);
    return reload();
  }

  return { element: h("div", { class: "paged" }, region, pager), reload };
}

// A section of one filtered, paged list: its heading, the filter form (built by
// `filterForm(onSubmit)`), and the table; a new filter starts again from the first page.
export function filteredListSection(title, table, filterForm) {
  const list = pagedTable(table);
  const form = filterForm((filters) => {
    table.state.params = filters;
    table.state.offset = 0;
    list.reload();
  });
  list.reload();
  return [h("h1", { tabindex: "-1" }, title), form, list.element];
}
