// slimrec serve: the web page's logic. No framework, no build step, no external scripts.
// Every text from the server (titles, ids, rationales) is untrusted: it is only ever set
// through textContent / option.text, never parsed as HTML, so it renders as text.
"use strict";

const $ = (id) => document.getElementById(id);

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function call(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers() });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    let message = (body && body.detail) ? String(body.detail) : response.statusText;
    const retry = response.headers.get("Retry-After");
    if (retry) message += ` (retry in ${retry} s)`;
    throw new Error(`${response.status}: ${message}`);
  }
  return body;
}

function el(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("status").textContent = "";
}

function render(answer) {
  $("error").hidden = true;
  const rationale = answer.rationale;
  const steps = rationale ? rationale.steps : ["", "", ""];
  for (let i = 0; i < 3; i++) {
    $(`rationale-step${i + 1}`).textContent = steps[i] || "(not found in the rationale)";
  }
  renderSuggestions(rationale ? rationale.suggestions || [] : []);
  $("rationale-text").textContent = rationale ? rationale.text : "";
  $("rationale-source").textContent = rationale ? `(${rationale.source})` : "(no rationale)";
  const body = $("rec-table").querySelector("tbody");
  body.replaceChildren();
  for (const item of answer.items) {
    const row = el("tr");
    row.append(el("td", item.rank), el("td", item.title), el("td", item.raw_id),
               el("td", item.score.toFixed(4)));
    body.append(row);
  }
  const read = $("history-read");
  read.replaceChildren(...answer.history.map((item) => el("li", `${item.title} (${item.raw_id})`)));
  $("results").hidden = false;
  const who = answer.user !== null ? `user ${answer.user}` : "this history";
  $("status").textContent = `${answer.items.length} items for ${who}`;
}

// Step 3 line by line: a suggestion that names a catalog item links to it (a click adds
// it to the history box); one that names nothing in the catalog says so.
function renderSuggestions(suggestions) {
  const list = $("rationale-suggestions");
  list.replaceChildren();
  for (const s of suggestions) {
    const li = el("li", s.text);
    if (s.item) {
      const link = el("button", `in the catalog: ${s.item.title} (${s.item.raw_id})`);
      link.type = "button";
      link.className = "catalog-link";
      link.addEventListener("click", () => addToHistory(s.item.raw_id));
      li.append(" ", link);
    } else {
      li.append(" ", el("span", "(not in the catalog)"));
    }
    list.append(li);
  }
  const grounded = suggestions.filter((s) => s.item).length;
  $("rationale-grounded").textContent = suggestions.length
    ? `${grounded} of ${suggestions.length} suggestions found in the catalog` : "";
}

function addToHistory(rawId) {
  const text = $("history").value.replace(/\s*$/, "");
  $("history").value = (text ? text + "\n" : "") + rawId;
}

async function run(request) {
  $("status").textContent = "thinking…";
  $("error").hidden = true;
  try {
    render(await request());
  } catch (e) {
    showError(e.message);
  }
}

function k() {
  return Number.parseInt($("k").value, 10) || 10;
}

$("user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const user = $("user-select").value;
  run(() => call(`/users/${encodeURIComponent(user)}/recommendations?k=${k()}`));
});

$("history-form").addEventListener("submit", (event) => {
  event.preventDefault();
  // Sent as text: the server reads an original id (what the page shows) or a title.
  const history = $("history").value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (!history.length) { showError("type at least one item"); return; }
  run(() => call("/recommend", { method: "POST", body: JSON.stringify({ history, k: k() }) }));
});

let searchTimer = null;
$("item-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const q = $("item-search").value;
    try {
      const found = await call(`/items?q=${encodeURIComponent(q)}&limit=20`);
      const list = $("item-results");
      list.replaceChildren();
      for (const item of found.items) {
        const li = el("li", `${item.title} (${item.raw_id})`);
        li.dataset.id = item.raw_id;
        li.addEventListener("click", () => addToHistory(item.raw_id));
        list.append(li);
      }
    } catch (e) {
      showError(e.message);
    }
  }, 150);
});

async function loadUsers() {
  try {
    const health = await call("/health");
    const m = health.model;
    $("model-info").textContent =
      `${m.method} on ${m.backbone || "text"} (seed ${m.seed}); ${health.items} items, ` +
      `${health.users} users; new histories ${health.student ? "explained by the student" : "not explained"}`;
    await listUsers("");
  } catch (e) {
    showError(e.message);
  }
}

// The picker lists at most 500 users; the search box reaches every other one. Only the
// latest query's answer is shown (an earlier, slower one must not overwrite it).
let usersAsked = 0;
async function listUsers(query) {
  const mine = ++usersAsked;
  try {
    const found = await call(`/users?limit=500&q=${encodeURIComponent(query)}`);
    if (mine !== usersAsked) return;
    const select = $("user-select");
    select.replaceChildren();
    for (const user of found.users) {
      const option = document.createElement("option");
      option.value = user.id;
      option.text = `${user.id} (${user.history_length} items)`;
      select.append(option);
    }
  } catch (e) {
    showError(e.message);
  }
}

let userTimer = null;
$("user-search").addEventListener("input", () => {
  clearTimeout(userTimer);
  userTimer = setTimeout(() => listUsers($("user-search").value.trim()), 150);
});

$("api-key").addEventListener("change", loadUsers);
loadUsers();
