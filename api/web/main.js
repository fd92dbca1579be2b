// The page: its views (tabs), the API key dialog, the form limits from GET /config, and the
// wiring of each form to its module. It uses the documented API only: /config, /collections,
// /ask, /summarize, /documents, /jobs. A module script runs once the document is parsed.

import { api, forgetKey, hasKey, setKeyPrompt } from "./api.js";
import { ask, loadCollections, newConversation } from "./ask.js";
import { $ } from "./dom.js";
import { loadDocuments, upload } from "./documents.js";
import { loadDocumentChoices, summarize } from "./summarize.js";

function showView(name) {
  for (const tab of document.querySelectorAll(".tab")) {
    const selected = tab.dataset.view === name;
    tab.setAttribute("aria-selected", String(selected));
    $(`#view-${tab.dataset.view}`).hidden = !selected;
  }
  if (name === "documents") loadDocuments();
  if (name === "summarize") loadDocumentChoices();
}

// The key dialog; resolves with the key given. `message` says why the last one was refused.
function askForKey(message) {
  const dialog = $("#key-dialog");
  const error = $("#key-error");
  error.hidden = !message;
  error.textContent = message || "";
  return new Promise((resolve) => {
    $("#key-form").onsubmit = (event) => {
      event.preventDefault();
      const key = $("#key-input").value.trim();
      $("#key-input").value = "";
      $("#forget-key").hidden = false;
      dialog.close();
      resolve(key);
    };
    if (!dialog.open) dialog.showModal();
    $("#key-input").focus();
  });
}

function setRange(input, { minimum, maximum, default: value }) {
  input.min = String(minimum);
  input.max = String(maximum);
  input.defaultValue = String(value); // shown unless the user already typed a value
}

// The fields' limits and defaults as the service checks them (it checks them all again; if
// /config fails the fields stay open and an empty one takes the service's default).
async function applyServerLimits() {
  const response = await api("/config"); // no key needed
  if (!response.ok) return;
  const config = await response.json();
  $("#question").maxLength = config.question.max_length;
  setRange($("#top-k"), config.top_k);
  setRange($("#summarize-words"), config.summary_words);
  const collection = $("#upload-collection");
  collection.pattern = config.collection_name.pattern;
  collection.defaultValue = config.collection_name.default;
}

setKeyPrompt(askForKey);
for (const tab of document.querySelectorAll(".tab")) tab.onclick = () => showView(tab.dataset.view);
$("#ask-form").onsubmit = ask;
$("#new-conversation").onclick = newConversation;
$("#summarize-form").onsubmit = summarize;
$("#upload-form").onsubmit = upload;
$("#question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("#ask-form").requestSubmit();
});
$("#forget-key").hidden = !hasKey();
$("#forget-key").onclick = () => {
  forgetKey();
  $("#forget-key").hidden = true;
};
document.addEventListener("documents-changed", loadCollections);
applyServerLimits();
loadCollections();
