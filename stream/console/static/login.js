// Sign in: a login CSRF token first (GET /api/csrf, sent back as X-CSRF-Token), then
// POST /api/session; on success to ?next= (a path of this site only) or /alerts.
"use strict";

(function () {
  const form = document.getElementById("login-form");
  const user = document.getElementById("username");
  const pass = document.getElementById("password");
  const submit = document.getElementById("login-submit");
  const error = document.getElementById("login-error");
  let csrfP = null;  // one login token per attempt: cookie and value from the same answer
  let lockedUntil = 0;
  let lockTimer = null;

  /** only a path of this site: "/x" but not "//host" or "/\host" */
  function nextPath() {
    const n = new URLSearchParams(location.search).get("next") || "";
    if (n.startsWith("/") && !n.startsWith("//") && !n.startsWith("/\\") && !/[\r\n\t]/.test(n)
        && !n.startsWith("/login")) return n;
    return "/alerts";
  }

  function say(text) { error.textContent = text; }

  async function getCsrf() {
    const r = await fetch("/api/csrf", { credentials: "same-origin", cache: "no-store" });
    if (!r.ok) throw new Error(`the console did not answer (${r.status})`);
    return (await r.json()).csrf;
  }
  function token() {
    if (csrfP === null) csrfP = getCsrf().catch((e) => { csrfP = null; throw e; });
    return csrfP;
  }

  function detail(data, status) {
    const d = data && data.detail;
    if (typeof d === "string" && d) return d;
    if (Array.isArray(d)) return d.map((x) => (x && x.msg) || String(x)).join("; ");
    return `sign-in failed (${status})`;
  }

  function lockFor(seconds) {
    lockedUntil = Date.now() + seconds * 1000;
    submit.disabled = true;
    const paint = () => {
      const left = Math.ceil((lockedUntil - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(lockTimer);
        submit.disabled = false;
        say("You can try again now.");
        return;
      }
      say(`Too many sign-in attempts. Try again in ${left} s.`);
    };
    clearInterval(lockTimer);
    paint();
    lockTimer = setInterval(paint, 1000);
  }

  async function login(retried) {
    const csrf = await token();
    csrfP = null;
    const r = await fetch("/api/session", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ username: user.value.trim(), password: pass.value }),
    });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.ok) {
      location.replace(nextPath());
      return;
    }
    if (r.status === 403 && !retried) return login(true);  // the login token expired (an hour)
    if (r.status === 429) {
      const after = parseInt(r.headers.get("Retry-After") || "", 10);
      lockFor(Number.isFinite(after) && after > 0 ? after : 60);
      return;
    }
    pass.value = "";
    pass.focus();
    say(detail(data, r.status));
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (Date.now() < lockedUntil) return;
    if (!user.value.trim() || !pass.value) {
      say("Enter your user name and password.");
      (user.value.trim() ? pass : user).focus();
      return;
    }
    say("");
    submit.disabled = true;
    submit.textContent = "Signing in\u2026";
    try {
      await login(false);
    } catch (e) {
      say(`The console is not answering: ${e.message}`);
    } finally {
      submit.textContent = "Sign in";
      if (Date.now() >= lockedUntil) submit.disabled = false;
    }
  });

  // fetch the token early (the form also works if this fails: it asks again on submit)
  token().catch(() => {});

  // already signed in (e.g. the back button): straight on
  fetch("/api/me", { credentials: "same-origin", cache: "no-store" })
    .then((r) => { if (r.ok) location.replace(nextPath()); })
    .catch(() => {});
})();
