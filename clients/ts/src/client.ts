// Client: one user's session with a natter edge. It owns the WebSocket (heartbeat,
// jittered reconnect, the close codes), the tokens (refresh before expiry and on
// 3502 or 401), the outbox (client_msg_id makes a resend idempotent), catch-up by
// seq (gap detection, msg.sync), and the local view built from it: messages per
// conversation without duplicates and in seq order, the conversation list with
// unread counts, typing and read receipts.
import { Cache, MemoryCache, OutboxEntry } from './cache.js';
import { Close, ErrorCode, NatterError } from './errors.js';
import type { EventMap, EventName, Message, OpName } from './gen.js';
import { OPS } from './gen.js';
import type { Conversation, FileInfo, Json, LoginReply, Req, Res } from './types.js';

export type State = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'kicked' | 'loggedOut' | 'closed';

export interface ClientOptions {
  /** The edge's HTTP base, e.g. http://127.0.0.1:8080 (the WebSocket is at /ws). */
  url: string;
  /** Stable per installation; one session per device. */
  deviceId: string;
  platform?: string;
  cache?: Cache;
  /** A WebSocket implementation (browsers and Node 22+ have one). */
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
  /** How often the client pings the edge, and how long it waits for the answer. */
  heartbeatMs?: number;
  pongTimeoutMs?: number;
  /** Reconnect backoff: from min doubling to max, each delay jittered to [50%, 100%]. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Refresh the access token this long before it expires. */
  refreshMarginMs?: number;
  requestTimeoutMs?: number;
  /** Minimum time between two typing notices for one conversation. */
  typingThrottleMs?: number;
  /** Called with the new refresh token after login and every refresh (null: logged out): keep it to resume. */
  onRefreshToken?: (token: string | null) => void;
}

/** A message as the app shows it: stored (with seq) or still in the outbox. */
export interface ViewMessage extends Message {
  pending?: boolean;
  failed?: string;
}

export interface ClientEvents {
  state: State;
  /** A message was added or changed (new, edited, recalled, reacted, confirmed). */
  message: ViewMessage;
  /** The conversation list changed (order, unread counts, previews, pins). */
  conversations: Conversation[];
  typing: { conv_id: string; user_ids: number[] };
  read: { conv_id: string; user_id: number; seq: number };
  kicked: { reason: string };
  loggedOut: { reason: string };
  sendFailed: { entry: OutboxEntry; error: NatterError };
  synced: { conversations: number; messages: number };
  error: NatterError;
  /** Every push as it came, for events the client does not fold into its state. */
  push: { event: EventName; data: unknown };
}

type Handler<T> = (v: T) => void;

export interface UploadOptions {
  name: string;
  /** The media type; the Blob's type when absent. */
  mime?: string;
  /** attachment (default), avatar or group_avatar. */
  purpose?: string;
  via?: 'presigned' | 'edge';
  onProgress?: (sent: number, total: number) => void;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: NatterError) => void;
  timer: ReturnType<typeof setTimeout>;
}

const MAX_FRAME = 1 << 20;
const MAX_IN_FLIGHT = 8; // EDGE_WS_PARALLEL

export class Client {
  readonly opts: Required<Omit<ClientOptions, 'onRefreshToken' | 'platform'>> & Pick<ClientOptions, 'onRefreshToken' | 'platform'>;
  readonly cache: Cache;
  userId = 0;
  state: State = 'idle';
  /** Counters, for tests and diagnostics. */
  readonly stats = { opens: 0, syncs: 0, sent: 0, resent: 0, duplicates: 0 };

  private access = '';
  private refreshToken = '';
  private accessExpires = 0;
  private refreshTimer?: ReturnType<typeof setTimeout>;
  private refreshing?: Promise<void>;

  private ws?: WebSocket;
  private wanted = false;
  private attempt = 0;
  private failedOpens = 0;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private heartbeatTimer?: ReturnType<typeof setInterval>;
  private reqSeq = 0;
  private pending = new Map<string, Pending>();
  private waiting: (() => void)[] = []; // requests queued behind MAX_IN_FLIGHT

  private handlers = new Map<string, Set<Handler<any>>>();
  private convs = new Map<string, Conversation>();
  private convsLoaded = false;
  private bootstrapped = false;
  private pushQueue: { event: string; data: any }[] | null = null;
  private syncing?: Promise<void>;
  private syncAgain = false;
  private convRefresh?: Promise<void>;

  private outboxBusy = new Set<string>(); // conversation keys with a send in flight
  private sendWaiters = new Map<string, { resolve: (m: Message) => void; reject: (e: NatterError) => void }>();
  private msgCounter = 0;
  private typingSent = new Map<string, number>();
  private typers = new Map<string, Map<number, ReturnType<typeof setTimeout>>>();
  private peerRead = new Map<string, number>();

  constructor(o: ClientOptions) {
    const ws = o.WebSocket ?? (globalThis as any).WebSocket;
    if (!ws) throw new Error('natter: no WebSocket implementation: pass options.WebSocket');
    this.opts = {
      cache: new MemoryCache(),
      heartbeatMs: 25_000,
      pongTimeoutMs: 10_000,
      reconnectMinMs: 500,
      reconnectMaxMs: 30_000,
      refreshMarginMs: 60_000,
      requestTimeoutMs: 15_000,
      typingThrottleMs: 3_000,
      fetch: (globalThis as any).fetch?.bind(globalThis),
      ...o,
      WebSocket: ws,
      url: o.url.replace(/\/+$/, ''),
    };
    this.cache = this.opts.cache;
  }

  // ---- events

  on<K extends keyof ClientEvents>(name: K, fn: Handler<ClientEvents[K]>): () => void {
    let s = this.handlers.get(name);
    if (!s) this.handlers.set(name, (s = new Set()));
    s.add(fn);
    return () => s!.delete(fn);
  }

  private emit<K extends keyof ClientEvents>(name: K, v: ClientEvents[K]): void {
    for (const fn of this.handlers.get(name) ?? []) {
      try {
        fn(v);
      } catch (e) {
        console.error('natter: handler of', name, 'threw', e);
      }
    }
  }

  /** Runs p in the background: its failure is reported as an error event, never an unhandled rejection. */
  private bg(p: Promise<unknown> | unknown): void {
    Promise.resolve(p).catch((e) => this.emit('error', asError(e)));
  }

  private setState(s: State): void {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  // ---- accounts and tokens

  async register(username: string, password: string, nickname?: string): Promise<number> {
    const r = await this.http('account.register', { username, password, ...(nickname ? { nickname } : {}) });
    return r.user_id;
  }

  /** Logs in on this device; connect() then opens the WebSocket. */
  async login(username: string, password: string): Promise<LoginReply> {
    const r = await this.http('account.login', {
      username,
      password,
      device_id: this.opts.deviceId,
      platform: this.opts.platform ?? 'web',
    });
    this.takeTokens(r);
    return r;
  }

  /** Resumes a session from a kept refresh token (rotating it). */
  async resume(refreshToken: string): Promise<LoginReply> {
    const r = await this.http('account.refresh', { refresh_token: refreshToken });
    this.takeTokens(r);
    return r;
  }

  get accessToken(): string {
    return this.access;
  }

  private takeTokens(r: LoginReply): void {
    this.userId = r.user_id;
    this.access = r.access_token;
    this.refreshToken = r.refresh_token;
    this.accessExpires = Date.now() + r.expires_in * 1000;
    if (this.state === 'loggedOut' || this.state === 'kicked') this.setState('idle');
    this.opts.onRefreshToken?.(r.refresh_token);
    clearTimeout(this.refreshTimer);
    const wait = Math.max(1_000, this.accessExpires - Date.now() - this.opts.refreshMarginMs);
    this.refreshTimer = setTimeout(() => void this.refresh().catch(() => {}), wait);
  }

  /** Rotates the tokens now (one refresh at a time). */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = (async () => {
        try {
          const r = await this.http('account.refresh', { refresh_token: this.refreshToken });
          this.takeTokens(r);
        } catch (e) {
          const err = asError(e);
          if (err.code === 'unauthorized' || err.code === 'forbidden') {
            this.endSession('loggedOut', err.message);
          } else {
            clearTimeout(this.refreshTimer);
            this.refreshTimer = setTimeout(() => void this.refresh().catch(() => {}), 5_000);
          }
          throw err;
        } finally {
          this.refreshing = undefined;
        }
      })();
    }
    return this.refreshing;
  }

  async logout(): Promise<void> {
    try {
      await this.call('account.logout', {});
    } finally {
      this.endSession('loggedOut', 'logged out');
    }
  }

  private endSession(state: 'loggedOut' | 'kicked', reason: string): void {
    this.wanted = false;
    clearTimeout(this.refreshTimer);
    clearTimeout(this.reconnectTimer);
    this.dropSocket(1000);
    this.access = '';
    this.refreshToken = '';
    this.opts.onRefreshToken?.(null);
    // What this device held belongs to the session that ended.
    this.bg(this.cache.clear());
    this.convs.clear();
    this.peerRead.clear();
    this.bootstrapped = false;
    this.convsLoaded = false;
    for (const w of this.sendWaiters.values()) w.reject(new NatterError('unauthorized', reason));
    this.sendWaiters.clear();
    this.setState(state);
    if (state === 'kicked') this.emit('kicked', { reason });
    else this.emit('loggedOut', { reason });
  }

  // ---- the connection

  /** Opens the WebSocket and keeps it open (reconnecting) until close() or a kick. */
  connect(): void {
    if (!this.access) throw new Error('natter: log in first');
    this.wanted = true;
    if (!this.ws) this.bg(this.open());
  }

  /** Closes the connection for good (the session stays: connect() again). */
  close(): void {
    this.wanted = false;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.refreshTimer); // open() refreshes a token near its expiry
    for (const m of this.typers.values()) for (const t of m.values()) clearTimeout(t);
    this.typers.clear();
    this.dropSocket(1000);
    this.setState('closed');
  }

  /** Drops the connection and reconnects at once (after a network change, say). */
  reconnect(): void {
    this.dropSocket(4000);
    this.attempt = 0;
    if (this.wanted) this.bg(this.open());
  }

  private async open(): Promise<void> {
    clearTimeout(this.reconnectTimer);
    if (!this.wanted || this.ws) return;
    this.setState(this.attempt === 0 && !this.bootstrapped ? 'connecting' : 'reconnecting');
    if (this.accessExpires - Date.now() < this.opts.refreshMarginMs || this.failedOpens >= 2) {
      try {
        this.failedOpens = 0;
        await this.refresh();
      } catch (e) {
        if (!this.wanted) return; // the session ended
        this.scheduleReconnect();
        return;
      }
    }
    if (!this.wanted || this.ws) return;
    const wsURL = this.opts.url.replace(/^http/, 'ws') + '/ws?token=' + encodeURIComponent(this.access) +
      (this.opts.platform ? '&platform=' + encodeURIComponent(this.opts.platform) : '');
    let ws: WebSocket;
    try {
      ws = new this.opts.WebSocket(wsURL);
    } catch (e) {
      this.emit('error', asError(e));
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      clearTimeout(openTimer);
      this.stats.opens++;
      this.kickReason = undefined;
      this.failedOpens = 0;
      this.attempt = 0;
      this.setState('open');
      this.startHeartbeat();
      this.bg(this.afterOpen());
    };
    ws.onmessage = (ev: MessageEvent) => this.onFrame(String(ev.data));
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      debug('closed', ev.code, ev.reason, 'opened', opened);
      if (!opened) {
        failed(ev.reason || 'closed before open');
        return;
      }
      this.onClosed(ev.code, ev.reason);
    };
    // A refused upgrade (an expired token, say) may show only as an error.
    const failed = (why: string) => {
      if (this.ws !== ws || opened) return;
      clearTimeout(openTimer);
      this.failedOpens++;
      this.onClosed(1006, why);
    };
    ws.onerror = () => failed('connection failed');
    const openTimer = setTimeout(() => failed('no answer to the upgrade'), this.opts.requestTimeoutMs);
  }

  /** Detaches the socket and fails what waited on it; code 1000 means "we are done". */
  private dropSocket(code: number): void {
    const ws = this.ws;
    this.ws = undefined;
    this.stopHeartbeat();
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(code === 1000 ? 1000 : 4000);
      } catch {
        /* closing a socket that is not open */
      }
    }
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new NatterError('disconnected', 'connection closed'));
      this.pending.delete(id);
    }
    this.releaseWaiting();
  }

  private onClosed(code: number, reason: string): void {
    this.dropSocket(code);
    switch (code) {
      case Close.Kicked:
        this.endSession('kicked', this.kickReason ?? (reason || 'kicked'));
        return;
      case Close.TokenExpired:
        if (!this.wanted) return;
        this.setState('reconnecting');
        this.bg(this.refresh().then(() => this.open(), () => {
          if (this.wanted) this.scheduleReconnect();
        }));
        return;
      case Close.TooLarge:
      case Close.NotUTF8:
        this.emit('error', new NatterError('too_large', `connection closed by the edge (${code})`));
        break;
    }
    if (this.wanted) this.scheduleReconnect();
  }

  private kickReason?: string;

  private scheduleReconnect(): void {
    this.setState('reconnecting');
    const base = Math.min(this.opts.reconnectMaxMs, this.opts.reconnectMinMs * 2 ** Math.min(this.attempt, 16));
    this.attempt++;
    const delay = base * (0.5 + Math.random() / 2);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.bg(this.open()), delay);
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      this.request('ping' as OpName, {}, this.opts.pongTimeoutMs).catch((e: NatterError) => {
        if (e.code === 'timeout' && this.ws) this.onClosed(4000, 'heartbeat timeout');
      });
    }, this.opts.heartbeatMs);
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private async afterOpen(): Promise<void> {
    try {
      if (!this.bootstrapped) {
        this.pushQueue = [];
        await this.bootstrap();
        this.bootstrapped = true;
        const q = this.pushQueue;
        this.pushQueue = null;
        for (const p of q) await this.onPush(p.event, p.data);
      }
      await this.sync();
      if (this.convsLoaded) this.bg(this.loadConversations());
    } catch (e) {
      this.emit('error', asError(e));
    } finally {
      this.pushQueue = null;
    }
    this.bg(this.flushOutbox());
  }

  /** First connection of an empty cache: start the cursors at each conversation's
   * last seq (history is loaded per conversation when shown) rather than syncing
   * every message ever sent. */
  private async bootstrap(): Promise<void> {
    const known = await this.cache.cursors();
    if (Object.keys(known).length > 0) return;
    await this.loadConversations();
    for (const c of this.convs.values()) await this.cache.setCursor(c.conv_id, { seq: c.last_seq, mod: 0 });
  }

  // ---- requests

  /** Calls an op: over the WebSocket while it is open, else over HTTP. */
  async call<K extends OpName>(op: K, data: Req<K>): Promise<Res<K>> {
    if (this.ws && this.state === 'open') {
      try {
        return await this.request(op, data);
      } catch (e) {
        // Only a request that never left goes over HTTP instead: one cut off after
        // it was sent may have been done, and the caller decides (err.retryable).
        if (!(e instanceof NatterError && e.unsent)) throw e;
      }
    }
    return this.http(op, data);
  }

  /** Sends one request frame and waits for its reply. */
  request<K extends OpName>(op: K, data: Req<K>, timeoutMs = this.opts.requestTimeoutMs): Promise<Res<K>> {
    return new Promise<Res<K>>((resolve, reject) => {
      const go = () => {
        const ws = this.ws;
        if (!ws || ws.readyState !== 1) {
          reject(new NatterError('disconnected', 'not connected', true));
          this.releaseWaiting();
          return;
        }
        const id = 'r' + (++this.reqSeq).toString(36);
        const frame = JSON.stringify({ id, op, data });
        if (frame.length > MAX_FRAME) { // UTF-16 units: a lower bound of the bytes
          reject(new NatterError('too_large', 'frame over 1 MB'));
          this.releaseWaiting();
          return;
        }
        const timer = setTimeout(() => {
          if (this.pending.delete(id)) {
            reject(new NatterError('timeout', `no reply to ${op} within ${timeoutMs} ms`));
            this.releaseWaiting();
          }
        }, timeoutMs);
        this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
        ws.send(frame);
      };
      if (this.pending.size < MAX_IN_FLIGHT) go();
      else this.waiting.push(go);
    });
  }

  private releaseWaiting(): void {
    while (this.waiting.length > 0 && (this.pending.size < MAX_IN_FLIGHT || !this.ws)) this.waiting.shift()!();
  }

  /** Calls an op over HTTP (POST /api/v1/<op>); a 401 refreshes the token and retries once. */
  async http<K extends OpName>(op: K, data: Req<K>, retried = false): Promise<Res<K>> {
    const info = OPS[op];
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (info?.access !== 'public' && this.access) headers.Authorization = 'Bearer ' + this.access;
    let res: Response;
    try {
      res = await this.opts.fetch(this.opts.url + '/api/v1/' + op, { method: 'POST', headers, body: JSON.stringify(data ?? {}) });
    } catch (e) {
      throw new NatterError('unavailable', `${op}: ${(e as Error).message}`);
    }
    const body = (await res.json().catch(() => ({}))) as any;
    if (res.ok) return body as Res<K>;
    const err = new NatterError((body?.error?.code as ErrorCode) ?? 'internal', body?.error?.message ?? res.statusText);
    if (err.code === 'unauthorized' && info?.access !== 'public' && !retried && this.refreshToken) {
      await this.refresh();
      return this.http(op, data, true);
    }
    throw err;
  }

  private onFrame(text: string): void {
    let f: any;
    try {
      f = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof f.event === 'string') {
      if (f.event === 'session.kicked') this.kickReason = f.data?.reason;
      if (this.pushQueue) this.pushQueue.push({ event: f.event, data: f.data });
      else this.bg(this.onPush(f.event, f.data));
      return;
    }
    const p = this.pending.get(f.id);
    if (!p) return;
    this.pending.delete(f.id);
    clearTimeout(p.timer);
    if (f.ok) p.resolve(f.data ?? {});
    else p.reject(new NatterError(f.error?.code ?? 'internal', f.error?.message ?? 'error'));
    this.releaseWaiting();
  }

  // ---- pushes

  private async onPush(event: string, data: any): Promise<void> {
    this.emit('push', { event: event as EventName, data });
    switch (event as EventName) {
      case 'msg.new':
        await this.takeMessage(data as EventMap['msg.new'], true);
        break;
      case 'msg.edited':
        await this.takeMessage(data as EventMap['msg.edited'], false);
        break;
      case 'msg.recalled': {
        const d = data as EventMap['msg.recalled'];
        await this.applyRecall(d.conv_id, d.seq, d.by, d.mod);
        break;
      }
      case 'msg.reaction': {
        const d = data as EventMap['msg.reaction'];
        await this.applyReaction(d, d.user_id === this.userId);
        break;
      }
      case 'msg.read': {
        const d = data as EventMap['msg.read'];
        this.notePeerRead(d.conv_id, d.user_id, d.seq);
        break;
      }
      case 'typing': {
        const d = data as EventMap['typing'];
        this.noteTyping(d.conv_id, d.user_id);
        break;
      }
      case 'conv.updated': {
        const d = data as EventMap['conv.updated'];
        const c = this.convs.get(d.conv_id);
        if (c) {
          Object.assign(c, { pinned: d.pinned, muted: d.muted, read_seq: d.read_seq, last_seq: d.last_seq, unread: d.unread });
          if (d.unread === 0) c.mentioned = false;
          this.emitConversations();
        } else this.refreshConversationsSoon();
        break;
      }
      case 'friend.added':
      case 'friend.deleted':
        break;
    }
  }

  /** Folds in a stored message from a push, a reply or a sync; isNew for msg.new. */
  private async takeMessage(m: Message, isNew: boolean): Promise<void> {
    const old = await this.cache.getMessage(m.conv_id, m.seq);
    if (old && !newer(m, old)) return; // a duplicate
    if (!old && !isNew) return; // a new version of a message this device does not hold (history loads it as it is)
    await this.cache.putMessages(m.conv_id, [m]);
    this.emit('message', m);
    this.noteTyping(m.conv_id, m.sender, true);
    if (!isNew) return;
    if (!old) this.bumpConversation(m);
    // A send moves the sender's read cursor to it: in 1:1, the peer has read up to here.
    if (m.conv_id.startsWith('d:') && m.sender !== this.userId) this.notePeerRead(m.conv_id, m.sender, m.seq);
    const cur = (await this.cache.getCursor(m.conv_id)) ?? { seq: 0, mod: 0 };
    if (m.seq === cur.seq + 1) {
      let seq = m.seq;
      while (await this.cache.getMessage(m.conv_id, seq + 1)) seq++;
      await this.cache.setCursor(m.conv_id, { seq, mod: cur.mod });
    } else if (m.seq > cur.seq + 1) {
      this.bg(this.sync()); // a gap: something was lost
    }
  }

  private async applyRecall(convId: string, seq: number, by: number, mod: number): Promise<void> {
    const m = await this.cache.getMessage(convId, seq);
    if (m) {
      const r: Message = { ...m, content: null, recalled: true, recalled_by: by, mod: Math.max(m.mod ?? 0, mod) };
      delete r.reactions;
      await this.cache.putMessages(convId, [r]);
      this.emit('message', r);
    }
    const c = this.convs.get(convId);
    if (c?.last_message && c.last_message.seq === seq) {
      c.last_message = { ...c.last_message, content: null, recalled: true };
      c.preview = '[Recalled]';
      this.emitConversations();
    }
  }

  private async applyReaction(d: EventMap['msg.reaction'], mine: boolean): Promise<void> {
    const m = await this.cache.getMessage(d.conv_id, d.seq);
    if (!m) return;
    const rs = (m.reactions ?? []).map((r) => ({ ...r }));
    const r = rs.find((x) => x.emoji === d.emoji);
    if (r) {
      r.count = d.count;
      if (mine) r.me = d.added;
    } else if (d.count > 0) rs.push({ emoji: d.emoji, count: d.count, ...(mine && d.added ? { me: true } : {}) });
    const n: Message = { ...m, reactions: rs.filter((x) => x.count > 0), mod: Math.max(m.mod ?? 0, d.mod) };
    await this.cache.putMessages(d.conv_id, [n]);
    this.emit('message', n);
  }

  // ---- catch-up

  /** Fetches everything past the cursors (msg.sync), until nothing is left. One at a
   * time: a call while one runs makes it run once more. */
  sync(): Promise<void> {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      let convs = 0;
      let msgs = 0;
      try {
        for (let round = 0; round < 100; round++) {
          this.syncAgain = false;
          const all = await this.cache.cursors();
          const cursors: Record<string, number> = {};
          const mods: Record<string, number> = {};
          for (const [k, v] of Object.entries(all)) {
            cursors[k] = v.seq;
            mods[k] = v.mod;
          }
          const r = await this.call('msg.sync', { cursors, mods });
          this.stats.syncs++;
          for (const c of r.conversations) {
            convs++;
            for (const m of c.messages) {
              const old = await this.cache.getMessage(c.conv_id, m.seq);
              if (old && !newer(m, old)) continue;
              await this.cache.putMessages(c.conv_id, [m]);
              msgs++;
              this.emit('message', m);
              if (!old) this.bumpConversation(m);
            }
            for (const m of c.changed ?? []) {
              const old = await this.cache.getMessage(c.conv_id, m.seq);
              if (!old || !newer(m, old)) continue; // only versions of what this device holds
              await this.cache.putMessages(c.conv_id, [m]);
              this.emit('message', m);
            }
            const prev = (await this.cache.getCursor(c.conv_id)) ?? { seq: 0, mod: 0 };
            if (!c.has_more) await this.cache.setCursor(c.conv_id, { seq: Math.max(prev.seq, c.last_seq), mod: Math.max(prev.mod, c.last_mod) });
            else if (c.messages.length > 0) await this.cache.setCursor(c.conv_id, { seq: c.messages[c.messages.length - 1].seq, mod: prev.mod });
          }
          if (!r.has_more && !this.syncAgain) break;
        }
      } finally {
        this.syncing = undefined;
      }
      this.emit('synced', { conversations: convs, messages: msgs });
    })();
    return this.syncing;
  }

  // ---- conversations

  /** The conversation list as last loaded and updated by pushes: pinned first, then by activity. */
  conversations(): Conversation[] {
    return [...this.convs.values()].sort((a, b) => Number(b.pinned) - Number(a.pinned) || b.last_msg_at - a.last_msg_at);
  }

  conversation(convId: string): Conversation | undefined {
    return this.convs.get(convId);
  }

  /** Loads conv.list (the first 500 conversations). */
  async loadConversations(): Promise<Conversation[]> {
    const r = await this.call('conv.list', { limit: 500 });
    this.convs.clear();
    for (const c of r.conversations) this.convs.set(c.conv_id, c);
    this.convsLoaded = true;
    this.emitConversations();
    return this.conversations();
  }

  private refreshConversationsSoon(): void {
    if (this.convRefresh) return;
    this.convRefresh = new Promise<void>((res) => setTimeout(res, 50))
      .then(() => this.loadConversations())
      .then(() => {}, (e) => this.emit('error', asError(e)))
      .finally(() => (this.convRefresh = undefined));
  }

  private emitConversations(): void {
    this.emit('conversations', this.conversations());
  }

  private bumpConversation(m: Message): void {
    const c = this.convs.get(m.conv_id);
    if (!c) {
      if (this.convsLoaded) this.refreshConversationsSoon();
      return;
    }
    if (m.seq <= c.last_seq) return;
    c.last_seq = m.seq;
    c.last_msg_at = m.sent_at;
    c.last_message = m;
    c.preview = previewOf(m);
    if (m.sender === this.userId) {
      c.read_seq = m.seq; // a send moves the sender's read cursor
      c.unread = 0;
    } else if (m.seq > c.read_seq) c.unread++;
    this.emitConversations();
  }

  /** Reads a conversation up to its last message (conv.read). */
  async markRead(convId: string): Promise<void> {
    const cur = await this.cache.getCursor(convId);
    const c = this.convs.get(convId);
    const seq = Math.max(cur?.seq ?? 0, c?.last_seq ?? 0);
    if (seq <= 0 || (c && c.read_seq >= seq && c.unread === 0)) return;
    const st = await this.call('conv.read', { conv_id: convId, seq });
    if (c) {
      Object.assign(c, { read_seq: st.read_seq, unread: st.unread, last_seq: st.last_seq, mentioned: false });
      this.emitConversations();
    }
  }

  async pin(convId: string, pinned: boolean): Promise<void> {
    const st = await this.call('conv.pin', { conv_id: convId, pinned });
    const c = this.convs.get(convId);
    if (c) c.pinned = st.pinned;
    this.emitConversations();
  }

  async mute(convId: string, muted: boolean): Promise<void> {
    const st = await this.call('conv.mute', { conv_id: convId, muted });
    const c = this.convs.get(convId);
    if (c) c.muted = st.muted;
    this.emitConversations();
  }

  // ---- messages

  /** The messages of a conversation held locally, ascending, then those still in the outbox. */
  async messages(convId: string): Promise<ViewMessage[]> {
    const stored: ViewMessage[] = await this.cache.getMessages(convId);
    const out = (await this.cache.outbox()).filter((e) => e.key === convId).map((e) => this.pendingView(e));
    const ids = new Set(stored.map((m) => m.client_msg_id).filter(Boolean));
    return [...stored, ...out.filter((m) => !ids.has(m.client_msg_id))];
  }

  /** Loads older messages from the server (msg.history before the oldest held). */
  async loadHistory(convId: string, limit = 50): Promise<{ count: number; hasMore: boolean }> {
    const oldest = (await this.cache.getMessages(convId))[0]?.seq;
    const r = await this.call('msg.history', { conv_id: convId, limit, ...(oldest ? { before: oldest } : {}) });
    const fresh: Message[] = [];
    for (const m of r.messages) {
      const old = await this.cache.getMessage(convId, m.seq);
      if (!old || newer(m, old)) fresh.push(m);
    }
    await this.cache.putMessages(convId, fresh);
    for (const m of fresh) this.emit('message', m);
    if (!(await this.cache.getCursor(convId)) && r.messages.length > 0) {
      await this.cache.setCursor(convId, { seq: r.messages[r.messages.length - 1].seq, mod: 0 });
    }
    return { count: r.messages.length, hasMore: r.has_more };
  }

  /** Queues a message for a conversation (conv_id) or a user (a number: their 1:1
   * conversation). It is shown at once as pending, sent as soon as the connection
   * is open, resent with the same client_msg_id after a reconnect until the
   * server acknowledges it; the promise gets the stored message. */
  send(target: string | number, content: unknown, type = 'text'): Promise<Message> {
    const id = this.newClientMsgId();
    const e: OutboxEntry = {
      client_msg_id: id,
      ...(typeof target === 'number' ? { to: target } : { conv_id: target }),
      key: typeof target === 'number' ? directConvId(this.userId, target) : target,
      type,
      content,
      created_at: Date.now(),
      attempts: 0,
    };
    const p = new Promise<Message>((resolve, reject) => this.sendWaiters.set(id, { resolve, reject }));
    this.bg((async () => {
      await this.cache.putOutbox(e);
      this.emit('message', this.pendingView(e));
      await this.flushOutbox();
    })());
    return p;
  }

  /** Sends a text message. */
  sendText(target: string | number, text: string): Promise<Message> {
    return this.send(target, { text }, 'text');
  }

  private pendingView(e: OutboxEntry): ViewMessage {
    return {
      conv_id: e.key, seq: 0, id: '', sender: this.userId, client_msg_id: e.client_msg_id,
      type: e.type, content: e.content, sent_at: e.created_at, pending: true,
    };
  }

  private newClientMsgId(): string {
    const dev = this.opts.deviceId.replace(/[^A-Za-z0-9_.:-]/g, '').slice(0, 24);
    return `${dev}.${Date.now().toString(36)}.${(++this.msgCounter).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  }

  /** Sends what waits in the outbox: one message in flight per conversation (so
   * their seqs keep the order they were written in), conversations in parallel. */
  async flushOutbox(): Promise<void> {
    if (this.state !== 'open') return;
    const entries = await this.cache.outbox();
    const heads = new Map<string, OutboxEntry>();
    for (const e of entries) if (!heads.has(e.key)) heads.set(e.key, e);
    for (const [key, e] of heads) {
      if (this.outboxBusy.has(key)) continue;
      this.outboxBusy.add(key);
      this.bg(this.sendOne(e).finally(() => {
        this.outboxBusy.delete(key);
        this.bg(this.flushOutbox());
      }));
    }
  }

  private async sendOne(e: OutboxEntry): Promise<void> {
    e.attempts++;
    try {
      const r = await this.request('msg.send', {
        ...(e.to !== undefined ? { to: e.to } : { conv_id: e.conv_id }),
        client_msg_id: e.client_msg_id, type: e.type, content: e.content,
      });
      this.stats.sent++;
      if (e.attempts > 1) this.stats.resent++;
      if (r.duplicate) this.stats.duplicates++;
      const m: Message = {
        conv_id: r.conv_id, seq: r.seq, id: r.id, sender: this.userId,
        client_msg_id: e.client_msg_id, type: e.type, content: e.content, sent_at: r.sent_at,
      };
      await this.takeMessage(m, true); // stored before it leaves the outbox: a crash between resends it, a duplicate
      await this.cache.removeOutbox(e.client_msg_id);
      this.sendWaiters.get(e.client_msg_id)?.resolve(m);
      this.sendWaiters.delete(e.client_msg_id);
    } catch (x) {
      const err = asError(x);
      if (err.retryable) {
        debug('send', e.client_msg_id, 'attempt', e.attempts, err.code, err.message);
        await this.cache.putOutbox(e);
        if (err.code !== 'disconnected') await sleep(Math.min(10_000, 200 * 2 ** Math.min(e.attempts, 6)));
        return; // flushOutbox runs again (now, or on the next open)
      }
      await this.cache.removeOutbox(e.client_msg_id);
      this.emit('message', { ...this.pendingView(e), pending: false, failed: err.message });
      this.emit('sendFailed', { entry: e, error: err });
      this.sendWaiters.get(e.client_msg_id)?.reject(err);
      this.sendWaiters.delete(e.client_msg_id);
    }
  }

  async recall(convId: string, seq: number): Promise<void> {
    const r = await this.call('msg.recall', { conv_id: convId, seq });
    await this.applyRecall(r.conv_id, r.seq, this.userId, r.mod);
  }

  async edit(convId: string, seq: number, text: string): Promise<Message> {
    const m = await this.call('msg.edit', { conv_id: convId, seq, type: 'text', content: { text } });
    await this.takeMessage(m, false);
    return m;
  }

  async react(convId: string, seq: number, emoji: string, remove = false): Promise<void> {
    const r = await this.call('msg.react', { conv_id: convId, seq, emoji, ...(remove ? { remove } : {}) });
    await this.applyReaction(r, true);
  }

  /** How many members read a message (msg.receipts); in 1:1 it also updates peerReadSeq. */
  async receipts(convId: string, seq: number): Promise<{ read: number; members: number }> {
    const r = await this.call('msg.receipts', { conv_id: convId, seq });
    if (convId.startsWith('d:') && r.read > 0) {
      const [lo, hi] = convId.slice(2).split(':').map(Number);
      this.notePeerRead(convId, lo === this.userId ? hi : lo, seq);
    }
    return { read: r.read, members: r.members };
  }

  private notePeerRead(convId: string, userId: number, seq: number): void {
    if (seq <= (this.peerRead.get(convId) ?? 0)) return;
    this.peerRead.set(convId, seq);
    this.emit('read', { conv_id: convId, user_id: userId, seq });
  }

  /** The highest seq the peer of a 1:1 conversation has read, as pushed (msg.read). */
  peerReadSeq(convId: string): number {
    return this.peerRead.get(convId) ?? 0;
  }

  // ---- typing

  /** Tells the others this user is typing: at most once per typingThrottleMs per conversation. */
  typing(convId: string): void {
    const now = Date.now();
    if (now - (this.typingSent.get(convId) ?? 0) < this.opts.typingThrottleMs) return;
    this.typingSent.set(convId, now);
    void this.call('msg.typing', { conv_id: convId }).catch(() => {});
  }

  /** Users typing in a conversation now (a notice lasts 5 s, or until their message). */
  typingUsers(convId: string): number[] {
    return [...(this.typers.get(convId)?.keys() ?? [])];
  }

  private noteTyping(convId: string, userId: number, stopped = false): void {
    let m = this.typers.get(convId);
    const had = m?.has(userId) ?? false;
    if (stopped && !had) return;
    if (!m) this.typers.set(convId, (m = new Map()));
    clearTimeout(m.get(userId));
    if (stopped) m.delete(userId);
    else m.set(userId, setTimeout(() => this.noteTyping(convId, userId, true), 5_000));
    this.emit('typing', { conv_id: convId, user_ids: [...m.keys()] });
  }

  // ---- files

  /** Uploads a file and completes it. `via: 'presigned'` (the default) PUTs the
   * bytes straight to S3 (in parts above 32 MiB); `via: 'edge'` streams them
   * through the edge (POST /api/v1/files), for browsers whose page cannot reach
   * the S3 server (CORS). Progress is reported per part, or as the browser sends
   * the body when XMLHttpRequest is there. */
  async upload(data: Blob, o: UploadOptions): Promise<FileInfo> {
    const mime = o.mime || data.type || 'application/octet-stream';
    const purpose = o.purpose ?? 'attachment';
    if (o.via === 'edge') return this.uploadViaEdge(data, o.name, mime, purpose, o.onProgress);
    const b = await this.call('file.upload.begin', { name: o.name, size: data.size, mime, purpose });
    const parts = b.parts ?? [{ number: 1, size: data.size, url: b.url! }];
    let off = 0;
    let sent = 0;
    for (const p of parts) {
      const chunk = data.slice(off, off + p.size);
      off += p.size;
      const res = await this.opts.fetch(p.url, { method: 'PUT', headers: b.headers ?? {}, body: chunk });
      if (!res.ok) throw new NatterError('unavailable', `upload of part ${p.number}: HTTP ${res.status}`);
      sent += p.size;
      o.onProgress?.(sent, data.size);
    }
    return this.call('file.upload.complete', { file_id: b.file_id });
  }

  private async uploadViaEdge(data: Blob, name: string, mime: string, purpose: string,
    onProgress?: (sent: number, total: number) => void, retried = false): Promise<FileInfo> {
    const form = new FormData(); // the edge wants size before the file
    form.append('size', String(data.size));
    form.append('purpose', purpose);
    form.append('file', new Blob([data], { type: mime }), name);
    const url = this.opts.url + '/api/v1/files';
    let status: number;
    let body: any;
    const XHR = (globalThis as any).XMLHttpRequest;
    if (XHR && onProgress) {
      [status, body] = await new Promise<[number, any]>((resolve, reject) => {
        const x = new XHR();
        x.open('POST', url);
        x.setRequestHeader('Authorization', 'Bearer ' + this.access);
        x.upload.onprogress = (e: ProgressEvent) => onProgress(e.loaded, e.total || data.size);
        x.onload = () => resolve([x.status, safeJSON(x.responseText)]);
        x.onerror = () => reject(new NatterError('unavailable', 'upload failed'));
        x.send(form);
      });
    } else {
      const res = await this.opts.fetch(url, { method: 'POST', headers: { Authorization: 'Bearer ' + this.access }, body: form });
      status = res.status;
      body = await res.json().catch(() => ({}));
      if (status < 300) onProgress?.(data.size, data.size);
    }
    if (status >= 200 && status < 300) return body as FileInfo;
    const err = new NatterError(body?.error?.code ?? 'internal', body?.error?.message ?? `HTTP ${status}`);
    if (err.code === 'unauthorized' && !retried) {
      await this.refresh();
      return this.uploadViaEdge(data, name, mime, purpose, onProgress, true);
    }
    throw err;
  }

  /** Uploads a file and sends it as a message (image, video, voice or file by its kind). */
  async sendFile(target: string | number, data: Blob, o: UploadOptions & { caption?: string }): Promise<Message> {
    const f = await this.upload(data, o);
    const type = f.kind === 'image' ? 'image' : f.kind === 'video' ? 'video' : f.kind === 'audio' ? 'voice' : 'file';
    return this.send(target, { file_id: f.file_id, ...(o.caption ? { caption: o.caption } : {}) }, type);
  }

  /** A URL that loads a file (or its thumbnail) with this session's token, for <img src>. */
  fileURL(fileId: string, thumb = false): string {
    return `${this.opts.url}/api/v1/files/${encodeURIComponent(fileId)}?token=${encodeURIComponent(this.access)}${thumb ? '&thumb=1' : ''}`;
  }
}

/** The 1:1 conversation id of two users. */
export function directConvId(a: number, b: number): string {
  return `d:${Math.min(a, b)}:${Math.max(a, b)}`;
}

/** A message's one-line preview, as conv.list makes it. */
export function previewOf(m: Message): string {
  if (m.recalled) return '[Recalled]';
  const c = (m.content ?? {}) as Json;
  switch (m.type) {
    case 'text':
    case 'rich':
      return String(c.text ?? '').slice(0, 100);
    case 'image':
      return '[Image]';
    case 'video':
      return '[Video]';
    case 'voice':
      return '[Voice]';
    case 'sticker':
      return '[Sticker]';
    case 'file':
      return '[File] ' + String(c.name ?? '');
  }
  return '';
}

/** b is a later version of the same message than a (an edit, recall or reaction). */
function newer(b: Message, a: Message): boolean {
  return (b.mod ?? 0) > (a.mod ?? 0) || (b.edits ?? 0) > (a.edits ?? 0) || (!!b.recalled && !a.recalled);
}

function asError(e: unknown): NatterError {
  if (e instanceof NatterError) return e;
  return new NatterError('internal', e instanceof Error ? e.message : String(e));
}

function debug(...a: unknown[]): void {
  if ((globalThis as any).process?.env?.NATTER_DEBUG) console.log('natter:', new Date().toISOString().slice(11, 23), ...a);
}

function safeJSON(s: string): any {
  try {
    return JSON.parse(s);
  } catch {
    return {};
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
