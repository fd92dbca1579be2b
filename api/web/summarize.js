// Summarize: an indexed document or pasted text, the summary streamed as it is written.

import { api, streamEvents } from "./api.js";
import { $, el } from "./dom.js";

// The indexed documents as choices, keeping the one chosen.
export async function loadDocumentChoices() {
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

// The summarize form's submit handler.
export async function summarize(event) {
  event.preventDefault();
  const status = $("#summarize-status");
  const summary = $("#summary");
  const documentId = $("#summarize-document").value;
  const payload = { stream: true };
  const words = $("#summarize-words").valueAsNumber;
  if (Number.isInteger(words)) payload.words = words; // else the service's default
  if (documentId) payload.document_id = Number(documentId);
  else payload.text = $("#summarize-text").value;
  $("#summary-box").hidden = false;
  summary.textContent = "";
  status.textContent = "Summarizing…";
  try {
    for await (const { event: kind, data } of streamEvents("/summarize", payload, "the summary failed")) {
      if (kind === "token") summary.textContent += data.text;
      else if (kind === "done") {
        summary.textContent = data.summary;
        status.textContent = data.rounds > 1 ? `Done (${data.rounds} rounds: the text was summarized in pieces).` : "Done.";
      }
    }
  } catch (error) {
    status.textContent = `Error: ${error.message}`;
  }
}
