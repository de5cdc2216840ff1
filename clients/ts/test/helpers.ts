// Helpers of the SDK tests: they run against a real natter stack whose edge
// NATTER_URL names (edge/webtest starts one and runs these tests).
import { createHmac, randomBytes } from 'node:crypto';
import { Client, ClientOptions } from '../src/index.js';

export const URL = process.env.NATTER_URL ?? '';
if (!URL) throw new Error('NATTER_URL is not set: these tests run under `go test ./edge/webtest`');

let n = 0;

/** A fresh user, logged in on a fresh device (not connected). */
export async function user(prefix: string, o: Partial<ClientOptions> = {}): Promise<Client> {
  const name = `${prefix}${randomBytes(4).toString('hex')}${n++}`.slice(0, 32);
  const c = new Client({ url: URL, deviceId: 'dev-' + name, platform: 'web', reconnectMinMs: 50, reconnectMaxMs: 500, ...o });
  await c.register(name, 'password-' + name);
  await c.login(name, 'password-' + name);
  (c as any).testName = name;
  if (process.env.NATTER_DEBUG) c.on("state", (s) => console.log(name, "state", s));
  return c;
}

export async function befriend(a: Client, b: Client): Promise<void> {
  const r = await a.call('friend.request', { to: b.userId });
  const s = await b.call('friend.respond', { request_id: r.request_id, accept: true });
  if (s.status !== 'accepted') throw new Error('friend.respond: ' + s.status);
}

/** Waits until cond() holds, re-checking on every event of c (and every 50 ms). */
export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function opened(c: Client): Promise<void> {
  return until(`${(c as any).testName} connected`, () => c.state === 'open');
}

/** An access token for the same session that expired a minute ago, signed with the
 * stack's secret (NATTER_TEST_SECRET): what a client holds after a laptop slept. */
export function expiredCopy(token: string): string {
  const secret = process.env.NATTER_TEST_SECRET;
  if (!secret) throw new Error('NATTER_TEST_SECRET is not set');
  const [h, p] = token.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  const now = Math.floor(Date.now() / 1000);
  claims.iat = now - 960;
  claims.exp = now - 60;
  const body = h + '.' + Buffer.from(JSON.stringify(claims)).toString('base64url');
  return body + '.' + createHmac('sha256', secret).update(body).digest('base64url');
}
