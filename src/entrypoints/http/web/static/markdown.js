// A model's answer, written in Markdown, as DOM: paragraphs, headings, lists, quotes,
// fenced code with a Copy button, tables. The nodes are made one by one with
// createElement and text nodes; nothing the model wrote is ever parsed as HTML, so
// "<script>" in an answer is just the eight characters it looks like.

import { h } from "./dom.js";
import { register, t } from "./i18n.js";
import { renderInline } from "./markdown-inline.js";

register({
  en: { md_copy: "Copy", md_copied: "Copied", md_copy_failed: "Could not copy" },
  zh: { md_copy: "复制", md_copied: "已复制", md_copy_failed: "复制失败" },
});

const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*))?$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*))?$/;
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
const DELIMITER_ROW = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
// Quotes and lists nested deeper than this are read as text: bounds recursion and DOM depth.
const MAX_DEPTH = 12;
const COPIED_FOR_MS = 1500;

export function renderMarkdown(text) {
  let fence = null;
  const lines = String(text ?? "")
    .replace(/\r\n?/g, "\n")
    .split("\n")
    .map((line) => {
      if (fence) {
        if (closesFence(fence, line)) fence = null;
        return line; // code keeps its tabs
      }
      fence = fenceOf(line);
      return expandIndent(line);
    });
  const fragment = document.createDocumentFragment();
  fragment.append(...blocks(lines, { tight: false, depth: 0 }));
  return fragment;
}

// Leading tabs count as four columns, so indentation can be compared as a length.
function expandIndent(line) {
  return line.replace(/^[ \t]+/, (space) => space.replace(/\t/g, "    "));
}

const blank = (line) => line.trim() === "";
const indentOf = (line) => line.length - line.trimStart().length;
const unindent = (line, columns) => line.slice(Math.min(columns, indentOf(line)));

function fenceOf(line) {
  const match = /^( {0,3})(`{3,}|~{3,})(.*)$/.exec(line);
  if (!match || (match[2][0] === "`" && match[3].includes("`"))) return null;
  return { indent: match[1].length, marker: match[2], info: match[3].trim() };
}

function closesFence(fence, line) {
  const match = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line);
  const [char, length] = [fence.marker[0], fence.marker.length];
  return Boolean(match && match[1][0] === char && match[1].length >= length);
}

function isTableStart(lines, i) {
  return (
    i + 1 < lines.length &&
    lines[i].includes("|") &&
    lines[i + 1].includes("|") &&
    DELIMITER_ROW.test(lines[i + 1]) &&
    cells(lines[i]).length === cells(lines[i + 1]).length
  );
}

// Does line i begin a block that ends the paragraph before it?
function interrupts(lines, i, depth) {
  const line = lines[i];
  const item = ITEM.exec(line);
  const listStarts = item && item[4]?.trim() && (!/\d/.test(item[2]) || parseInt(item[2]) === 1);
  return Boolean(
    fenceOf(line) ||
      HEADING.test(line) ||
      RULE.test(line) ||
      (depth < MAX_DEPTH && (QUOTE.test(line) || listStarts)) ||
      isTableStart(lines, i),
  );
}

function blocks(lines, context) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let block;
    if (blank(line)) block = { end: i + 1 };
    else if (fenceOf(line)) block = codeBlock(lines, i);
    else if (HEADING.test(line)) block = heading(line, i);
    else if (RULE.test(line)) block = { node: h("hr"), end: i + 1 };
    else if (context.depth < MAX_DEPTH && QUOTE.test(line)) block = quote(lines, i, context);
    else if (context.depth < MAX_DEPTH && ITEM.test(line)) block = list(lines, i, context);
    else if (isTableStart(lines, i)) block = table(lines, i);
    else block = paragraph(lines, i, context);
    if (block.node) out.push(block.node);
    if (block.nodes) out.push(...block.nodes);
    i = block.end;
  }
  return out;
}

function heading(line, i) {
  const [, hashes, rest = ""] = HEADING.exec(line);
  const title = rest.replace(/(?:^|[ \t])#+[ \t]*$/, "").trim();
  return { node: h(`h${hashes.length}`, {}, renderInline(title)), end: i + 1 };
}

// Single newlines stay line breaks: models write them meaning them. In a tight list item
// the text goes straight into the <li>, as CommonMark renders it.
function paragraph(lines, start, context) {
  const text = [lines[start].trim()];
  let i = start + 1;
  while (i < lines.length && !blank(lines[i])) {
    const underline = SETEXT.exec(lines[i]);
    if (underline) {
      const level = underline[1][0] === "=" ? 1 : 2;
      return { node: h(`h${level}`, {}, renderInline(text.join("\n"))), end: i + 1 };
    }
    if (interrupts(lines, i, context.depth)) break;
    text.push(lines[i].trim());
    i++;
  }
  const inline = renderInline(text.join("\n"));
  return context.tight ? { nodes: inline, end: i } : { node: h("p", {}, inline), end: i };
}

// An unclosed fence runs to the end: a streaming answer is often mid-block.
function codeBlock(lines, start) {
  const fence = fenceOf(lines[start]);
  const indentToDrop = new RegExp(`^ {0,${fence.indent}}`);
  let i = start + 1;
  const code = [];
  while (i < lines.length && !closesFence(fence, lines[i])) {
    code.push(lines[i].replace(indentToDrop, "")); // spaces only: tabs in code are content
    i++;
  }
  const language = fence.info.split(/\s+/)[0];
  const source = code.join("\n");
  const safeClass = /^[\w.+#-]{1,40}$/.test(language) ? `language-${language}` : null;
  const copy = h("button", { type: "button", class: "copy-code" }, t("md_copy"));
  const codeElement = h("code", { class: safeClass }, source);
  copy.addEventListener("click", () => copyCode(copy, codeElement, source));
  const node = h(
    "div",
    { class: "code-block" },
    h(
      "div",
      { class: "code-header" },
      language ? h("span", { class: "code-language" }, language) : null,
      copy,
    ),
    h("pre", {}, codeElement),
  );
  return { node, end: Math.min(i + 1, lines.length) };
}

// Without clipboard access (plain http on a LAN address, a refused permission) the code is
// selected instead, so Ctrl+C still works.
async function copyCode(button, codeElement, source) {
  try {
    await navigator.clipboard.writeText(source);
    button.textContent = t("md_copied");
  } catch {
    getSelection()?.selectAllChildren(codeElement);
    button.textContent = t("md_copy_failed");
  }
  clearTimeout(button.resetTimer);
  button.resetTimer = setTimeout(() => {
    button.textContent = t("md_copy");
  }, COPIED_FOR_MS);
}

function quote(lines, start, context) {
  const inner = [];
  let i = start;
  while (i < lines.length && QUOTE.test(lines[i])) inner.push(lines[i++].replace(QUOTE, ""));
  const children = blocks(inner, { tight: false, depth: context.depth + 1 });
  return { node: h("blockquote", {}, children), end: i };
}

// Items are the marker's lines plus every following line indented past the marker (or a
// lazy continuation of its text); their content, unindented, is read as blocks again,
// which is how nesting by indentation comes out.
function list(lines, start, context) {
  const first = ITEM.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const kind = (marker) => (/\d/.test(marker) ? `1${marker.slice(-1)}` : marker);
  const sibling = (line) => {
    const match = ITEM.exec(line ?? "");
    const same = match && match[1].length === indent && kind(match[2]) === kind(first[2]);
    return same && !RULE.test(line) ? match : null;
  };
  const items = [];
  let loose = false;
  let i = start;
  while (i < lines.length) {
    const match = sibling(lines[i]);
    if (!match) break;
    const gap = Math.min(match[3]?.length ?? 1, 4);
    const contentIndent = indent + match[2].length + gap;
    const body = [match[4] ?? ""];
    i++;
    while (i < lines.length) {
      const line = lines[i];
      const previous = body[body.length - 1];
      if (blank(line)) body.push("");
      else if (indentOf(line) > indent) body.push(unindent(line, contentIndent));
      else if (blank(previous) || interrupts(lines, i, context.depth) || ITEM.test(line)) break;
      else body.push(line);
      i++;
    }
    let trailing = 0;
    while (body.length > 1 && blank(body[body.length - 1])) {
      body.pop();
      trailing++;
    }
    if (hasInnerBlankLine(body)) loose = true;
    if (trailing && sibling(lines[i])) loose = true;
    items.push(body);
  }
  const childContext = { tight: !loose, depth: context.depth + 1 };
  const number = parseInt(first[2], 10);
  const node = h(
    ordered ? "ol" : "ul",
    { start: ordered && number !== 1 ? String(number) : null },
    items.map((body) => h("li", {}, blocks(body, childContext))),
  );
  return { node, end: i };
}

function hasInnerBlankLine(body) {
  let fenced = false;
  for (const line of body) {
    if (fenceOf(line.trimStart())) fenced = !fenced;
    else if (!fenced && blank(line)) return true;
  }
  return false;
}

// A row's cells; "\|" is a pipe inside a cell, even inside code.
function cells(row) {
  let line = row.trim();
  if (line.startsWith("|")) line = line.slice(1);
  if (line.endsWith("|") && !line.endsWith("\\|")) line = line.slice(0, -1);
  const found = [""];
  for (let k = 0; k < line.length; k++) {
    if (line[k] === "\\" && line[k + 1] === "|") found[found.length - 1] += line[++k];
    else if (line[k] === "|") found.push("");
    else found[found.length - 1] += line[k];
  }
  return found.map((cell) => cell.trim());
}

function table(lines, start) {
  const header = cells(lines[start]);
  const alignments = cells(lines[start + 1]).map((cell) => {
    if (cell.startsWith(":") && cell.endsWith(":")) return "align-center";
    if (cell.endsWith(":")) return "align-right";
    return cell.startsWith(":") ? "align-left" : null;
  });
  const cell = (tag, value, column) =>
    h(tag, { class: alignments[column] }, renderInline(value ?? ""));
  const row = (values, tag) =>
    h("tr", {}, header.map((_, column) => cell(tag, values[column], column)));
  let i = start + 2;
  const body = [];
  const isRow = (line) => !blank(line) && line.includes("|") && !fenceOf(line) && !QUOTE.test(line);
  while (i < lines.length && isRow(lines[i])) {
    body.push(row(cells(lines[i]), "td"));
    i++;
  }
  const node = h(
    "div",
    { class: "table-scroll" },
    h("table", {}, h("thead", {}, row(header, "th")), body.length ? h("tbody", {}, body) : null),
  );
  return { node, end: i };
}
