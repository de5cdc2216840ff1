// The web chat app in chromium against a real stack (run by edge/webtest's
// TestChatBrowser): three people register, two befriend and chat, one closes the
// app and comes back to find the messages, a recall reaches the other side, and a
// group of three talks. A screenshot of each step goes to ARTIFACT_DIR.
//
//   NATTER_URL=http://127.0.0.1:8080 CHROMIUM_PATH=/usr/bin/chromium ARTIFACT_DIR=/tmp/shots node e2e/chat.mjs
import { chromium } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

const base = process.env.NATTER_URL;
const shots = process.env.ARTIFACT_DIR ?? '.';
if (!base) throw new Error('NATTER_URL is not set');

const T = 15_000; // per wait: generous for a loaded 2-core machine
const tag = randomBytes(3).toString('hex');
const names = { alice: `alice${tag}`, bob: `bob${tag}`, carol: `carol${tag}` };
let step = 0;
const PNG = png(48, 32);

/** A w×h PNG of a blue-to-green gradient, made here (no fixture files). */
function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const raw = Buffer.alloc((3 * w + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = y * (3 * w + 1) + 1 + 3 * x;
      raw[o] = 40;
      raw[o + 1] = Math.round((255 * x) / w);
      raw[o + 2] = Math.round((255 * y) / h);
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// launch() gives every run a fresh temporary profile (user-data dir).
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

function log(...a) {
  console.log(`[${((performance.now()) / 1000).toFixed(1)}s]`, ...a);
}

async function shot(page, what) {
  const file = join(shots, `${String(++step).padStart(2, '0')}-${what}.png`);
  await page.screenshot({ path: file });
  log('screenshot', file);
}

async function person(who, viewport = { width: 1000, height: 640 }, ctx) {
  ctx ??= await browser.newContext({ viewport });
  const page = await ctx.newPage();
  await page.setViewportSize(viewport);
  page.setDefaultTimeout(T);
  page.on('pageerror', (e) => log(who, 'page error:', e.message));
  page.on('console', (m) => { if (m.type() === 'error') log(who, 'console:', m.text()); });
  await page.goto(base + '/');
  await page.getByTestId('username').fill(names[who]);
  await page.getByTestId('password').fill('password-' + who);
  await page.getByTestId('register').click();
  await online(page);
  return { ctx, page };
}

function online(page) {
  return page.locator('[data-testid="conn-state"]', { hasText: 'open' }).waitFor();
}

async function befriend(a, bName, b, aName) {
  await a.getByTestId('tab-people').click();
  await a.getByTestId('add-friend-name').fill(bName);
  await a.getByTestId('add-friend').click();
  await a.getByTestId('people-msg').filter({ hasText: 'Request sent' }).waitFor();
  await b.getByTestId('tab-people').click();
  const req = b.locator(`[data-testid="friend-request"][data-name="${aName}"]`);
  await req.waitFor();
  await req.getByTestId('accept').click();
  await b.locator(`[data-testid="friend"][data-name="${aName}"]`).waitFor();
  await a.locator(`[data-testid="friend"][data-name="${bName}"]`).waitFor();
}

async function say(page, text) {
  await page.getByTestId('compose').fill(text);
  await page.getByTestId('send').click();
  await message(page, text);
}

function message(page, text) {
  return page.locator(`[data-testid="message"][data-text="${text}"]:not(.pending)`).waitFor();
}

async function openConv(page, name) {
  await page.getByTestId('tab-chats').click();
  await page.locator(`[data-testid="conv"][data-name="${name}"]`).click();
}

try {
  const A = await person('alice');
  const B = await person('bob');
  const C = await person('carol', { width: 390, height: 760 }); // a phone
  log('registered');
  await shot(A.page, 'alice-registered');

  // Befriend and chat.
  await befriend(A.page, names.bob, B.page, names.alice);
  await shot(B.page, 'bob-accepted-alice');
  await A.page.locator(`[data-testid="friend"][data-name="${names.bob}"]`).getByTestId('chat-with').click();
  await say(A.page, 'hi bob');
  const fromAlice = B.page.locator(`[data-testid="conv"][data-name="${names.alice}"]`);
  await B.page.getByTestId('tab-chats').click();
  await fromAlice.getByTestId('unread').filter({ hasText: '1' }).waitFor();
  await shot(B.page, 'bob-unread-badge');
  await fromAlice.click();
  await message(B.page, 'hi bob');
  await say(B.page, 'hello alice');
  await message(A.page, 'hello alice');
  await A.page.getByTestId('read').first().waitFor(); // bob read "hi bob"
  // An edit, seen on the other side.
  const hi = A.page.locator('[data-testid="message"][data-text="hi bob"]');
  await hi.hover();
  await hi.getByTestId('edit').click();
  await A.page.getByTestId('compose').fill('hi bob, how are you?');
  await A.page.getByTestId('send').click();
  await B.page.locator('[data-testid="message"][data-text="hi bob, how are you?"]', { hasText: '(edited)' }).waitFor();
  await shot(A.page, 'alice-and-bob-chat');
  log('befriended and chatted');

  // Bob leaves the app (his tab goes elsewhere: the connection ends); Alice writes;
  // Bob comes back in that tab, resuming from the refresh token it kept.
  await B.page.goto('about:blank');
  for (const t of ['are you there?', 'ping 1', 'ping 2']) await say(A.page, t);
  await B.page.goto(base + '/');
  await online(B.page);
  await B.page.locator(`[data-testid="conv"][data-name="${names.alice}"]`).getByTestId('unread').filter({ hasText: '3' }).waitFor();
  await shot(B.page, 'bob-back-3-unread');
  await openConv(B.page, names.alice);
  for (const t of ['are you there?', 'ping 1', 'ping 2']) await message(B.page, t);
  await shot(B.page, 'bob-found-messages');
  log('offline and back');

  // A recall seen on the other side.
  const last = A.page.locator('[data-testid="message"][data-text="ping 2"]');
  await last.hover();
  await last.getByTestId('recall').click();
  await A.page.locator('[data-testid="message"] [data-testid="recalled"]').waitFor();
  await B.page.locator('[data-testid="message"] [data-testid="recalled"]').waitFor();
  if (await B.page.locator('[data-testid="message"][data-text="ping 2"]').count() !== 0) throw new Error('bob still shows the recalled text');
  await shot(B.page, 'bob-sees-recall');
  log('recalled');

  // Search: Bob finds "ping 1", highlighted, but not the recalled "ping 2"; the
  // hit opens the conversation. The index follows the messages (and the
  // recall) within a second or so: search again until it has.
  await B.page.getByTestId('search').fill('ping');
  const hit = B.page.locator(`[data-testid="search-hit"][data-name="${names.alice}"]`, { hasText: 'ping 1' });
  const recalled = B.page.locator('[data-testid="search-hit"]', { hasText: 'ping 2' });
  for (let i = 0; ; i++) {
    await B.page.getByTestId('search').press('Enter');
    await B.page.waitForTimeout(300);
    if (await hit.count() === 1 && await recalled.count() === 0) break;
    if (i >= 30) throw new Error(`search for "ping": ${await B.page.getByTestId('search-results').innerText()}`);
  }
  if ((await hit.locator('mark').first().textContent())?.toLowerCase() !== 'ping') throw new Error('the match is not highlighted');
  await shot(B.page, 'bob-searched');
  await hit.click();
  await B.page.getByTestId('chat-title').filter({ hasText: names.alice }).waitFor();
  await B.page.getByTestId('search-clear').click();
  await B.page.getByTestId('conv-list').waitFor();
  log('searched');

  // A group of three.
  await befriend(A.page, names.carol, C.page, names.alice);
  await A.page.getByTestId('tab-people').click();
  for (const n of [names.bob, names.carol]) await A.page.locator(`[data-testid="friend"][data-name="${n}"]`).getByTestId('pick').check();
  await A.page.getByTestId('group-name').fill('crew ' + tag);
  await A.page.getByTestId('create-group').click();
  await A.page.getByTestId('chat-title').filter({ hasText: 'crew ' + tag }).waitFor();
  await say(A.page, 'hello crew');
  for (const P of [B, C]) {
    await openConv(P.page, 'crew ' + tag);
    await message(P.page, 'hello crew');
  }
  await say(C.page, 'hi from my phone');
  await message(A.page, 'hi from my phone');
  await message(B.page, 'hi from my phone');
  await say(B.page, 'three of us');
  await message(C.page, 'three of us');
  await A.page.locator('[data-testid="message"][data-text="hello crew"] [data-testid="read-by"]', { hasText: 'read by 2' }).waitFor();
  log('group of three');

  // A reply that mentions someone, picked from the autocomplete.
  const hello = B.page.locator('[data-testid="message"][data-text="hello crew"]');
  await hello.hover();
  await hello.getByTestId('reply').click();
  await B.page.getByTestId('compose').fill('@' + names.carol.slice(0, 4));
  await B.page.getByTestId('mention-option').filter({ hasText: names.carol }).click();
  await B.page.waitForFunction((v) => document.activeElement?.value === v, `@${names.carol} `);
  await B.page.getByTestId('compose').pressSequentially('see this');
  await B.page.getByTestId('send').click();
  const reply = `@${names.carol} see this`;
  for (const P of [A, B, C]) await P.page.locator(`[data-testid="message"][data-text="${reply}"] [data-testid="quote"]`, { hasText: 'hello crew' }).waitFor();
  log('reply with a mention');

  // An image, streamed through the edge, shown on the others' screens.
  await A.page.getByTestId('attach').setInputFiles({ name: 'dot.png', mimeType: 'image/png', buffer: PNG });
  for (const P of [A, B, C]) {
    await P.page.waitForFunction(() => [...document.querySelectorAll('[data-testid="image"]')].some((i) => i.complete && i.naturalWidth > 0), null, { timeout: T });
  }
  log('image');
  await A.page.getByTestId('group-panel').click();
  await A.page.locator('[data-testid="member"]').nth(2).waitFor();
  await shot(A.page, 'group-alice');
  await shot(C.page, 'group-carol-phone');
  await shot(B.page, 'group-bob');
  console.log('ok: all steps passed');
} catch (e) {
  // Leave the state of every page for the person reading the failure.
  for (const [i, ctx] of browser.contexts().entries()) {
    for (const page of ctx.pages()) await page.screenshot({ path: join(shots, `failure-${i}.png`) }).catch(() => {});
  }
  throw e;
} finally {
  await browser.close();
}
