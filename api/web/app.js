// The page uses the documented API only: /collections, /ask, /summarize, /documents, /jobs.
// Ask is a conversation: each question is sent with the earlier turns (`messages`).
"use strict";

const KEY_STORAGE = "rag-api-key";
let apiKey = sessionStorage.getItem(KEY_STORAGE) || "";
const $ = (selector) => document.querySelector(selector);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// ---- API access, with the key kept in this tab only ----------------------------------

let keyPrompt = null;

function askForKey(message) {
  if (keyPrompt) return keyPrompt;
  const dialog = $("#key-dialog");
  const error = $("#key-error");
  error.hidden = !message;
  error.textContent = message || "";
  keyPrompt = new Promise((resolve) => {
    $("#key-form").onsubmit = (event) => {
      event.preventDefault();
      apiKey = $("#key-input").value.trim();
      sessionStorage.setItem(KEY_STORAGE, apiKey);
      $("#key-input").value = "";
      $("#forget-key").hidden = false;
      dialog.close();
      keyPrompt = null;
      resolve();
    };
  });
  if (!dialog.open) dialog.showModal();
  $("#key-input").focus();
  return keyPrompt;
}

async function api(path, options = {}) {
  for (;;) {
    const headers = new Headers(options.headers || {});
    if (apiKey) headers.set("Authorization", `Bearer ${apiKey}`);
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401) return response;
    const body = await response.json().catch(() => ({}));
    await askForKey(apiKey ? (body.error && body.error.message) || "That key was refused." : "");
  }
}

async function errorText(response) {
  const body = await response.json().catch(() => null);
  return (body && body.error && body.error.message) || `${response.status} ${response.statusText}`;
}

// Server-sent events from a fetch() response (EventSource cannot POST).
async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const raw = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of raw.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

// ---- Views ----------------------------------------------------------------------------

function showView(name) {
  for (const tab of document.querySelectorAll(".tab")) {
    const selected = tab.dataset.view === name;
    tab.setAttribute("aria-selected", String(selected));
    $(`#view-${tab.dataset.view}`).hidden = !selected;
  }
  if (name === "documents") loadDocuments();
  if (name === "summarize") loadDocumentChoices();
}

async function loadCollections() {
  const response = await api("/collections");
  if (!response.ok) return;
  const { collections } = await response.json();
  const fieldset = $("#collections");
  fieldset.querySelectorAll("label").forEach((label) => label.remove());
  $("#collections-empty").hidden = collections.length > 1;
  if (collections.length < 2) return;
  for (const collection of collections) {
    const box = el("input", { type: "checkbox", name: "collection", value: collection.name });
    fieldset.append(el("label", {}, box, `${collection.name} (${collection.documents})`));
  }
}

// ---- Ask ------------------------------------------------------------------------------

function safeUrl(value) {
  try {
    const url = new URL(String(value));
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function highlighted(text, sentences) {
  // The chunk text as nodes, with each supporting sentence marked.
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

// Earlier turns of this conversation, sent with each question (the service keeps no state).
let conversation = [];
// A source "supports" an answer sentence when their embeddings are at least this close.
const SUPPORT_MIN_SCORE = 0.45;

function sourceItem(source, cited, support) {
  const meta = source.metadata || {};
  const title = meta.title || meta.source || `document ${source.document_id}`;
  const heading = el("div", {}, el("strong", { text: String(title) }));
  if (cited.has(source.chunk_id)) heading.append(" ", el("span", { class: "badge", text: "cited" }));
  const details = el("div", { class: "meta" });
  const url = meta.url && safeUrl(meta.url);
  if (url) details.append(el("a", { href: url, rel: "noopener noreferrer", target: "_blank", text: url }));
  for (const key of ["date", "author", "section", "page", "slide", "sheet"]) {
    if (meta[key] !== undefined && meta[key] !== null) details.append(el("span", { text: `${key}: ${meta[key]}` }));
  }
  details.append(el("span", { text: `source: ${meta.source || ""}` }));
  details.append(el("span", { text: `score ${Number(source.score).toFixed(3)}` }));
  const chunk = el("p", { class: "chunk" }, highlighted(source.text, support.get(source.chunk_id) || []));
  return el("li", { "data-chunk-id": String(source.chunk_id) }, heading, details, chunk);
}

function renderSources(turn, body) {
  // The sources the answer cites or that support its sentences first; the rest folded away.
  const cited = new Set(body.citations.map((citation) => citation.chunk_id));
  const support = new Map();
  for (const item of body.supporting_sentences) {
    if (item.score < SUPPORT_MIN_SCORE) continue;
    if (!support.has(item.chunk_id)) support.set(item.chunk_id, []);
    support.get(item.chunk_id).push(item.source_sentence);
  }
  let used = body.sources.filter((s) => cited.has(s.chunk_id) || support.has(s.chunk_id));
  if (!used.length) used = body.sources.slice(0, 1); // nothing clearly used: the best-ranked one
  const others = body.sources.filter((s) => !used.includes(s));
  const list = el("ol", { class: "sources" });
  for (const source of used) list.append(sourceItem(source, cited, support));
  turn.append(el("h4", { text: "Sources" }), list);
  if (!body.sources.length) list.append(el("li", { text: "No source was sent to the model." }));
  if (others.length) {
    const folded = el("ol", { class: "sources", start: String(used.length + 1) });
    for (const source of others) folded.append(sourceItem(source, cited, support));
    const label = `${others.length} more passage${others.length > 1 ? "s" : ""} sent but not used by the answer`;
    turn.append(el("details", { class: "other-sources" }, el("summary", { text: label }), folded));
  }
}

function renderAnswer(turn, body) {
  turn.querySelector(".answer").textContent = body.answer || "";
  if (!body.answerable) {
    turn.append(el("p", { class: "not-answerable", text: `Answerable: no — ${body.abstention_reason || "no reason given"}` }));
  }
  if (body.unverified_citations.length) {
    const cited = body.unverified_citations
      .map((item) => item.cited_lines.map(([key, value]) => `${key}: ${value}`).join(", "))
      .join("; ");
    turn.append(el("div", { class: "warning" }, el("strong", { text: "Unverified citations: " }),
      `the model cited sources that were not among the passages sent: ${cited}`));
  }
  if (body.standalone_question) {
    turn.append(el("p", { class: "hint searched", text: `Searched as: “${body.standalone_question}”` }));
  }
  renderSources(turn, body);
  if (body.omitted_chunk_ids.length) {
    turn.append(el("p", { class: "hint", text: `Left out to fit the model's context: chunks ${body.omitted_chunk_ids.join(", ")}.` }));
  }
  const timings = Object.entries(body.timings_ms || {}).map(([k, v]) => `${k.replace(/_ms$/, "")} ${Math.round(v)} ms`);
  turn.append(el("p", { class: "hint timings", text: timings.join(" · ") }));
}

function newTurn(question) {
  const turn = el("li", { class: "turn" },
    el("p", { class: "question" }, el("span", { class: "visually-hidden", text: "Question: " }), question),
    el("div", { class: "answer", "aria-live": "polite" }));
  $("#thread").append(turn);
  $("#thread").hidden = false;
  return turn;
}

function newConversation() {
  conversation = [];
  $("#thread").replaceChildren();
  $("#thread").hidden = true;
  $("#new-conversation").hidden = true;
  $("#follow-up-hint").hidden = true;
  $("#ask-status").textContent = "";
  $("#question").focus();
}

async function ask(event) {
  event.preventDefault();
  const button = $("#ask-button");
  const status = $("#ask-status");
  const question = $("#question").value;
  const collections = [...document.querySelectorAll('#collections input:checked')].map((box) => box.value);
  const payload = { question, top_k: Number($("#top-k").value) || 5, stream: true };
  if (collections.length) payload.collections = collections;
  if (conversation.length) payload.messages = conversation;
  button.disabled = true;
  status.textContent = "Retrieving…";
  const turn = newTurn(question);
  const answer = turn.querySelector(".answer");
  try {
    const response = await api("/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    if (!response.ok) throw new Error(await errorText(response));
    for await (const { event: kind, data } of readEvents(response)) {
      if (kind === "token") {
        status.textContent = "Answering…";
        answer.textContent += data.text;
      } else if (kind === "done") {
        renderAnswer(turn, data);
        conversation = [...conversation, { role: "user", content: question },
          { role: "assistant", content: data.answer || "I could not answer this from the documents." }];
        $("#question").value = "";
        $("#new-conversation").hidden = false;
        $("#follow-up-hint").hidden = false;
        status.textContent = "Done.";
      } else if (kind === "error") {
        throw new Error(data.error ? data.error.message : "the answer failed");
      }
    }
  } catch (error) {
    turn.remove();
    $("#thread").hidden = !conversation.length;
    status.textContent = `Error: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---- Summarize ------------------------------------------------------------------------

async function loadDocumentChoices() {
  const response = await api("/documents?limit=500");
  if (!response.ok) return;
  const select = $("#summarize-document");
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "", text: "— paste text instead —" }));
  for (const document_ of (await response.json()).documents) {
    const title = document_.metadata.title || document_.source;
    select.append(el("option", { value: String(document_.id), text: `${title} (${document_.collection})` }));
  }
  select.value = chosen;
}

async function summarize(event) {
  event.preventDefault();
  const status = $("#summarize-status");
  const documentId = $("#summarize-document").value;
  const payload = { words: Number($("#summarize-words").value) || 130, stream: true };
  if (documentId) payload.document_id = Number(documentId);
  else payload.text = $("#summarize-text").value;
  $("#summary-box").hidden = false;
  $("#summary").textContent = "";
  status.textContent = "Summarizing…";
  try {
    const response = await api("/summarize", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    if (!response.ok) throw new Error(await errorText(response));
    for await (const { event: kind, data } of readEvents(response)) {
      if (kind === "token") $("#summary").textContent += data.text;
      else if (kind === "done") {
        $("#summary").textContent = data.summary;
        status.textContent = data.rounds > 1 ? `Done (${data.rounds} rounds: the text was summarized in pieces).` : "Done.";
      } else if (kind === "error") throw new Error(data.error ? data.error.message : "the summary failed");
    }
  } catch (error) {
    status.textContent = `Error: ${error.message}`;
  }
}

// ---- Documents ------------------------------------------------------------------------

async function loadDocuments() {
  const response = await api("/documents?limit=500");
  if (!response.ok) {
    $("#documents-count").textContent = `Error: ${await errorText(response)}`;
    return;
  }
  const body = await response.json();
  const rows = $("#documents-table tbody");
  rows.replaceChildren();
  for (const document_ of body.documents) {
    const remove = el("button", { type: "button", class: "danger", text: "Delete" });
    const title = document_.metadata.title || document_.source;
    remove.setAttribute("aria-label", `Delete ${title}`);
    remove.onclick = () => deleteDocument(document_.id, title);
    const name = el("td", {}, el("div", { text: String(title) }), el("div", { class: "hint", text: document_.source }));
    rows.append(el("tr", {}, name, el("td", { text: document_.collection }), el("td", { text: String(document_.chunk_count) }),
      el("td", { text: document_.updated_at.slice(0, 19).replace("T", " ") }), el("td", {}, remove)));
  }
  $("#documents-count").textContent = `${body.total} document(s).`;
}

async function deleteDocument(id, title) {
  if (!confirm(`Delete “${title}” and its chunks?`)) return;
  const response = await api(`/documents/${id}`, { method: "DELETE" });
  $("#upload-status").textContent = response.ok ? `Deleted “${title}”.` : `Error: ${await errorText(response)}`;
  loadDocuments();
  loadCollections();
}

async function upload(event) {
  event.preventDefault();
  const status = $("#upload-status");
  const file = $("#upload-file").files[0];
  const text = $("#upload-text").value;
  if (!file && !text.trim()) {
    status.textContent = "Choose a file or paste a text.";
    return;
  }
  const metadata = {};
  for (const key of ["title", "url", "date", "author"]) {
    const value = $(`#upload-${key}`).value.trim();
    if (value) metadata[key] = value;
  }
  const form = new FormData();
  if (file) form.append("file", file);
  else form.append("text", text);
  form.append("metadata", JSON.stringify(metadata));
  form.append("collection", $("#upload-collection").value.trim() || "default");
  const source = $("#upload-source").value.trim();
  if (source) form.append("source", source);
  const response = await api("/documents", { method: "POST", body: form });
  if (!response.ok) {
    status.textContent = `Error: ${await errorText(response)}`;
    return;
  }
  const job = await response.json();
  status.textContent = `Queued as job ${job.id}.`;
  event.target.reset();
  followJob(job);
}

async function followJob(job) {
  const item = el("li", { "data-job-id": job.id });
  $("#jobs").prepend(item);
  for (;;) {
    const report = job.report
      ? ` — added ${job.report.added}, updated ${job.report.updated}, unchanged ${job.report.unchanged}, chunks ${job.report.chunks_embedded}`
      : "";
    item.textContent = `${job.source} → ${job.collection}: ${job.status} (${job.stage})${report}${job.error ? ` — ${job.error}` : ""}`;
    if (job.status === "succeeded" || job.status === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, 700));
    const response = await api(`/jobs/${job.id}`);
    if (!response.ok) break;
    job = await response.json();
  }
  loadDocuments();
  loadCollections();
}

// ---- Start ----------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll(".tab")) tab.onclick = () => showView(tab.dataset.view);
  $("#ask-form").onsubmit = ask;
  $("#new-conversation").onclick = newConversation;
  $("#summarize-form").onsubmit = summarize;
  $("#upload-form").onsubmit = upload;
  $("#question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("#ask-form").requestSubmit();
  });
  $("#forget-key").hidden = !apiKey;
  $("#forget-key").onclick = () => {
    sessionStorage.removeItem(KEY_STORAGE);
    apiKey = "";
    $("#forget-key").hidden = true;
  };
  loadCollections();
});
