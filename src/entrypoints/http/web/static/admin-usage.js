// Usage of the models (GET /api/admin/usage/): by day and model over a period (the last
// 30 days unless another is picked) as a chart and a table of the same numbers, and the
// period's totals by model.

import { append, clear, h } from "./dom.js";
import { t } from "./i18n.js";
import { attempt, count, everyPage, money, numeric, scroller, table } from "./admin-common.js";
import { legend, modelColours, usageChart } from "./admin-chart.js";

const DAY = 24 * 60 * 60 * 1000;
// Days are UTC dates, as the API groups them.
const isoDay = (time) => new Date(time).toISOString().slice(0, 10);

const period = { from: null, to: null };

function lastThirtyDays() {
  const today = Date.now();
  return { from: isoDay(today - 29 * DAY), to: isoDay(today) };
}

// Every day from `from` to `to`, so quiet days show as gaps; a long period shows only the
// days that had usage, which keeps the bars readable.
function daysBetween(from, to, rows) {
  const start = Date.parse(`${from}T00:00:00Z`);
  const end = Date.parse(`${to}T00:00:00Z`);
  if (Number.isNaN(start) || Number.isNaN(end) || end < start || (end - start) / DAY > 92) {
    return [...new Set(rows.map((row) => row.day))].sort();
  }
  const days = [];
  for (let time = start; time <= end; time += DAY) days.push(isoDay(time));
  return days;
}

const cost = (row) => `${money(row.cost)} ${row.currency || ""}`.trim();

function dayRow(row) {
  return h(
    "tr",
    { dataset: { day: row.day, model: row.model } },
    h("td", {}, row.day),
    h("td", {}, row.model),
    ...amountCells(row),
  );
}

function amountCells(row) {
  return [
    ...[row.requests, row.prompt_tokens, row.completion_tokens, row.total_tokens].map((value) =>
      h("td", { class: "number" }, count(value)),
    ),
    h("td", { class: "number" }, cost(row)),
  ];
}

function modelRow(row) {
  return h(
    "tr",
    { dataset: { model: row.model } },
    h("td", {}, row.model),
    ...amountCells(row),
  );
}

const TOKEN_HEADINGS = () =>
  ["requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost"].map((key) => numeric(t(key)));

async function showUsage(chartArea, byDay, byModel) {
  const { from, to } = period;
  const [dayRows, modelRows] = await Promise.all([
    everyPage("/api/admin/usage/", { group_by: "day,model", from, to }),
    everyPage("/api/admin/usage/", { group_by: "model", from, to }),
  ]);
  const colours = modelColours(modelRows.map((row) => row.model));
  append(clear(chartArea), [
    dayRows.length
      ? [usageChart({ rows: dayRows, days: daysBetween(from, to, dayRows), colours, from, to }), legend(colours)]
      : h("p", {}, t("chart_empty")),
  ]);
  clear(byDay).append(table([t("day"), t("model"), ...TOKEN_HEADINGS()], dayRows.map(dayRow), t("usage_by_day")));
  clear(byModel).append(table([t("model"), ...TOKEN_HEADINGS()], modelRows.map(modelRow), t("usage_by_model")));
}

function periodForm(onSubmit) {
  const dateField = (name) =>
    h(
      "div",
      { class: "field" },
      h("label", { for: `u-${name}` }, t(name)),
      h("input", { id: `u-${name}`, name, type: "date", required: true, value: period[name] }),
    );
  const form = h("form", { class: "filters" }, dateField("from"), dateField("to"), h("button", { type: "submit", class: "primary" }, t("show")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    Object.assign(period, Object.fromEntries(new FormData(form)));
    onSubmit();
  });
  return form;
}

export function usageSection() {
  if (!period.from || !period.to) Object.assign(period, lastThirtyDays());
  const chartArea = h("div", { class: "chart", id: "usage-chart" });
  const byDay = scroller(t("usage_by_day"), "usage-by-day");
  const byModel = scroller(t("usage_by_model"), "usage-by-model");
  const load = () => attempt(() => showUsage(chartArea, byDay, byModel));
  load();
  return [
    h("h1", { tabindex: "-1" }, t("usage")),
    periodForm(load),
    h("section", { "aria-labelledby": "usage-day-heading" }, h("h2", { id: "usage-day-heading" }, t("usage_by_day")), chartArea, byDay),
    h("section", { "aria-labelledby": "usage-model-heading" }, h("h2", { id: "usage-model-heading" }, t("usage_by_model")), byModel),
  ];
}
