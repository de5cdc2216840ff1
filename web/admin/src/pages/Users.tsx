import { useState } from "preact/hooks";
import { call, can, when } from "../api";
import { Card, Err, Note, useAction, useLoad } from "../ui";

type User = { id: number; username: string; nickname: string; created_at: number; last_active?: number; banned: boolean; banned_until?: number; ban_reason?: string; deleted?: boolean };
type Device = { session_id: string; device_id: string; platform: string; logged_in_at: number; last_active?: number; last_ip?: string; online: boolean };
type Detail = { user: User; devices: Device[]; groups: { id: number; name: string; role: string }[]; counts: { friends: number; groups: number; sessions: number; blocks: number } };

export function Users({ param }: { param?: string }) {
  return param ? <UserView id={Number(param)} /> : <UserList />;
}

function UserList() {
  const [query, setQuery] = useState("");
  const [banned, setBanned] = useState(false);
  const [after, setAfter] = useState<number[]>([0]);
  const cur = after[after.length - 1];
  const list = useLoad(() => call<{ users: User[]; has_more: boolean }>("GET", "/users", { query, banned, after: cur, limit: 50 }), [query, banned, cur]);
  return (
    <Card>
      <div class="toolbar">
        <input placeholder="Search by username or id" name="query" value={query} onInput={(e) => { setQuery(e.currentTarget.value); setAfter([0]); }} />
        <label class="inline"><input type="checkbox" checked={banned} onChange={(e) => { setBanned(e.currentTarget.checked); setAfter([0]); }} /> Banned only</label>
      </div>
      <Err text={list.error} />
      <table>
        <thead><tr><th>ID</th><th>Username</th><th>Nickname</th><th>Created</th><th>Last active</th><th>Status</th></tr></thead>
        <tbody>
          {list.data?.users.map((u) => (
            <tr key={u.id} data-user={u.username}>
              <td>{u.id}</td>
              <td><a href={`#/users/${u.id}`}>{u.username}</a></td>
              <td>{u.nickname}</td>
              <td>{when(u.created_at)}</td>
              <td>{when(u.last_active)}</td>
              <td>{u.deleted ? <span class="tag">deleted</span> : u.banned ? <span class="tag bad">banned</span> : <span class="tag ok">active</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data && list.data.users.length === 0 && <p class="muted">No users match.</p>}
      <div class="pager">
        <button disabled={after.length < 2} onClick={() => setAfter(after.slice(0, -1))}>Previous</button>
        <button disabled={!list.data?.has_more} onClick={() => list.data && setAfter([...after, list.data.users[list.data.users.length - 1].id])}>Next</button>
      </div>
    </Card>
  );
}

function UserView({ id }: { id: number }) {
  const d = useLoad(() => call<Detail>("GET", `/users/${id}`), [id]);
  const act = useAction();
  const [reason, setReason] = useState("");
  const [until, setUntil] = useState("");
  const [password, setPassword] = useState("");
  if (!d.data) return <Err text={d.error} />;
  const u = d.data.user;
  const then = (label: string, fn: () => Promise<unknown>, confirmText?: string) => act.run(label, fn, confirmText).then(d.reload);
  return (
    <div>
      <p><a href="#/users">← All users</a></p>
      <Card title={`${u.username} (#${u.id})`}>
        <dl class="facts">
          <dt>Nickname</dt><dd>{u.nickname}</dd>
          <dt>Created</dt><dd>{when(u.created_at)}</dd>
          <dt>Last active</dt><dd>{when(u.last_active)}</dd>
          <dt>Status</dt>
          <dd data-status>{u.banned ? `banned${u.banned_until ? " until " + when(u.banned_until) : ""}: ${u.ban_reason}` : u.deleted ? "deleted" : "active"}</dd>
          <dt>Friends / groups / blocks</dt><dd>{d.data.counts.friends} / {d.data.counts.groups} / {d.data.counts.blocks}</dd>
        </dl>
      </Card>
      {can("operator") && (
        <Card title="Actions">
          <Note text={act.note} />
          <Err text={act.error} />
          {u.banned ? (
            <button name="unban" onClick={() => then("Unban", () => call("POST", `/users/${id}/unban`, {}))}>Unban</button>
          ) : (
            <form class="row" onSubmit={(e) => { e.preventDefault(); then("Ban", () => call("POST", `/users/${id}/ban`, { reason, until: until ? new Date(until).getTime() : undefined }), `Ban ${u.username}? Their connections close now.`); }}>
              <input name="reason" placeholder="Reason (required)" value={reason} onInput={(e) => setReason(e.currentTarget.value)} required />
              <label class="inline">Until <input name="until" type="datetime-local" value={until} onInput={(e) => setUntil(e.currentTarget.value)} /></label>
              <button type="submit" class="danger" name="ban">Ban</button>
            </form>
          )}
          <div class="row">
            <button name="logout" onClick={() => then("Force logout", () => call("POST", `/users/${id}/logout`, {}), `Sign ${u.username} out everywhere?`)}>Force logout</button>
          </div>
          <form class="row" onSubmit={(e) => { e.preventDefault(); then("Password reset", () => call("POST", `/users/${id}/password`, { password }), `Set a new password for ${u.username}? Their sessions end.`); setPassword(""); }}>
            <input name="new-password" type="password" placeholder="New password (8+ characters)" value={password} onInput={(e) => setPassword(e.currentTarget.value)} minLength={8} required />
            <button type="submit">Reset password</button>
          </form>
        </Card>
      )}
      <Card title={`Devices (${d.data.devices.length})`}>
        <table>
          <thead><tr><th>Device</th><th>Platform</th><th>Logged in</th><th>Last active</th><th>IP</th><th>Online</th></tr></thead>
          <tbody>{d.data.devices.map((v) => (
            <tr key={v.session_id}><td>{v.device_id}</td><td>{v.platform}</td><td>{when(v.logged_in_at)}</td><td>{when(v.last_active)}</td><td>{v.last_ip}</td><td>{v.online ? "yes" : "no"}</td></tr>
          ))}</tbody>
        </table>
      </Card>
      <Card title={`Groups (${d.data.counts.groups})`}>
        <ul>{d.data.groups.map((g) => <li key={g.id}><a href={`#/groups/${g.id}`}>{g.name}</a> — {g.role}</li>)}</ul>
      </Card>
      <p><a href={`#/audit/user:${u.id}`}>Audit entries about this user →</a></p>
    </div>
  );
}
