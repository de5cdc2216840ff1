// The local store of a client: messages by conversation and seq, the sync cursors
// and the outbox of unsent messages. MemoryCache is the default; an app that wants
// messages to survive a reload implements Cache over IndexedDB (every method may
// answer a Promise).
import type { Message } from './gen.js';

type MaybePromise<T> = T | Promise<T>;

/** A message waiting in the outbox (sent, not yet acknowledged by the server). */
export interface OutboxEntry {
  client_msg_id: string;
  /** Exactly one of to (a 1:1 peer) and conv_id. */
  to?: number;
  conv_id?: string;
  /** The conversation the entry belongs to locally: conv_id, or d:<lo>:<hi>. */
  key: string;
  type: string;
  content: unknown;
  created_at: number;
  attempts: number;
}

export interface Cursor {
  seq: number;
  mod: number;
}

export interface Cache {
  /** Stores messages (new ones and new versions of known seqs). */
  putMessages(convId: string, msgs: Message[]): MaybePromise<void>;
  getMessage(convId: string, seq: number): MaybePromise<Message | undefined>;
  /** Up to limit messages before seq `before` (exclusive; all when absent), ascending. */
  getMessages(convId: string, before?: number, limit?: number): MaybePromise<Message[]>;
  getCursor(convId: string): MaybePromise<Cursor | undefined>;
  setCursor(convId: string, c: Cursor): MaybePromise<void>;
  cursors(): MaybePromise<Record<string, Cursor>>;
  outbox(): MaybePromise<OutboxEntry[]>;
  putOutbox(e: OutboxEntry): MaybePromise<void>;
  removeOutbox(clientMsgId: string): MaybePromise<void>;
  clear(): MaybePromise<void>;
}

/** Cache in memory: gone when the page or process ends. */
export class MemoryCache implements Cache {
  private msgs = new Map<string, Map<number, Message>>();
  private curs = new Map<string, Cursor>();
  private box = new Map<string, OutboxEntry>(); // insertion order = send order

  putMessages(convId: string, msgs: Message[]): void {
    let m = this.msgs.get(convId);
    if (!m) this.msgs.set(convId, (m = new Map()));
    for (const x of msgs) m.set(x.seq, x);
  }

  getMessage(convId: string, seq: number): Message | undefined {
    return this.msgs.get(convId)?.get(seq);
  }

  getMessages(convId: string, before?: number, limit?: number): Message[] {
    const m = this.msgs.get(convId);
    if (!m) return [];
    let out = [...m.values()].filter((x) => before === undefined || x.seq < before).sort((a, b) => a.seq - b.seq);
    if (limit !== undefined && out.length > limit) out = out.slice(out.length - limit);
    return out;
  }

  getCursor(convId: string): Cursor | undefined {
    return this.curs.get(convId);
  }

  setCursor(convId: string, c: Cursor): void {
    this.curs.set(convId, { ...c });
  }

  cursors(): Record<string, Cursor> {
    return Object.fromEntries([...this.curs].map(([k, v]) => [k, { ...v }]));
  }

  outbox(): OutboxEntry[] {
    return [...this.box.values()];
  }

  putOutbox(e: OutboxEntry): void {
    this.box.set(e.client_msg_id, e);
  }

  removeOutbox(clientMsgId: string): void {
    this.box.delete(clientMsgId);
  }

  clear(): void {
    this.msgs.clear();
    this.curs.clear();
    this.box.clear();
  }
}
