// Drives the back-office console in Chromium (Playwright): log in, look at every
// page, ban a user and see their WebSocket closed (3501), unban, find the audit
// entry. edge/e2e/console_test.go starts the stack and runs this with
// BASE_URL, ADMIN_USER, ADMIN_PASSWORD, TARGET_USER, TARGET_TOKEN, SHOTS.
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

  step("log out");
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
