// Ask: a conversation. Each question is sent with the earlier turns (`messages`), since the
// service keeps no state; the answer streams in, then its sources are shown.

import { api, streamEvents } from "./api.js";
import { $, el, highlighted, safeUrl } from "./dom.js";

// Earlier turns of this conversation, oldest first.
let conversation = [];
// A source "supports" an answer sentence when their embeddings are at least this close.
const SUPPORT_MIN_SCORE = 0.45;

// The collections this key may see, as checkboxes (none when there is only one).
export async function loadCollections() {
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

export function newConversation() {
  conversation = [];
  $("#thread").replaceChildren();
  $("#thread").hidden = true;
  $("#new-conversation").hidden = true;
  $("#follow-up-hint").hidden = true;
  $("#ask-status").textContent = "";
  $("#question").focus();
}

// The ask form's submit handler.
export async function ask(event) {
  event.preventDefault();
  const button = $("#ask-button");
  const status = $("#ask-status");
  const question = $("#question").value;
  const collections = [...document.querySelectorAll("#collections input:checked")].map((box) => box.value);
  const payload = { question, stream: true };
  const topK = $("#top-k").valueAsNumber;
  if (Number.isInteger(topK)) payload.top_k = topK; // else the service's default
  if (collections.length) payload.collections = collections;
  if (conversation.length) payload.messages = conversation;
  button.disabled = true;
  status.textContent = "Retrieving…";
  const turn = newTurn(question);
  const answer = turn.querySelector(".answer");
  try {
    for await (const { event: kind, data } of streamEvents("/ask", payload, "the answer failed")) {
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
