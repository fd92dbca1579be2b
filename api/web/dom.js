// Building the page's nodes: never from HTML strings, so no text the service returns is markup.

export const $ = (selector) => document.querySelector(selector);

// An element with attributes (`text` sets its text) and children (nodes or strings).
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// The URL if it is http(s), else null (no javascript: or data: links from document metadata).
export function safeUrl(value) {
  try {
    const url = new URL(String(value));
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// The text as nodes, with each of `sentences` found in it marked.
export function highlighted(text, sentences) {
  const ranges = [];
  for (const sentence of sentences) {
    const start = text.indexOf(sentence);
    if (start >= 0) ranges.push([start, start + sentence.length]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const fragment = document.createDocumentFragment();
  let cursor = 0;
  for (const [start, end] of ranges) {
    if (start < cursor) continue;
    fragment.append(text.slice(cursor, start), el("mark", { text: text.slice(start, end) }));
    cursor = end;
  }
  fragment.append(text.slice(cursor));
  return fragment;
}
