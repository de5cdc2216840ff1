// IndexedDBCache, on fake-indexeddb (an in-memory implementation of the IndexedDB
// API for Node; browsers have their own).
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Client, directConvId, IndexedDBCache, Message } from '../src/index.js';
import { befriend, opened, until, URL, user } from './helpers.js';

const clients: Client[] = [];
after(() => clients.forEach((c) => c.close()));

const msg = (conv: string, seq: number, text: string): Message => ({
  conv_id: conv, seq, id: String(1000 + seq), sender: 1, client_msg_id: 'c' + seq, type: 'text', content: { text }, sent_at: seq,
});

test('IndexedDBCache stores messages by seq, cursors and the outbox in order', async () => {
  const c = await IndexedDBCache.open('unit-' + Math.random());
  await c.putMessages('d:1:2', [msg('d:1:2', 3, 'c'), msg('d:1:2', 1, 'a'), msg('d:1:2', 2, 'b')]);
  await c.putMessages('d:1:2', [{ ...msg('d:1:2', 2, 'b2'), edits: 1 }]);
  await c.putMessages('g:9', [msg('g:9', 1, 'other')]);
  assert.deepEqual((await c.getMessages('d:1:2')).map((m) => (m.content as any).text), ['a', 'b2', 'c']);
  assert.deepEqual((await c.getMessages('d:1:2', 3, 1)).map((m) => m.seq), [2]);
  assert.deepEqual((await c.getMessages('d:1:2', undefined, 2)).map((m) => m.seq), [2, 3]);
  assert.equal((await c.getMessage('g:9', 1))?.id, '1001');
  assert.equal(await c.getMessage('g:9', 2), undefined);
  await c.setCursor('d:1:2', { seq: 3, mod: 1 });
  assert.deepEqual(await c.cursors(), { 'd:1:2': { seq: 3, mod: 1 } });
  const e = (id: string) => ({ client_msg_id: id, to: 2, key: 'd:1:2', type: 'text', content: { text: id }, created_at: 0, attempts: 0 });
  for (const id of ['x', 'y', 'z']) await c.putOutbox(e(id));
  await c.putOutbox({ ...e('x'), attempts: 2 }); // an update keeps its place
  await c.removeOutbox('y');
  assert.deepEqual((await c.outbox()).map((o) => [o.client_msg_id, o.attempts]), [['x', 2], ['z', 0]]);
  await c.clear();
  assert.deepEqual(await c.cursors(), {});
  assert.deepEqual(await c.outbox(), []);
  c.close();
});

test('with IndexedDB, the outbox and the messages survive a reload', async () => {
  let refresh = '';
  const a = await user('ana', { onRefreshToken: (t) => (refresh = t ?? '') });
  const b = await user('ben');
  clients.push(a, b);
  await befriend(a, b);
  b.connect();
  await opened(b);
  const db = 'ana-' + a.userId;
  const device = (a as any).opts.deviceId as string;
  const keep = (t: string | null) => (refresh = t ?? ''); // as the app keeps it in localStorage
  // The first page: written while offline, closed before anything was sent.
  const page1 = new Client({ url: URL, deviceId: device, onRefreshToken: keep, cache: await IndexedDBCache.open(db) });
  await page1.resume(refresh);
  for (const t of ['one', 'two', 'three']) void page1.sendText(b.userId, t).catch(() => {});
  const conv = directConvId(a.userId, b.userId);
  await until('queued', async () => (await page1.messages(conv)).filter((m) => m.pending).length === 3);
  page1.close();
  (page1.cache as IndexedDBCache).close();
  // The reload: a new client on the same database sends what waited, in order.
  const page2 = new Client({ url: URL, deviceId: device, onRefreshToken: keep, cache: await IndexedDBCache.open(db) });
  clients.push(page2);
  await page2.resume(refresh);
  page2.connect();
  await opened(page2);
  await until('bob got them', async () => (await b.messages(conv)).length === 3);
  assert.deepEqual((await b.messages(conv)).map((m) => [m.seq, (m.content as any).text]), [[1, 'one'], [2, 'two'], [3, 'three']]);
  await until('outbox empty', async () => (await page2.cache.outbox()).length === 0);
  page2.close();
  (page2.cache as IndexedDBCache).close();
  // Another reload shows them at once, without asking the server.
  const page3 = new Client({ url: URL, deviceId: device, onRefreshToken: keep, cache: await IndexedDBCache.open(db) });
  assert.deepEqual((await page3.messages(conv)).map((m) => m.seq), [1, 2, 3]);
  assert.equal((await page3.cache.getCursor(conv))?.seq, 3);
  (page3.cache as IndexedDBCache).close();
});
