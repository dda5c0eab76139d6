// actas dashboard: keeps times current without a reload. Nothing here is needed to
// use the dashboard; without it the server-rendered values simply stay as rendered.
//
// - <time class="ago" data-ms>: "3 min ago", refreshed every 15 s.
// - <span class="timer" data-ends-at>: a countdown (m:ss, or h mm), refreshed every
//   second; at zero it says what the element's data-done text says.
// The page carries the server's clock (body[data-now]) so that a browser whose clock
// is off still counts down to the server's limits.
(() => {
  "use strict";
  const serverNow = Number(document.body.dataset.now || Date.now());
  const skew = serverNow - Date.now();
  const now = () => Date.now() + skew;

  function relative(ms) {
    const delta = Math.trunc((now() - ms) / 1000);
    const future = delta < 0;
    const seconds = Math.abs(delta);
    if (seconds < 45) return future ? "in a few seconds" : "just now";
    // Whole units passed, as the server writes them (pages.relative).
    let size = 60, unit = "min";
    if (seconds >= 86400) { size = 86400; unit = "d"; }
    else if (seconds >= 3600) { size = 3600; unit = "h"; }
    const amount = Math.max(1, Math.floor(seconds / size));
    if (unit === "d" && amount > 30) return new Date(ms).toISOString().slice(0, 10);
    return future ? `in ${amount} ${unit}` : `${amount} ${unit} ago`;
  }

  function remaining(ms) {
    const seconds = Math.max(0, Math.floor((ms - now()) / 1000));
    if (seconds >= 3600) {
      const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
      return `${h} h ${String(m).padStart(2, "0")} min`;
    }
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  }

  function tickTimers() {
    for (const el of document.querySelectorAll(".timer[data-ends-at]")) {
      const ends = Number(el.dataset.endsAt);
      const text = ends <= now() ? (el.dataset.done || "0:00") : remaining(ends);
      if (el.textContent !== text) el.textContent = text;
    }
  }

  function tickTimes() {
    for (const el of document.querySelectorAll("time.ago[data-ms]")) {
      const text = relative(Number(el.dataset.ms));
      if (el.textContent !== text) el.textContent = text;
    }
  }

  // A form that changes a lot asks first (a native dialog: keyboard and screen reader
  // friendly, and no inline script for the CSP to allow).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // Impersonate opens the application in a new tab; this tab then shows the new
  // impersonation (and cannot send the same form twice meanwhile).
  for (const form of document.querySelectorAll("form[data-opens-app]")) {
    form.addEventListener("submit", () => {
      const note = document.createElement("p");
      note.className = "notice toast";
      note.setAttribute("role", "status");
      note.dataset.testid = "opening-app";
      note.textContent = "Opening the application in a new tab…";
      form.prepend(note);
      setTimeout(() => {
        for (const fieldset of form.querySelectorAll("fieldset.bare")) fieldset.disabled = true;
      }, 0);
      setTimeout(() => window.location.reload(), 2500);
    });
  }

  // Passkeys (WebAuthn): a form[data-passkey] is shown only where the browser has
  // WebAuthn. Its button fetches the options, asks the authenticator, and submits the
  // answer (base64url JSON, as the server's webauthn library reads it) in the form.
  const fromB64 = (s) => Uint8Array.from(
    atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4)),
    (c) => c.charCodeAt(0)).buffer;
  const toB64 = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  function answerOf(credential) {
    const r = credential.response;
    const response = { clientDataJSON: toB64(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = toB64(r.authenticatorData);
      response.signature = toB64(r.signature);
      if (r.userHandle) response.userHandle = toB64(r.userHandle);
    }
    return JSON.stringify({
      id: credential.id, rawId: toB64(credential.rawId), type: credential.type, response,
      clientExtensionResults: credential.getClientExtensionResults(),
    });
  }

  async function passkeyCeremony(form) {
    const purpose = form.dataset.passkey;
    const answer = await fetch(`/dashboard/passkeys/options?purpose=${purpose}`,
      { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!answer.ok) throw new Error("The dashboard refused to start. Reload the page and try again.");
    const { token, publicKey } = await answer.json();
    publicKey.challenge = fromB64(publicKey.challenge);
    let credential;
    if (purpose === "register") {
      publicKey.user.id = fromB64(publicKey.user.id);
      for (const c of publicKey.excludeCredentials || []) c.id = fromB64(c.id);
      credential = await navigator.credentials.create({ publicKey });
    } else {
      for (const c of publicKey.allowCredentials || []) c.id = fromB64(c.id);
      credential = await navigator.credentials.get({ publicKey });
    }
    form.elements.token.value = token;
    form.elements.credential.value = answerOf(credential);
    form.submit();
  }

  if (window.PublicKeyCredential) {
    for (const el of document.querySelectorAll("[data-passkey-only]")) el.hidden = false;
    for (const form of document.querySelectorAll("form[data-passkey]")) {
      form.hidden = false;
      const button = form.querySelector("[data-passkey-start]");
      const error = form.querySelector("[data-passkey-error]");
      button.addEventListener("click", async () => {
        error.hidden = true;
        button.disabled = true;
        try {
          await passkeyCeremony(form);
        } catch (failure) {
          error.textContent = failure.name === "NotAllowedError"
            ? "The passkey was not used (cancelled, or it timed out). Try again."
            : failure.name === "InvalidStateError"
              ? "This device already has a passkey for your account."
              : String(failure.message || failure);
          error.hidden = false;
          button.disabled = false;
        }
      });
    }
  }

  tickTimers();
  tickTimes();
  setInterval(tickTimers, 1000);
  setInterval(tickTimes, 15000);
})();
