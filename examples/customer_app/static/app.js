// The customer app's page: the actas browser client, served by the actas server itself.
const actasUrl = document.querySelector('meta[name="actas-url"]').content;
const { Actas, mountAccessRequests, mountImpersonationBanner, mountImpersonationNotice } =
  await import(`${actasUrl}/v1/actas.js`);

const $ = (id) => document.getElementById(id);
const actas = await Actas.load({ frontendApi: actasUrl });
mountImpersonationBanner(actas, { container: $("banner") });
// Told once, on the next visit, that someone signed in as them (dismissed: never again).
mountImpersonationNotice(actas, { historyUrl: "#access-history" });

async function api(path, options = {}) {
  const token = await actas.getAuth().getToken();
  const response = await fetch(path, {
    ...options,
    headers: { ...(options.headers || {}), Authorization: `Bearer ${token}` },
  });
  return { status: response.status, body: await response.json() };
}

function text(el, value) { el.textContent = value; return el; }

let addressEdited = false;
$("address").addEventListener("input", () => { addressEdited = true; });

async function showAccount() {
  const auth = actas.getAuth();
  const user = actas.user;
  const name = user ? ([user.first_name, user.last_name].filter(Boolean).join(" ") || user.id) : "";
  text($("greeting"), `Hello, ${name}`);
  text($("who"), name);
  const me = await api("/api/me");
  text($("backend-saw"), me.body.actor
    ? `The backend sees ${me.body.actor.name || me.body.actor.sub} acting as you (act.sub = ${me.body.actor.sub}).`
    : `The backend sees you (${me.body.user_id}).`);
  // Shown as saved unless the user has started changing it: this runs again on every
  // change of the session, and must not undo their typing.
  if (!addressEdited) $("address").value = me.body.shipping_address;
  // A read-only impersonator cannot change it: the form says so (and the backend refuses).
  const readOnly = Boolean(auth.impersonation?.readOnly);
  $("address").disabled = readOnly;
  $("address-save").disabled = readOnly;
  $("address-note").hidden = !readOnly;
  // Deleting the account is refused to every impersonator (the backend's
  // forbid_impersonation): the page says so rather than offer a button that fails.
  $("delete-account").disabled = Boolean(auth.actor);
  $("delete-note").hidden = !auth.actor;
  const orders = $("orders");
  orders.replaceChildren(...me.body.orders.map((o) => text(document.createElement("li"), `${o.id}: ${o.item}, $${o.total}`)));
  const history = await fetch(`${actasUrl}/v1/me/access_history`, { credentials: "include" });
  const entries = history.ok ? (await history.json()).response : [];
  $("access-history").replaceChildren(...(entries.length ? entries.map((e) => text(document.createElement("li"),
    `${e.actor.name || e.actor.email || e.actor.sub} · ${e.mode === "read_only" ? "read-only" : "full access"} · ` +
    `${new Date(e.started_at).toISOString().slice(0, 16).replace("T", " ")} UTC · ` +
    `${e.reason || "no reason given"} · ${e.ended_at ? `${Math.round((e.ended_at - e.started_at) / 1000)} s` : "ongoing"}` +
    (e.activity.length ? ` · did: ${e.activity.map((a) => `${a.method} ${a.route}${a.refused ? " (refused: read-only)" : ""}`).join(", ")}` : "")))
    : [text(document.createElement("li"), "Nobody has accessed your account.")]));
}

// The user's say in impersonations: requests to answer, grants, who may sign in as them.
let unmountAccess = null;
function showAccess() {
  unmountAccess?.();
  unmountAccess = mountAccessRequests(actas, { container: $("access") });
}

async function render() {
  const auth = actas.getAuth();
  $("loading").hidden = true;
  $("signed-out").hidden = auth.isSignedIn;
  $("signed-in").hidden = !auth.isSignedIn;
  if (auth.isSignedIn) {
    showAccess();
    await showAccount();
  } else text($("who"), "");
}

$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch(`${actasUrl}/v1/client/sign_ins`, {
    method: "POST", credentials: "include", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ identifier: form.get("identifier"), password: form.get("password") }),
  });
  if (response.ok) { location.reload(); return; }
  const error = (await response.json()).errors[0];
  const out = $("sign-in-error"); out.hidden = false; text(out, error.long_message || error.message);
});

$("delete-account").addEventListener("click", async () => {
  const result = await api("/api/account/delete", { method: "POST" });
  const out = $("delete-result");
  out.className = result.status === 200 ? "" : "refused";
  text(out, result.status === 200 ? result.body.message : result.body.errors[0].message);
});

$("address-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const result = await api("/api/address", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ address: $("address").value }),
  });
  const out = $("address-result");
  if (result.status === 200) addressEdited = false;
  out.className = result.status === 200 ? "" : "refused";
  text(out, result.status === 200 ? `Saved: ${result.body.shipping_address}` : result.body.errors[0].message);
});

$("sign-out").addEventListener("click", async () => { await actas.getAuth().signOut(); });

// An impersonator who stops (or is stopped) is told so, with a way back to the dashboard.
$("back-to-dashboard").href = `${actasUrl}/dashboard/impersonations`;
let wasImpersonating = Boolean(actas.getAuth().actor);

let last = null;
actas.on("change", () => {
  const auth = actas.getAuth();
  if (wasImpersonating && !auth.actor) $("impersonation-ended").hidden = false;
  if (auth.actor) $("impersonation-ended").hidden = true;
  wasImpersonating = Boolean(auth.actor);
  const key = `${auth.isSignedIn}:${auth.sessionId}:${auth.actor ? auth.actor.sub : ""}:${auth.impersonation?.mode ?? ""}`;
  if (key !== last) { last = key; render(); }
});
{
  const auth = actas.getAuth();
  last = `${auth.isSignedIn}:${auth.sessionId}:${auth.actor ? auth.actor.sub : ""}:${auth.impersonation?.mode ?? ""}`;
}
render();
