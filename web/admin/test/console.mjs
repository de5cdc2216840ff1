// Drives the back-office console in Chromium (Playwright): log in, look at every
// page, ban a user and see their WebSocket closed (3501), unban, find the audit
// entry; add a mask word and a review word and see a chat user's (bob's) message
// stored and pushed starred; delete one flagged message (recalled) and approve
// another in the review queue; turn the flag msgtype.rich off and on and see
// his sends refused and allowed; close registration and limit his send rate and
// see both enforced; an auditor is offered no changes. edge/e2e/console_test.go
// starts the stack and runs this with BASE_URL, ADMIN_USER, ADMIN_PASSWORD,
// TARGET_USER, TARGET_TOKEN, BOB_ID, BOB_TOKEN, BOB_TOKEN2 (two sessions of a
// member of GROUP_CONV), GROUP_CONV, SHOTS.
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} not set`);
  return v;
};
const base = env("BASE_URL");
const shots = env("SHOTS");
const target = env("TARGET_USER");

const browser = await chromium.launch({ executablePath: env("CHROMIUM_PATH"), args: ["--no-sandbox", "--disable-gpu"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
page.on("dialog", (d) => d.accept()); // the confirmations of ban, force logout...
page.on("pageerror", (e) => {
  console.log("page error: " + e.message);
  process.exitCode = 1;
});
const shot = async (name) => {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  console.log(`screenshot ${name}.png`);
};
const step = (s) => console.log("step: " + s);

try {
  step("login page");
  await page.goto(base + "/admin");
  await page.getByLabel("Username").waitFor();
  await shot("01-login");
  await page.getByLabel("Username").fill(env("ADMIN_USER"));
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "wrong username" }).waitFor();
  await page.getByLabel("Password").fill(env("ADMIN_PASSWORD"));
  await page.getByRole("button", { name: "Sign in" }).click();

  step("dashboard");
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  await page.locator("[data-stat=online]").filter({ hasText: /^\d+$/ }).waitFor();
  await page.getByText("Database").waitFor();
  await shot("02-dashboard");

  // The target user's socket, opened from the page as the chat app would.
  step("the user's WebSocket");
  await page.evaluate(({ url }) => {
    window.__closed = null;
    const ws = new WebSocket(url);
    ws.onclose = (e) => { window.__closed = e.code; };
    window.__ws = ws;
    return new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error("ws error")); });
  }, { url: base.replace(/^http/, "ws") + "/ws?token=" + encodeURIComponent(env("TARGET_TOKEN")) });

  step("users");
  await page.locator("[data-nav=users]").click();
  await page.getByPlaceholder("Search by username or id").fill(target);
  await page.locator(`tr[data-user="${target}"]`).waitFor();
  await shot("03-users");
  await page.locator(`tr[data-user="${target}"] a`).first().click();
  await page.getByRole("heading", { name: "Actions" }).waitFor();
  await shot("04-user");

  step("ban");
  await page.getByPlaceholder("Reason (required)").fill("spam from the console test");
  await page.getByRole("button", { name: "Ban", exact: true }).click();
  await page.locator("[data-status]").filter({ hasText: "banned" }).waitFor();
  await page.waitForFunction(() => window.__closed !== null, null, { timeout: 10000 });
  const code = await page.evaluate(() => window.__closed);
  console.log("the banned user's socket closed with " + code);
  if (code !== 3501) throw new Error(`close code ${code}, want 3501`);
  await shot("05-user-banned");

  step("unban");
  await page.getByRole("button", { name: "Unban" }).click();
  await page.locator("[data-status]").filter({ hasText: "active" }).waitFor();

  step("groups");
  await page.locator("[data-nav=groups]").click();
  await page.getByPlaceholder("Search by name or id").waitFor();
  await page.locator("table a").first().waitFor();
  await shot("06-groups");
  await page.locator("table tbody a").first().click();
  await page.getByRole("heading", { name: "Members" }).waitFor();
  await shot("07-group");

  step("audit log");
  await page.locator("[data-nav=audit]").click();
  await page.locator("tr[data-action='user.ban']").first().waitFor();
  await page.locator("tr[data-action='user.unban']").first().waitFor();
  const ban = await page.locator("tr[data-action='user.ban']").first().innerText();
  if (!ban.includes("spam from the console test") && !ban.includes("reason")) throw new Error("ban entry without its after state: " + ban);
  await shot("08-audit");

  step("alerts");
  await page.locator("[data-nav=alerts]").click();
  await page.getByLabel("Name").fill("errors");
  await page.getByRole("button", { name: "Add rule" }).click();
  await page.locator("tr[data-rule=errors]").waitFor();
  await shot("09-alerts");

  step("operators");
  await page.locator("[data-nav=operators]").click();
  await page.locator("input[name=op-username]").fill("helper");
  await page.locator("input[name=op-password]").fill("helper-pass-1");
  await page.locator("select[name=op-role]").selectOption("auditor");
  await page.getByRole("button", { name: "Create operator" }).click();
  await page.locator("tr[data-operator=helper]").waitFor();
  await shot("10-operators");

  step("my account");
  await page.locator("[data-nav=account]").click();
  await page.getByRole("button", { name: "Set up an authenticator app" }).click();
  await page.locator("[data-secret]").waitFor();
  await shot("11-account");

  // A chat user (bob) on two sockets opened from the page: one sends, the other
  // sees the pushes.
  step("bob's WebSockets");
  const wsURL = (tok) => base.replace(/^http/, "ws") + "/ws?token=" + encodeURIComponent(tok);
  await page.evaluate(({ a, b }) => {
    const open = (url) => new Promise((ok, fail) => {
      const c = { ws: new WebSocket(url), pending: {}, pushes: [], n: 0 };
      c.ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.event) c.pushes.push(m);
        else if (c.pending[m.id]) { c.pending[m.id](m); delete c.pending[m.id]; }
      };
      c.ws.onopen = () => ok(c);
      c.ws.onerror = () => fail(new Error("ws error"));
    });
    window.__call = (c, op, data) => new Promise((ok) => {
      const id = "r" + ++c.n;
      c.pending[id] = ok;
      c.ws.send(JSON.stringify({ id, op, data }));
    });
    return Promise.all([open(a), open(b)]).then(([x, y]) => { window.__bob = x; window.__bob2 = y; });
  }, { a: wsURL(env("BOB_TOKEN")), b: wsURL(env("BOB_TOKEN2")) });
  const chat = (op, data) => page.evaluate(({ op, data }) => window.__call(window.__bob, op, data), { op, data });
  const conv = env("GROUP_CONV");
  let sent = 0;
  const send = (type, content) => chat("msg.send", { conv_id: conv, client_msg_id: "console-" + ++sent, type, content });
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  // until retries fn (a change reaches the workers by an event, within moments).
  const until = async (what, fn) => {
    for (let i = 0; i < 40; i++) {
      const v = await fn();
      if (v) return v;
      await pause(250);
    }
    throw new Error("never: " + what);
  };

  step("sensitive words");
  await page.locator("[data-nav=words]").click();
  await page.getByRole("heading", { name: "Add a word" }).waitFor();
  for (const [word, action] of [["frobnicate", "review"], ["zonk", "mask"], ["ｔｅｍｐｏｒａｒｙ", "block"]]) {
    await page.locator("input[name=word]").fill(word);
    await page.locator("input[name=category]").fill("console-test");
    await page.locator("select[name=action]").selectOption(action);
    await page.getByRole("button", { name: "Add word" }).click();
    await page.locator(`tr[data-word=${word.normalize("NFKC").toLowerCase()}]`).filter({ hasText: action }).waitFor();
  }
  // Stored folded (full-width to half-width), and removed again.
  await page.locator("tr[data-word=temporary]").getByRole("button", { name: "Remove" }).click();
  await page.locator("tr[data-word=temporary]").waitFor({ state: "detached" });
  await page.getByPlaceholder("Search words").fill("zon");
  await page.locator("tr[data-word=frobnicate]").waitFor({ state: "detached" });
  await page.locator("tr[data-word=zonk]").waitFor();
  await page.getByPlaceholder("Search words").fill("");
  await page.locator("tr[data-word=frobnicate]").waitFor();
  await shot("12-words");

  step("a message with the mask word arrives masked");
  const masked = await until("a masked message", async () => {
    const r = await send("text", { text: "what a ZONK day" });
    if (!r.ok) throw new Error("msg.send: " + JSON.stringify(r.error));
    const h = await chat("msg.history", { conv_id: conv, limit: 1 });
    const m = h.data.messages[0];
    if (m.seq !== r.data.seq) throw new Error("history's last message is not the one sent");
    return m.content.text === "what a **** day" ? m : null;
  });
  console.log("stored: " + masked.content.text);
  const pushed = await page.waitForFunction((seq) => {
    const p = window.__bob2.pushes.find((p) => p.event === "msg.new" && p.data.seq === seq);
    return p && p.data.content.text;
  }, masked.seq, { timeout: 10000 });
  if ((await pushed.jsonValue()) !== "what a **** day") throw new Error("pushed unmasked: " + (await pushed.jsonValue()));

  step("review queue: a flagged message, deleted");
  const flagged = await send("text", { text: "shall we frobnicate" });
  if (!flagged.ok) throw new Error("msg.send: " + JSON.stringify(flagged.error));
  await page.locator("[data-nav=review]").click();
  const row = page.locator("tr[data-item]").filter({ hasText: "shall we frobnicate" });
  await until("the flagged message in the queue", async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    return (await row.count()) > 0;
  });
  await shot("13-review");
  await row.getByRole("button", { name: "Delete…" }).click();
  await page.getByRole("button", { name: "Delete message" }).click();
  await row.waitFor({ state: "detached" });
  await page.waitForFunction((seq) => window.__bob2.pushes.some((p) => p.event === "msg.recalled" && p.data.seq === seq), flagged.data.seq, { timeout: 10000 });
  await page.locator("select[name=status]").selectOption("deleted");
  await page.locator("tr[data-item]").filter({ hasText: "shall we frobnicate" }).waitFor();

  step("review queue: a flagged message, approved");
  await page.locator("select[name=status]").selectOption("pending");
  const fine = await send("text", { text: "frobnicate politely" });
  if (!fine.ok) throw new Error("msg.send: " + JSON.stringify(fine.error));
  const fineRow = page.locator("tr[data-item]").filter({ hasText: "frobnicate politely" });
  await until("the second flagged message in the queue", async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    return (await fineRow.count()) > 0;
  });
  await fineRow.getByRole("button", { name: "Approve" }).click();
  await fineRow.waitFor({ state: "detached" });
  await page.locator("select[name=status]").selectOption("approved");
  await fineRow.waitFor();
  const kept = await chat("msg.history", { conv_id: conv, limit: 1 });
  if (kept.data.messages[0].seq !== fine.data.seq || kept.data.messages[0].content.text !== "frobnicate politely") throw new Error("the approved message changed: " + JSON.stringify(kept.data.messages[0]));

  step("config and flags: msgtype.rich off, then on");
  const rich = () => send("rich", { text: "bold move", spans: [{ start: 0, end: 4, style: "bold" }] });
  const first = await rich();
  if (!first.ok) throw new Error("rich before the flag: " + JSON.stringify(first.error));
  await page.locator("[data-nav=config]").click();
  await page.locator("tr[data-item='message.recall_window']").waitFor();
  await page.locator("input[name=flag-name]").fill("msgtype.rich");
  await page.locator("input[name=flag-description]").fill("rich text messages");
  await page.getByRole("button", { name: "Create flag" }).click();
  const flag = page.locator("tr[data-flag='msgtype.rich']");
  await flag.locator("[data-state]").filter({ hasText: "off" }).waitFor();
  const refused = await until("rich refused", async () => {
    const r = await rich();
    return !r.ok && r.error;
  });
  if (refused.code !== "forbidden" || !refused.message.includes("turned off")) throw new Error("refusal: " + JSON.stringify(refused));
  console.log("with the flag off: " + refused.message);
  await shot("14-config");
  await flag.getByRole("button", { name: "Turn on" }).click();
  await flag.locator("[data-state]").filter({ hasText: "on" }).waitFor();
  await until("rich allowed again", async () => (await rich()).ok);
  await flag.locator("a").click();
  await page.getByRole("heading", { name: "Per-user overrides (0)" }).waitFor();
  await shot("15-flag");

  step("config item: registration closed, then open again");
  await page.getByRole("link", { name: "← Config & flags" }).click();
  const reg = page.locator("tr[data-item='account.registration_open']");
  await reg.locator("select").selectOption("false");
  await reg.getByRole("button", { name: "Set", exact: true }).click();
  await reg.locator("[data-value]").filter({ hasText: "false" }).waitFor();
  let regs = 0;
  const register = () => page.evaluate(async (username) => {
    const r = await fetch("/api/v1/users/register", { method: "POST", body: JSON.stringify({ username, password: "password-123" }) });
    return { status: r.status, body: await r.json() };
  }, "consolereg" + ++regs);
  const closed = await until("registration refused", async () => {
    const r = await register();
    return r.status !== 200 && r.body.error;
  });
  if (closed.code !== "forbidden") throw new Error("registration refused with " + JSON.stringify(closed));
  console.log("with registration closed: " + closed.message);

  step("a per-user send rate");
  const bobID = env("BOB_ID");
  await page.locator("input[name=rate-user]").fill(bobID);
  await page.locator("input[name=rate-group_per_minute]").fill("1");
  await page.getByRole("button", { name: "Set override", exact: true }).click();
  await page.locator(`tr[data-rate='${bobID}']`).waitFor();
  const limited = await until("bob's sends limited", async () => {
    const r = await send("text", { text: "one more" });
    return !r.ok && r.error;
  });
  if (limited.code !== "rate_limited") throw new Error("limited with " + JSON.stringify(limited));
  console.log("with the override: " + limited.message);
  await shot("16-config-changed");

  await reg.getByRole("button", { name: "Reset" }).click();
  await reg.locator("[data-value]").filter({ hasText: "default" }).waitFor();
  await until("registration open again", async () => (await register()).status === 200);
  await page.locator("input[name=rate-user]").fill(bobID); // all limits empty: the override goes
  await page.getByRole("button", { name: "Set override", exact: true }).click();
  await page.locator(`tr[data-rate='${bobID}']`).waitFor({ state: "detached" });
  await until("bob's sends allowed again", async () => (await send("text", { text: "free again" })).ok);

  const waiting = await send("text", { text: "frobnicate once more" });
  if (!waiting.ok) throw new Error("msg.send: " + JSON.stringify(waiting.error));

  step("log out");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();

  step("an auditor's read-only views");
  await page.getByLabel("Username").fill("helper");
  await page.getByLabel("Password").fill("helper-pass-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator(".who").filter({ hasText: "auditor" }).waitFor();
  await page.locator("[data-nav=config]").click();
  await page.locator("tr[data-flag='msgtype.rich'] a").click();
  await page.getByRole("heading", { name: "Per-user overrides (0)" }).waitFor();
  if (await page.locator("button[name=toggle]").count()) throw new Error("an auditor is offered a flag's toggle");
  await page.locator("[data-nav=words]").click();
  await page.locator("tr[data-word=zonk]").waitFor();
  if (await page.getByRole("button", { name: "Add word" }).count()) throw new Error("an auditor is offered Add word");
  if (await page.getByRole("button", { name: "Remove" }).count()) throw new Error("an auditor is offered Remove");
  await shot("17-words-auditor");
  await page.locator("[data-nav=config]").click();
  await page.locator("tr[data-flag='msgtype.rich']").waitFor();
  for (const b of ["Create flag", "Turn off", "Set", "Set override"]) {
    if (await page.getByRole("button", { name: b, exact: true }).count()) throw new Error("an auditor is offered " + b);
  }
  await page.locator("[data-nav=review]").click();
  await until("the pending item", async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    return (await page.locator("tr[data-item]").filter({ hasText: "frobnicate once more" }).count()) > 0;
  });
  for (const b of ["Approve", "Delete…"]) {
    if (await page.getByRole("button", { name: b }).count()) throw new Error("an auditor is offered " + b);
  }
  await shot("18-review-auditor");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  console.log("console test passed");
} catch (e) {
  await shot("failure").catch(() => {});
  console.log("FAILED: " + (e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
