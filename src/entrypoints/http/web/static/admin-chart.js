// Usage by day as stacked bars, one colour per model: an SVG built element by element
// (createElementNS), coloured with SVG attributes because the CSP allows no inline style.
// The table beside it holds the same numbers; the chart is one image with a summary.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { count } from "./admin-common.js";

const SVG_NS = "http://www.w3.org/2000/svg";
// Distinct at a glance and against white; a ninth model reuses the first colour.
const PALETTE = ["#2f5d8a", "#c8553d", "#3a7d44", "#8e5ea2", "#b8860b", "#1b998b", "#6b5b4b", "#d1477a"];
const WIDTH = 720;
const HEIGHT = 260;
const LEFT = 64;
const RIGHT = 8;
const TOP = 12;
const BOTTOM = 32;

function svg(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

// Models in the order given (most tokens first), each with its colour.
export function modelColours(models) {
  return new Map(models.map((model, index) => [model, PALETTE[index % PALETTE.length]]));
}

function swatch(colour) {
  const box = svg("svg", { width: 14, height: 14, viewBox: "0 0 14 14", "aria-hidden": "true", focusable: "false" });
  box.append(svg("rect", { width: 14, height: 14, rx: 2, fill: colour }));
  return box;
}

export function legend(colours) {
  return h(
    "ul",
    { class: "legend", "aria-label": t("legend") },
    ...[...colours].map(([model, colour]) => h("li", {}, swatch(colour), " ", model)),
  );
}

function summary(rows, colours, from, to) {
  const perModel = new Map();
  for (const row of rows) perModel.set(row.model, (perModel.get(row.model) || 0) + row.total_tokens);
  const total = [...perModel.values()].reduce((sum, tokens) => sum + tokens, 0);
  const models = [...colours.keys()]
    .filter((model) => perModel.get(model))
    .map((model) => t("chart_model_total", { model, tokens: count(perModel.get(model)) }))
    .join("; ");
  return t("chart_summary", { from, to, total: count(total), models });
}

// rows: the API's group_by=day,model rows; days: every day (YYYY-MM-DD) the chart spans.
export function usageChart({ rows, days, colours, from, to }) {
  const byDay = new Map(days.map((day) => [day, []]));
  for (const row of rows) {
    if (!byDay.has(row.day)) byDay.set(row.day, []);
    byDay.get(row.day).push(row);
  }
  const order = [...colours.keys()];
  const rank = (row) => (order.includes(row.model) ? order.indexOf(row.model) : order.length);
  const spanned = [...byDay.keys()].sort();
  const totals = spanned.map((day) => byDay.get(day).reduce((sum, row) => sum + row.total_tokens, 0));
  const highest = Math.max(1, ...totals);
  const plotWidth = WIDTH - LEFT - RIGHT;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const baseline = TOP + plotHeight;
  const slot = plotWidth / Math.max(1, spanned.length);
  const barWidth = Math.max(1, slot * 0.7);

  const chart = svg("svg", {
    class: "usage-chart",
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    width: "100%",
    role: "img",
    "aria-label": summary(rows, colours, from, to),
  });
  for (const fraction of [0, 0.5, 1]) {
    const y = baseline - fraction * plotHeight;
    chart.append(svg("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: y, y2: y, stroke: "#d8dde3", "stroke-width": 1 }));
    chart.append(
      svg("text", { x: LEFT - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#5b6570" }, count(Math.round(fraction * highest))),
    );
  }
  const labelEvery = Math.ceil(spanned.length / 6);
  spanned.forEach((day, index) => {
    const x = LEFT + index * slot + (slot - barWidth) / 2;
    let top = baseline;
    for (const row of [...byDay.get(day)].sort((a, b) => rank(a) - rank(b))) {
      if (!row.total_tokens) continue;
      const height = Math.max(1, (row.total_tokens / highest) * plotHeight);
      top -= height;
      const bar = svg("rect", {
        class: "bar",
        x: x.toFixed(2),
        y: top.toFixed(2),
        width: barWidth.toFixed(2),
        height: height.toFixed(2),
        fill: colours.get(row.model) || PALETTE[0],
        "data-day": day,
        "data-model": row.model,
        "data-tokens": row.total_tokens,
      });
      bar.append(svg("title", {}, t("chart_bar", { day, model: row.model, tokens: count(row.total_tokens) })));
      chart.append(bar);
    }
    const last = index === spanned.length - 1;
    // The last day gets a label too, unless it would sit on top of the previous one.
    if (index % labelEvery === 0 || (last && index % labelEvery >= labelEvery / 2)) {
      chart.append(
        svg("text", { x: (x + barWidth / 2).toFixed(2), y: HEIGHT - 10, "text-anchor": "middle", "font-size": 11, fill: "#5b6570" }, day.slice(5)),
      );
    }
  });
  return chart;
}
