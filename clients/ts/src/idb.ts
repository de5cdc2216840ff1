// IndexedDBCache keeps a client's messages, cursors and outbox in the browser's
// IndexedDB, so that a reload shows what was there and sends what was waiting.
// Open one per user (the database name should include the user id): what it holds
// is that user's.
import type { Cache, Cursor, OutboxEntry } from './cache.js';
import type { Message } from './gen.js';

const MESSAGES = 'messages'; // key [conv_id, seq]
const CURSORS = 'cursors'; // key conv_id
const OUTBOX = 'outbox'; // key client_msg_id, index "order" (insertion)

function done<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function finished(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}

export class IndexedDBCache implements Cache {
  private constructor(private db: IDBDatabase, private order: number) {}

  /** Opens (creating if needed) the database name. factory: globalThis.indexedDB by default. */
  static async open(name: string, factory: IDBFactory = (globalThis as any).indexedDB): Promise<IndexedDBCache> {
    if (!factory) throw new Error('natter: no IndexedDB here');
    const req = factory.open(name, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore(MESSAGES, { keyPath: ['conv_id', 'seq'] });
      db.createObjectStore(CURSORS);
      db.createObjectStore(OUTBOX, { keyPath: 'client_msg_id' }).createIndex('order', 'order');
    };
    const db = await done(req);
    // Continue the outbox's order after what is stored.
    const tx = db.transaction(OUTBOX, 'readonly');
    const cur = await done(tx.objectStore(OUTBOX).index('order').openCursor(null, 'prev'));
    return new IndexedDBCache(db, cur ? (cur.value.order as number) + 1 : 0);
  }

  close(): void {
    this.db.close();
  }

  async putMessages(convId: string, msgs: Message[]): Promise<void> {
    if (msgs.length === 0) return;
    const tx = this.db.transaction(MESSAGES, 'readwrite');
    const st = tx.objectStore(MESSAGES);
    for (const m of msgs) st.put({ ...m, conv_id: convId });
    await finished(tx);
  }

  async getMessage(convId: string, seq: number): Promise<Message | undefined> {
    return done(this.db.transaction(MESSAGES, 'readonly').objectStore(MESSAGES).get([convId, seq]));
  }

  async getMessages(convId: string, before?: number, limit?: number): Promise<Message[]> {
    const range = IDBKeyRange.bound([convId, 0], [convId, before ?? Number.MAX_SAFE_INTEGER], false, before !== undefined);
    const st = this.db.transaction(MESSAGES, 'readonly').objectStore(MESSAGES);
    if (limit === undefined) return done(st.getAll(range));
    // The newest `limit` before `before`: walk backwards, then put in order.
    const out: Message[] = [];
    await new Promise<void>((resolve, reject) => {
      const r = st.openCursor(range, 'prev');
      r.onerror = () => reject(r.error);
      r.onsuccess = () => {
        const c = r.result;
        if (!c || out.length >= limit) return resolve();
        out.push(c.value);
        c.continue();
      };
    });
    return out.reverse();
  }

  async getCursor(convId: string): Promise<Cursor | undefined> {
    return done(this.db.transaction(CURSORS, 'readonly').objectStore(CURSORS).get(convId));
  }

  async setCursor(convId: string, c: Cursor): Promise<void> {
    const tx = this.db.transaction(CURSORS, 'readwrite');
    tx.objectStore(CURSORS).put({ seq: c.seq, mod: c.mod }, convId);
    await finished(tx);
  }

  async cursors(): Promise<Record<string, Cursor>> {
    const st = this.db.transaction(CURSORS, 'readonly').objectStore(CURSORS);
    const [keys, vals] = await Promise.all([done(st.getAllKeys()), done(st.getAll())]);
    return Object.fromEntries(keys.map((k, i) => [String(k), vals[i] as Cursor]));
  }

  async outbox(): Promise<OutboxEntry[]> {
    const rows = await done(this.db.transaction(OUTBOX, 'readonly').objectStore(OUTBOX).index('order').getAll());
    return rows.map(({ order: _, ...e }) => e as OutboxEntry);
  }

  async putOutbox(e: OutboxEntry): Promise<void> {
    const tx = this.db.transaction(OUTBOX, 'readwrite');
    const st = tx.objectStore(OUTBOX);
    const old = await done(st.get(e.client_msg_id));
    st.put({ ...e, order: old ? old.order : this.order++ }); // an update keeps its place
    await finished(tx);
  }

  async removeOutbox(clientMsgId: string): Promise<void> {
    const tx = this.db.transaction(OUTBOX, 'readwrite');
    tx.objectStore(OUTBOX).delete(clientMsgId);
    await finished(tx);
  }

  async clear(): Promise<void> {
    const tx = this.db.transaction([MESSAGES, CURSORS, OUTBOX], 'readwrite');
    for (const s of [MESSAGES, CURSORS, OUTBOX]) tx.objectStore(s).clear();
    await finished(tx);
  }
}
