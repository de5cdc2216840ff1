import type { Client, ClientEvents, Conversation, Friend, FriendRequestRow, SearchHit, ViewMessage } from '@natter/sdk';
import { directConvId, NatterError } from '@natter/sdk';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { keptRefreshToken, newClient } from './session.ts';

/** Re-renders the caller whenever c emits one of names. */
function useEvents(c: Client, names: (keyof ClientEvents)[]): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const bump = () => setTick((t) => t + 1);
    const offs = names.map((n) => c.on(n, bump));
    // An event between the render and this subscription (the connection opening
    // while the component mounts) would otherwise go unseen: render once more.
    bump();
    return () => offs.forEach((f) => f());
  }, [c]);
  return tick;
}

function errText(e: unknown): string {
  return e instanceof NatterError ? e.message : String(e);
}

export function App() {
  const client = useMemo(newClient, []);
  const [phase, setPhase] = useState<'loading' | 'login' | 'main'>('loading');
  const [notice, setNotice] = useState('');
  useEffect(() => {
    const offs = [
      client.on('kicked', (k) => {
        setNotice('Signed out: ' + k.reason);
        setPhase('login');
      }),
      client.on('loggedOut', (k) => {
        setNotice(k.reason);
        setPhase('login');
      }),
    ];
    const kept = keptRefreshToken();
    if (!kept) setPhase('login');
    else {
      client.resume(kept).then(
        () => {
          client.connect();
          setPhase('main');
        },
        () => setPhase('login'),
      );
    }
    return () => offs.forEach((f) => f());
  }, [client]);
  if (phase === 'loading') return <div class="center">Loading…</div>;
  if (phase === 'login') {
    return (
      <Login
        client={client}
        notice={notice}
        onIn={() => {
          setNotice('');
          client.connect();
          setPhase('main');
        }}
      />
    );
  }
  return <Main client={client} />;
}

function Login({ client, notice, onIn }: { client: Client; notice: string; onIn: () => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const go = async (register: boolean) => {
    setBusy(true);
    setErr('');
    try {
      if (register) await client.register(username, password);
      await client.login(username, password);
      onIn();
    } catch (e) {
      setErr(errText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="login" onSubmit={(e) => { e.preventDefault(); void go(false); }}>
      <h1>natter</h1>
      {notice && <p class="notice">{notice}</p>}
      <input data-testid="username" placeholder="username" autocomplete="username" value={username}
        onInput={(e) => setUsername(e.currentTarget.value)} />
      <input data-testid="password" type="password" placeholder="password (8+ characters)" autocomplete="current-password"
        value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
      <div class="row">
        <button data-testid="login" type="submit" disabled={busy}>Log in</button>
        <button data-testid="register" type="button" disabled={busy} onClick={() => void go(true)}>Register</button>
      </div>
      {err && <p class="error" data-testid="login-error">{err}</p>}
    </form>
  );
}

/** What the chat pane shows: a conversation of the list, or a 1:1 not started yet. */
interface Target {
  conv_id: string;
  name: string;
  type: 'direct' | 'group';
  peer_id?: number;
  group_id?: number;
}

function Main({ client }: { client: Client }) {
  useEvents(client, ['conversations', 'state']);
  const [target, setTarget] = useState<Target | null>(null);
  const [tab, setTab] = useState<'chats' | 'people'>('chats');
  const convs = client.conversations();
  const [query, setQuery] = useState('');
  const [hits, setHits] = useState<SearchHit[] | null>(null); // null: not searching
  const [searchErr, setSearchErr] = useState('');
  const open = (t: Target) => {
    setTarget(t);
    setTab('chats');
  };
  const search = async () => {
    if (!query.trim()) {
      setHits(null);
      return;
    }
    setSearchErr('');
    try {
      setHits((await client.call('msg.search', { query: query.trim(), limit: 30 })).hits);
    } catch (e) {
      setSearchErr(errText(e));
    }
  };
  const openHit = (h: SearchHit) => {
    const c = convs.find((x) => x.conv_id === h.conv_id);
    open(c ? { conv_id: c.conv_id, name: c.name, type: c.type, peer_id: c.peer_id, group_id: c.group_id }
      : { conv_id: h.conv_id, name: h.conv_id, type: h.conv_id.startsWith('g:') ? 'group' : 'direct' });
  };
  return (
    <div class={'main' + (target ? ' chatting' : '')}>
      <aside>
        <header>
          <b>natter</b>
          <span class={'state ' + client.state} data-testid="conn-state">{client.state}</span>
          <button class="link" onClick={() => void client.logout()}>Log out</button>
        </header>
        <form class="search" onSubmit={(e) => { e.preventDefault(); void search(); }}>
          <input data-testid="search" placeholder="Search messages" value={query}
            onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
          {hits !== null && (
            <button type="button" class="link" data-testid="search-clear" onClick={() => { setQuery(''); setHits(null); setSearchErr(''); }}>✕</button>
          )}
        </form>
        {searchErr && <div class="error">{searchErr}</div>}
        <nav class="tabs">
          <button class={tab === 'chats' ? 'on' : ''} data-testid="tab-chats" onClick={() => setTab('chats')}>Chats</button>
          <button class={tab === 'people' ? 'on' : ''} data-testid="tab-people" onClick={() => setTab('people')}>Friends &amp; groups</button>
        </nav>
        {hits !== null ? (
          <ul class="convs" data-testid="search-results">
            {hits.length === 0 && <li class="empty">No message found.</li>}
            {hits.map((h) => {
              const name = convs.find((c) => c.conv_id === h.conv_id)?.name ?? h.conv_id;
              return (
                <li key={h.id} data-testid="search-hit" data-name={name} onClick={() => openHit(h)}>
                  <div class="title"><span class="name">{name}</span><span class="muted">{when(h.sent_at)}</span></div>
                  <div class="preview"><Highlighted text={h.snippet.text} marks={h.snippet.highlights} /></div>
                </li>
              );
            })}
          </ul>
        ) : tab === 'chats' ? (
          <ul class="convs" data-testid="conv-list">
            {convs.length === 0 && <li class="empty">No conversations yet: add a friend.</li>}
            {convs.map((c) => (
              <ConvRow key={c.conv_id} c={c} active={target?.conv_id === c.conv_id} client={client}
                onOpen={() => open({ conv_id: c.conv_id, name: c.name, type: c.type, peer_id: c.peer_id, group_id: c.group_id })} />
            ))}
          </ul>
        ) : (
          <People client={client} onOpen={open} />
        )}
      </aside>
      <section class="chat">
        {target ? <Chat key={target.conv_id} client={client} target={target} onBack={() => setTarget(null)} /> : <div class="center muted">Pick a conversation</div>}
      </section>
    </div>
  );
}

// when is a time today, a date otherwise.
function when(ms: number): string {
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleDateString();
}

// Highlighted shows text with its [start, end) code-point ranges marked.
function Highlighted({ text, marks }: { text: string; marks: [number, number][] }) {
  const cps = Array.from(text);
  const out = [];
  let at = 0;
  for (const [a, b] of marks) {
    if (a > at) out.push(cps.slice(at, a).join(''));
    out.push(<mark>{cps.slice(a, b).join('')}</mark>);
    at = b;
  }
  out.push(cps.slice(at).join(''));
  return <span>{out}</span>;
}

function ConvRow({ c, active, onOpen, client }: { c: Conversation; active: boolean; onOpen: () => void; client: Client }) {
  return (
    <li class={active ? 'active' : ''} data-testid="conv" data-name={c.name} onClick={onOpen}>
      <div class="title">
        {c.pinned && <span title="pinned">📌 </span>}
        <span class="name">{c.name}</span>
        {c.muted && <span title="muted"> 🔕</span>}
        {c.unread > 0 && <span class={'badge' + (c.muted ? ' quiet' : '')} data-testid="unread">{c.unread}</span>}
      </div>
      <div class="preview">{c.mentioned && <b class="mention">@you </b>}{c.preview ?? ''}</div>
      <div class="actions" onClick={(e) => e.stopPropagation()}>
        <button class="link" onClick={() => void client.pin(c.conv_id, !c.pinned)}>{c.pinned ? 'unpin' : 'pin'}</button>
        <button class="link" onClick={() => void client.mute(c.conv_id, !c.muted)}>{c.muted ? 'unmute' : 'mute'}</button>
      </div>
    </li>
  );
}

function People({ client, onOpen }: { client: Client; onOpen: (t: Target) => void }) {
  const pushes = useEvents(client, ['push']);
  const [friends, setFriends] = useState<Friend[]>([]);
  const [requests, setRequests] = useState<FriendRequestRow[]>([]);
  const [who, setWho] = useState('');
  const [msg, setMsg] = useState('');
  const [groupName, setGroupName] = useState('');
  const [picked, setPicked] = useState<number[]>([]);
  const reload = async () => {
    const [f, r] = await Promise.all([client.call('friend.list', {}), client.call('friend.requests', { direction: 'incoming', status: 'pending' })]);
    setFriends(f.friends);
    setRequests(r.requests);
  };
  useEffect(() => void reload().catch((e) => setMsg(errText(e))), [pushes]);
  const add = async () => {
    try {
      const u = await client.call('user.lookup', { username: who.trim() });
      const r = await client.call('friend.request', { to: u.user_id });
      setMsg(r.status === 'pending' ? `Request sent to ${u.nickname}` : `${u.nickname}: ${r.status.replace('_', ' ')}`);
      setWho('');
      await reload();
    } catch (e) {
      setMsg(errText(e));
    }
  };
  const answer = async (id: number, accept: boolean) => {
    await client.call('friend.respond', { request_id: id, accept });
    await reload();
  };
  const createGroup = async () => {
    try {
      const g = await client.call('group.create', { name: groupName.trim(), members: picked, join_policy: 'invite' });
      setGroupName('');
      setPicked([]);
      await client.loadConversations();
      onOpen({ conv_id: g.conv_id, name: g.name, type: 'group', group_id: g.group_id });
    } catch (e) {
      setMsg(errText(e));
    }
  };
  return (
    <div class="people">
      <form class="row" onSubmit={(e) => { e.preventDefault(); void add(); }}>
        <input data-testid="add-friend-name" placeholder="username to befriend" value={who} onInput={(e) => setWho(e.currentTarget.value)} />
        <button data-testid="add-friend" type="submit" disabled={!who.trim()}>Add</button>
      </form>
      {msg && <p class="notice" data-testid="people-msg">{msg}</p>}
      {requests.length > 0 && <h3>Requests</h3>}
      <ul>
        {requests.map((r) => (
          <li key={r.request_id} data-testid="friend-request" data-name={r.user.username}>
            <span class="name">{r.user.nickname}</span>
            <button data-testid="accept" onClick={() => void answer(r.request_id, true)}>Accept</button>
            <button class="link" onClick={() => void answer(r.request_id, false)}>Decline</button>
          </li>
        ))}
      </ul>
      <h3>Friends</h3>
      <ul>
        {friends.length === 0 && <li class="empty">none yet</li>}
        {friends.map((f) => (
          <li key={f.user_id} data-testid="friend" data-name={f.username}>
            <label>
              <input type="checkbox" data-testid="pick" checked={picked.includes(f.user_id)}
                onChange={(e) => setPicked(e.currentTarget.checked ? [...picked, f.user_id] : picked.filter((x) => x !== f.user_id))} />
              <span class="name">{f.remark || f.nickname}</span>
            </label>
            <button data-testid="chat-with" onClick={() => onOpen({ conv_id: directConvId(client.userId, f.user_id), name: f.nickname, type: 'direct', peer_id: f.user_id })}>
              Chat
            </button>
          </li>
        ))}
      </ul>
      <h3>New group</h3>
      <form class="row" onSubmit={(e) => { e.preventDefault(); void createGroup(); }}>
        <input data-testid="group-name" placeholder="group name (tick friends above)" value={groupName} onInput={(e) => setGroupName(e.currentTarget.value)} />
        <button data-testid="create-group" type="submit" disabled={!groupName.trim()}>Create</button>
      </form>
    </div>
  );
}

const RECALL_WINDOW = 2 * 60_000;

function Chat({ client, target, onBack }: { client: Client; target: Target; onBack: () => void }) {
  const tick = useEvents(client, ['message', 'conversations', 'read', 'typing']);
  const [msgs, setMsgs] = useState<ViewMessage[]>([]);
  const [text, setText] = useState('');
  const [editing, setEditing] = useState<ViewMessage | null>(null);
  const [names, setNames] = useState<Record<number, string>>({});
  const [more, setMore] = useState(false);
  const [err, setErr] = useState('');
  const [readBy, setReadBy] = useState<{ seq: number; read: number } | null>(null);
  const [replyTo, setReplyTo] = useState<ViewMessage | null>(null);
  const [mentions, setMentions] = useState<number[]>([]);
  const [panel, setPanel] = useState(false);
  const [presence, setPresence] = useState('');
  const [uploading, setUploading] = useState('');
  const list = useRef<HTMLDivElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const compose = useRef<HTMLInputElement>(null);
  const conv = target.conv_id;

  const loadMembers = () => {
    if (target.type === 'group' && target.group_id) {
      void client.call('group.members', { group_id: target.group_id, limit: 500 }).then((r) =>
        setNames(Object.fromEntries(r.members.map((m) => [m.user_id, m.nickname]))), () => {});
    }
  };
  useEffect(() => {
    // Load a page of history unless the cache already holds one (from an earlier visit).
    void client.messages(conv).then((held) => {
      if (held.filter((m) => !m.pending).length >= 30) setMore(held[0].seq > 1);
      else void client.loadHistory(conv).then((r) => setMore(r.hasMore), () => {});
    });
    loadMembers();
    if (target.peer_id) {
      const peer = target.peer_id;
      setNames({ [peer]: target.name, [client.userId]: 'me' });
      const show = (st: string) => setPresence(st === 'unknown' ? '' : st);
      void client.call('presence.get', { user_ids: [peer] }).then((r: any) => show(r.users?.[0]?.status ?? ''), () => {});
      return client.on('push', (p) => {
        const d = p.data as any;
        if (p.event === 'presence.changed' && d.user_id === peer) show(d.status);
      });
    }
  }, [conv]);
  // A system message (joins, leaves) changes who is in the group.
  const systems = msgs.filter((m) => m.type === 'system').length;
  useEffect(loadMembers, [systems]);

  useEffect(() => {
    let live = true;
    void client.messages(conv).then((m) => live && setMsgs(m));
    const c = client.conversation(conv);
    if (c && c.unread > 0 && document.visibilityState === 'visible') void client.markRead(conv).catch(() => {});
    return () => { live = false; };
  }, [tick, conv]);

  // "read by N" under the last own message of a group.
  const lastMine = [...msgs].reverse().find((m) => m.sender === client.userId && m.seq > 0 && !m.recalled);
  const [poll, setPoll] = useState(0); // group receipts are not pushed: ask again now and then
  useEffect(() => {
    if (target.type !== 'group') return;
    const t = setInterval(() => setPoll((n) => n + 1), 10_000);
    return () => clearInterval(t);
  }, [conv]);
  useEffect(() => {
    if (target.type !== 'group' || !lastMine) return;
    void client.receipts(conv, lastMine.seq).then((r) => setReadBy({ seq: lastMine.seq, read: r.read }), () => {});
  }, [tick, poll, lastMine?.seq]);
  // In 1:1, pushes tell of reads from now on; ask once for what happened before.
  useEffect(() => {
    if (target.type === 'direct' && lastMine && lastMine.seq > client.peerReadSeq(conv)) void client.receipts(conv, lastMine.seq).catch(() => {});
  }, [conv, lastMine !== undefined]);

  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [msgs.length]);

  const submit = async () => {
    const t = text.trim();
    if (!t) return;
    setText('');
    setErr('');
    try {
      const to = target.type === 'direct' && target.peer_id ? target.peer_id : conv;
      const ment = mentions.filter((u) => t.includes('@' + (names[u] ?? '')));
      if (editing) {
        await client.edit(conv, editing.seq, t);
        setEditing(null);
      } else if (replyTo || ment.length > 0) {
        const content = { text: t, ...(replyTo ? { reply_to: replyTo.seq } : {}), ...(ment.length ? { mentions: ment } : {}) };
        setReplyTo(null);
        setMentions([]);
        await client.send(to, content, 'rich');
      } else await client.sendText(to, t);
    } catch (e) {
      setErr(errText(e));
    }
  };
  const attach = async (f: File | undefined) => {
    if (!f) return;
    setErr('');
    try {
      setUploading(`uploading ${f.name}…`);
      await client.sendFile(target.type === 'direct' && target.peer_id ? target.peer_id : conv, f, {
        name: f.name, via: 'edge', onProgress: (sent, total) => setUploading(`uploading ${f.name}: ${Math.round((100 * sent) / total)}%`),
      });
    } catch (e) {
      setErr(errText(e));
    } finally {
      setUploading('');
      if (fileInput.current) fileInput.current.value = '';
    }
  };
  // "@na" at the end of the text: members whose nickname starts so.
  const at = /@([^\s@]*)$/.exec(text);
  const suggestions = target.type === 'group' && at
    ? Object.entries(names).filter(([id, n]) => Number(id) !== client.userId && n.toLowerCase().startsWith(at[1].toLowerCase())).slice(0, 6)
    : [];
  const pickMention = (id: number, n: string) => {
    const t = text.slice(0, text.length - at![0].length) + '@' + n + ' ';
    setText(t);
    setMentions([...mentions, id]);
    setTimeout(() => { // after the render that put t in the field: type on at its end
      const el = compose.current;
      if (!el) return;
      el.focus();
      el.setSelectionRange(el.value.length, el.value.length);
    });
  };
  const byseq = new Map(msgs.map((m) => [m.seq, m]));
  const typers = client.typingUsers(conv).filter((u) => u !== client.userId);
  const peerRead = client.peerReadSeq(conv);
  return (
    <>
      <header>
        <button class="link back" onClick={onBack}>‹</button>
        <b data-testid="chat-title">{target.name}</b>
        {presence && <span class={'presence ' + presence} data-testid="presence">{presence}</span>}
        {target.type === 'group' && <button class="link" data-testid="group-panel" onClick={() => setPanel(!panel)}>{panel ? 'close' : 'members'}</button>}
        <span class="typing" data-testid="typing">{typers.length > 0 ? `${typers.map((u) => names[u] ?? 'someone').join(', ')} typing…` : ''}</span>
      </header>
      {panel && target.group_id && <GroupPanel client={client} groupId={target.group_id} onChange={loadMembers} />}
      <div class="messages" ref={list} data-testid="messages">
        {more && <button class="link older" onClick={() => void client.loadHistory(conv).then((r) => setMore(r.hasMore))}>Load older messages</button>}
        {msgs.map((m) => (
          <Bubble key={m.client_msg_id || m.seq} m={m} mine={m.sender === client.userId} name={names[m.sender]} names={names}
            client={client} quoted={byseq.get((m.content as any)?.reply_to)} onReply={() => setReplyTo(m)}
            read={target.type === 'direct' ? m.seq > 0 && m.seq <= peerRead : false}
            readBy={readBy && readBy.seq === m.seq && target.type === 'group' ? readBy.read : undefined}
            onRecall={() => void client.recall(conv, m.seq).catch((e) => setErr(errText(e)))}
            onEdit={() => { setEditing(m); setText(String((m.content as any)?.text ?? '')); }}
            onReact={(emoji, remove) => void client.react(conv, m.seq, emoji, remove).catch((e) => setErr(errText(e)))} />
        ))}
      </div>
      {err && <p class="error" data-testid="chat-error">{err}</p>}
      {uploading && <p class="notice" data-testid="uploading">{uploading}</p>}
      {replyTo && (
        <p class="replying" data-testid="replying">Replying to {names[replyTo.sender] ?? 'message'}: {String((replyTo.content as any)?.text ?? '').slice(0, 60)}
          <button class="link" onClick={() => setReplyTo(null)}>×</button></p>
      )}
      {suggestions.length > 0 && (
        <ul class="suggest" data-testid="mention-suggestions">
          {suggestions.map(([id, n]) => <li key={id} data-testid="mention-option" onClick={() => pickMention(Number(id), n)}>@{n}</li>)}
        </ul>
      )}
      <form class="compose" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
        {editing && <button type="button" class="link" onClick={() => { setEditing(null); setText(''); }}>cancel edit</button>}
        <input type="file" ref={fileInput} data-testid="attach" style="display:none" onChange={(e) => void attach(e.currentTarget.files?.[0])} />
        <button type="button" class="link" title="send a file or image" onClick={() => fileInput.current?.click()}>📎</button>
        <input data-testid="compose" ref={compose} placeholder={editing ? 'Edit message' : 'Message'} value={text}
          onInput={(e) => { setText(e.currentTarget.value); client.typing(conv); }} />
        <button data-testid="send" type="submit">{editing ? 'Save' : 'Send'}</button>
      </form>
    </>
  );
}

function systemText(c: any, names: Record<number, string>): string {
  const who = (ids?: number[]) => (ids ?? []).map((u) => names[u] ?? `user ${u}`).join(', ');
  switch (c?.event) {
    case 'group.created': return `${names[c.actor] ?? 'someone'} created the group with ${who(c.users)}`;
    case 'member.joined': return `${who(c.users)} joined`;
    case 'member.left': return `${who(c.users)} left`;
    case 'member.kicked': return `${who(c.users)} was removed`;
    case 'group.announcement': return `Announcement: ${c.text}`;
    default: return String(c?.event ?? 'group change').replace('.', ' ');
  }
}

function Media({ client, m }: { client: Client; m: ViewMessage }) {
  const c = (m.content ?? {}) as any;
  if (m.type === 'image' || m.type === 'sticker') {
    return <a href={client.fileURL(c.file_id)} target="_blank"><img class="media" data-testid="image" src={client.fileURL(c.file_id, true)} alt={c.name} /></a>;
  }
  if (m.type === 'video') return <video class="media" controls src={client.fileURL(c.file_id)} />;
  if (m.type === 'voice') return <audio controls src={client.fileURL(c.file_id)} />;
  return <a data-testid="file" href={client.fileURL(c.file_id)}>📄 {c.name ?? 'file'} ({Math.ceil((c.size ?? 0) / 1024)} KB)</a>;
}

function Bubble(p: {
  m: ViewMessage; mine: boolean; name?: string; names: Record<number, string>; read: boolean; readBy?: number;
  client: Client; quoted?: ViewMessage; onReply: () => void;
  onRecall: () => void; onEdit: () => void; onReact: (emoji: string, remove: boolean) => void;
}) {
  const { m, mine } = p;
  if (m.type === 'system') return <div class="system" data-testid="system">{systemText(m.content, p.names)}</div>;
  const c = (m.content ?? {}) as any;
  const fresh = Date.now() - m.sent_at < RECALL_WINDOW;
  return (
    <div class={'bubble' + (mine ? ' mine' : '') + (m.pending ? ' pending' : '') + (m.recalled ? ' recalled' : '')}
      data-testid="message" data-seq={m.seq} data-text={m.recalled ? '' : c.text ?? ''}>
      {!mine && p.name && <div class="from">{p.name}</div>}
      {p.quoted && (
        <div class="quote" data-testid="quote">{p.names[p.quoted.sender] ?? ''}: {p.quoted.recalled ? 'recalled' : String((p.quoted.content as any)?.text ?? `[${p.quoted.type}]`).slice(0, 80)}</div>
      )}
      <div class="body">
        {m.recalled ? <i data-testid="recalled">message recalled</i>
          : c.file_id && m.type !== 'text' && m.type !== 'rich' ? <><Media client={p.client} m={m} />{c.caption && <div>{c.caption}</div>}</>
          : c.text ?? `[${m.type}]`}
        {m.edits ? <span class="meta"> (edited)</span> : null}
      </div>
      <div class="meta">
        {new Date(m.sent_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}
        {m.pending && ' · sending'}
        {m.failed && <span class="error"> · not sent: {m.failed}</span>}
        {mine && p.read && <span data-testid="read"> · read</span>}
        {p.readBy !== undefined && <span data-testid="read-by"> · read by {p.readBy}</span>}
      </div>
      {(m.reactions ?? []).length > 0 && (
        <div class="reactions">
          {m.reactions!.map((r) => (
            <button key={r.emoji} class={'reaction' + (r.me ? ' me' : '')} onClick={() => p.onReact(r.emoji, !!r.me)}>{r.emoji} {r.count}</button>
          ))}
        </div>
      )}
      {!m.pending && !m.recalled && m.seq > 0 && (
        <div class="tools">
          <button class="link" onClick={() => p.onReact('👍', false)}>👍</button>
          <button class="link" data-testid="reply" onClick={p.onReply}>reply</button>
          {mine && fresh && <button class="link" data-testid="recall" onClick={p.onRecall}>recall</button>}
          {mine && c.text !== undefined && (m.type === 'text' || m.type === 'rich') && <button class="link" data-testid="edit" onClick={p.onEdit}>edit</button>}
        </div>
      )}
    </div>
  );
}

interface Member { user_id: number; nickname: string; role: string }

/** A group's members with their roles; owners and admins invite friends, the owner
 * sets roles, owners and admins post announcements. */
function GroupPanel({ client, groupId, onChange }: { client: Client; groupId: number; onChange: () => void }) {
  const [members, setMembers] = useState<Member[]>([]);
  const [friends, setFriends] = useState<Friend[]>([]);
  const [announcement, setAnnouncement] = useState('');
  const [err, setErr] = useState('');
  const load = async () => {
    const [m, f] = await Promise.all([client.call('group.members', { group_id: groupId, limit: 500 }), client.call('friend.list', {})]);
    setMembers(m.members);
    setFriends(f.friends);
  };
  useEffect(() => void load().catch((e) => setErr(errText(e))), [groupId]);
  const act = async (f: () => Promise<unknown>) => {
    setErr('');
    try {
      await f();
      await load();
      onChange();
    } catch (e) {
      setErr(errText(e));
    }
  };
  const me = members.find((m) => m.user_id === client.userId)?.role ?? 'member';
  const outside = friends.filter((f) => !members.some((m) => m.user_id === f.user_id));
  return (
    <div class="panel" data-testid="panel">
      <ul>
        {members.map((m) => (
          <li key={m.user_id} data-testid="member" data-role={m.role}>
            <span class="name">{m.nickname}</span> <span class="muted">{m.role}</span>
            {me === 'owner' && m.role !== 'owner' && (
              <button class="link" onClick={() => void act(() => client.call('group.role.set', { group_id: groupId, user_id: m.user_id, role: m.role === 'admin' ? 'member' : 'admin' }))}>
                {m.role === 'admin' ? 'make member' : 'make admin'}
              </button>
            )}
          </li>
        ))}
      </ul>
      {me !== 'member' && outside.length > 0 && (
        <div class="row">
          {outside.map((f) => (
            <button key={f.user_id} class="link" onClick={() => void act(() => client.call('group.invite', { group_id: groupId, user_ids: [f.user_id] }))}>+ {f.nickname}</button>
          ))}
        </div>
      )}
      {me !== 'member' && (
        <form class="row" onSubmit={(e) => { e.preventDefault(); void act(() => client.call('group.announce', { group_id: groupId, text: announcement })).then(() => setAnnouncement('')); }}>
          <input placeholder="announcement" value={announcement} onInput={(e) => setAnnouncement(e.currentTarget.value)} />
          <button type="submit" disabled={!announcement.trim()}>Announce</button>
        </form>
      )}
      {err && <p class="error">{err}</p>}
    </div>
  );
}
