// Documents: the indexed list, delete, upload, and each upload's indexing job followed to its end.
// A change is announced as a `documents-changed` event on `document` (main.js refreshes the
// ask form's collections on it).

import { api, errorText } from "./api.js";
import { $, el } from "./dom.js";

const JOB_POLL_MS = 700;

function changed() {
  loadDocuments();
  document.dispatchEvent(new CustomEvent("documents-changed"));
}

export async function loadDocuments() {
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
  changed();
}

// The upload form's submit handler.
export async function upload(event) {
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
  const collection = $("#upload-collection").value.trim();
  if (collection) form.append("collection", collection); // else the service's default
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

// The job's status as a line of #jobs, polled until it succeeds or fails.
async function followJob(job) {
  const item = el("li", { "data-job-id": job.id });
  $("#jobs").prepend(item);
  for (;;) {
    const report = job.report
      ? ` — added ${job.report.added}, updated ${job.report.updated}, unchanged ${job.report.unchanged}, chunks ${job.report.chunks_embedded}`
      : "";
    item.textContent = `${job.source} → ${job.collection}: ${job.status} (${job.stage})${report}${job.error ? ` — ${job.error}` : ""}`;
    if (job.status === "succeeded" || job.status === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
    const response = await api(`/jobs/${job.id}`);
    if (!response.ok) break;
    job = await response.json();
  }
  changed();
}
