// The inline half of renderMarkdown: code spans, emphasis, strike-through, links and bare
// URLs inside one block's text. Every piece of the model's text becomes a text node; the
// only attribute it can reach is href, and only after safeHref has vetted it.

import { h } from "./dom.js";

const ESCAPABLE = /[!-/:-@[-`{-~]/;
const SPACE = /\s/;
const WORD = /[\p{L}\p{N}]/u;
// Nested emphasis deeper than this is shown as written: no model needs it, and it bounds
// both the recursion and the depth of the DOM a hostile text can ask for.
const MAX_DEPTH = 12;
// How far a "[" looks for its "]": keeps "[[[[…" linear instead of quadratic.
const MAX_LINK_TEXT = 1000;

// Only absolute http(s) and mailto URLs become links; the scheme is checked on the text as
// written and again on what the URL parser makes of it, and the parser's form is what
// goes into href, so what is checked is what the browser follows.
export function safeHref(url) {
  const written = url.trim();
  if (!/^(?:https?:\/\/[^/\s]|mailto:[^\s])/i.test(written)) return null;
  try {
    const parsed = new URL(written);
    return ["http:", "https:", "mailto:"].includes(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

export function link(href, ...children) {
  return h("a", { href, rel: "noopener noreferrer nofollow", target: "_blank" }, ...children);
}

export function renderInline(text) {
  return parse(text, { noLinks: false, depth: 0 });
}

function parse(text, { noLinks, depth }) {
  const nodes = [];
  const failed = new Map(); // closer searches that found nothing, by kind: start positions
  let plain = "";
  const flush = () => {
    text_(nodes, plain);
    plain = "";
  };
  let i = 0;
  while (i < text.length) {
    const found = construct(text, i, { noLinks, depth, failed });
    if (found) {
      flush();
      nodes.push(...found.nodes);
      i = found.end;
    } else if (text[i] === "\\" && i + 1 < text.length && ESCAPABLE.test(text[i + 1])) {
      plain += text[i + 1];
      i += 2;
    } else if (text[i] === "\\" && text[i + 1] === "\n") {
      i += 1; // a backslash hard break: the newline already is one
    } else {
      // A run of delimiters that opened nothing is text as a whole, so its tail cannot
      // open something on its own.
      const run = "`*_~".includes(text[i]) ? runLength(text, i) : 1;
      plain += text.slice(i, i + run);
      i += run;
    }
  }
  flush();
  return nodes;
}

function text_(nodes, plain) {
  plain.split("\n").forEach((line, index) => {
    if (index > 0) nodes.push(document.createElement("br"));
    if (line) nodes.push(document.createTextNode(line));
  });
}

function construct(text, i, context) {
  const c = text[i];
  if (c === "`") return codeSpan(text, i, context.failed);
  if (c === "*" || c === "_" || c === "~") return emphasis(text, i, context);
  if (context.noLinks) return null;
  if (c === "[" || (c === "!" && text[i + 1] === "[")) return bracketLink(text, i, context);
  if (c === "<") return autolink(text, i);
  if ((c === "h" || c === "H") && !WORD.test(text[i - 1] ?? " ")) return bareUrl(text, i);
  return null;
}

function runLength(text, i) {
  let end = i;
  while (text[end] === text[i]) end++;
  return end - i;
}

// Where the backtick run that closes the one at `i` starts, or -1.
function closingBackticks(text, i, failed) {
  const run = runLength(text, i);
  const key = "`" + run;
  if (failed.has(key) && i >= failed.get(key)) return -1;
  for (let k = text.indexOf("`", i + run); k !== -1; k = text.indexOf("`", k)) {
    const length = runLength(text, k);
    if (length === run) return k;
    k += length;
  }
  failed.set(key, Math.min(failed.get(key) ?? Infinity, i));
  return -1;
}

function codeSpan(text, i, failed) {
  const close = closingBackticks(text, i, failed);
  if (close < 0) return null;
  const run = runLength(text, i);
  let content = text.slice(i + run, close).replace(/\n/g, " ");
  if (content.length > 1 && content.startsWith(" ") && content.endsWith(" ") && content.trim()) {
    content = content.slice(1, -1);
  }
  return { nodes: [h("code", {}, content)], end: close + run };
}

function emphasis(text, i, context) {
  const c = text[i];
  const run = runLength(text, i);
  if (context.depth >= MAX_DEPTH || SPACE.test(text[i + run] ?? " ")) return null;
  if (c === "_" && WORD.test(text[i - 1] ?? " ")) return null;
  const sizes = c === "~" ? (run === 2 ? [2] : []) : run >= 2 ? [2, 1] : [1];
  for (const size of sizes) {
    const close = findCloser(text, i + size, c, size, context.failed);
    if (close < 0) continue;
    const tag = c === "~" ? "del" : size === 2 ? "strong" : "em";
    const inner = parse(text.slice(i + size, close), { ...context, depth: context.depth + 1 });
    return { nodes: [h(tag, {}, inner)], end: close + size };
  }
  return null;
}

// The closing delimiter for an opener of `size` characters `c` whose content starts at
// `from`: a run that follows non-space, skipping code spans and escapes. A run of two
// closes strong and a run of one closes em, so "*a **b** c*" nests the way it reads.
function findCloser(text, from, c, size, failed) {
  const key = c + size;
  if (failed.has(key) && from >= failed.get(key)) return -1;
  let k = from;
  while (k < text.length) {
    const ch = text[k];
    if (ch === "\\") {
      k += 2;
    } else if (ch === "`") {
      const close = closingBackticks(text, k, failed);
      k = close < 0 ? k + runLength(text, k) : close + runLength(text, close);
    } else if (ch === c) {
      const run = runLength(text, k);
      const closes =
        k > from &&
        !SPACE.test(text[k - 1]) &&
        (c !== "_" || !WORD.test(text[k + run] ?? " ")) &&
        (c === "~" ? run === 2 : size === 2 ? run >= 2 : run !== 2);
      if (closes) return k + run - size;
      k += run;
    } else {
      k++;
    }
  }
  failed.set(key, Math.min(failed.get(key) ?? Infinity, from));
  return -1;
}

function closingBracket(text, open) {
  let depth = 0;
  const limit = Math.min(text.length, open + MAX_LINK_TEXT);
  for (let k = open; k < limit; k++) {
    if (text[k] === "\\") k++;
    else if (text[k] === "[") depth++;
    else if (text[k] === "]" && --depth === 0) return k;
  }
  return -1;
}

// The "(url "title")" after a link's text: { url, end } with end past the ")", or null.
function destination(text, k) {
  const skipSpace = () => {
    while (k < text.length && SPACE.test(text[k])) k++;
  };
  skipSpace();
  let url = "";
  if (text[k] === "<") {
    const close = text.indexOf(">", k);
    if (close < 0 || /[\n<]/.test(text.slice(k + 1, close))) return null;
    url = text.slice(k + 1, close);
    k = close + 1;
  } else {
    let parens = 0;
    while (k < text.length && !SPACE.test(text[k])) {
      if (text[k] === "\\" && ESCAPABLE.test(text[k + 1] ?? "")) k++;
      else if (text[k] === "(") parens++;
      else if (text[k] === ")" && --parens < 0) break;
      url += text[k++];
    }
  }
  skipSpace();
  const quote = { '"': '"', "'": "'", "(": ")" }[text[k]];
  if (quote) {
    const close = text.indexOf(quote, k + 1);
    if (close < 0) return null;
    k = close + 1;
    skipSpace();
  }
  return text[k] === ")" ? { url, end: k + 1 } : null;
}

// [text](url) and ![alt](url). An image is never loaded: it becomes a link to its URL.
// A link whose URL is not safe is shown exactly as the model wrote it.
function bracketLink(text, i, context) {
  const image = text[i] === "!";
  const open = image ? i + 1 : i;
  const close = closingBracket(text, open);
  if (close < 0 || text[close + 1] !== "(") return null;
  const target = destination(text, close + 2);
  if (!target) return null;
  const label = text.slice(open + 1, close);
  const href = safeHref(target.url);
  if (!href) {
    return { nodes: [document.createTextNode(text.slice(i, target.end))], end: target.end };
  }
  const children = image
    ? [label.replace(/\\([!-/:-@[-`{-~])/g, "$1") || href]
    : label.trim()
      ? parse(label, { ...context, noLinks: true, depth: context.depth + 1 })
      : [href];
  const anchor = link(href, ...children);
  if (image) anchor.className = "image-link";
  return { nodes: [anchor], end: target.end };
}

function autolink(text, i) {
  const match = /^<([a-z][a-z0-9+.-]{1,31}:[^\s<>]*|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)>/i.exec(
    text.slice(i, i + 2048),
  );
  if (!match) return null;
  const written = match[1].includes(":") ? match[1] : `mailto:${match[1]}`;
  const href = safeHref(written);
  return href ? { nodes: [link(href, match[1])], end: i + match[0].length } : null;
}

// A bare http(s) URL, without the punctuation that ends the sentence around it.
function bareUrl(text, i) {
  const match = /^https?:\/\/[^\s<>]+/i.exec(text.slice(i, i + 2048));
  if (!match) return null;
  let url = match[0];
  for (;;) {
    const last = url[url.length - 1];
    const unbalanced = (open) => url.split(open).length < url.split(last).length;
    if ("?!.,:;*_~'\"".includes(last)) url = url.slice(0, -1);
    else if ((last === ")" && unbalanced("(")) || (last === "]" && unbalanced("["))) {
      url = url.slice(0, -1);
    }
    else break;
  }
  const href = safeHref(url);
  return href ? { nodes: [link(href, url)], end: i + url.length } : null;
}
