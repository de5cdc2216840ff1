import { useState } from "preact/hooks";
import { call, can, when } from "../api";
import { Card, Err, Note, useAction, useLoad } from "../ui";

type Group = { id: number; name: string; owner: number; member_count: number; mute_all: boolean; dismissed: boolean; created_at: number };
type Member = { user_id: number; username: string; nickname: string; role: string; joined_at: number };

export function Groups({ param }: { param?: string }) {
  return param ? <GroupView id={Number(param)} /> : <GroupList />;
}

function GroupList() {
  const [query, setQuery] = useState("");
  const [after, setAfter] = useState<number[]>([0]);
  const cur = after[after.length - 1];
  const list = useLoad(() => call<{ groups: Group[]; has_more: boolean }>("GET", "/groups", { query, after: cur, limit: 50 }), [query, cur]);
  return (
    <Card>
      <div class="toolbar">
        <input placeholder="Search by name or id" name="query" value={query} onInput={(e) => { setQuery(e.currentTarget.value); setAfter([0]); }} />
      </div>
      <Err text={list.error} />
      <table>
        <thead><tr><th>ID</th><th>Name</th><th>Owner</th><th>Members</th><th>Created</th><th>Status</th></tr></thead>
        <tbody>
          {list.data?.groups.map((g) => (
            <tr key={g.id}>
              <td>{g.id}</td>
              <td><a href={`#/groups/${g.id}`}>{g.name}</a></td>
              <td><a href={`#/users/${g.owner}`}>{g.owner}</a></td>
              <td>{g.member_count}</td>
              <td>{when(g.created_at)}</td>
              <td>{g.dismissed ? <span class="tag bad">dismissed</span> : g.mute_all ? <span class="tag">muted</span> : <span class="tag ok">active</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data && list.data.groups.length === 0 && <p class="muted">No groups match.</p>}
      <div class="pager">
        <button disabled={after.length < 2} onClick={() => setAfter(after.slice(0, -1))}>Previous</button>
        <button disabled={!list.data?.has_more} onClick={() => list.data && setAfter([...after, list.data.groups[list.data.groups.length - 1].id])}>Next</button>
      </div>
    </Card>
  );
}

function GroupView({ id }: { id: number }) {
  const [after, setAfter] = useState<number[]>([0]);
  const cur = after[after.length - 1];
  const d = useLoad(() => call<{ group: Group; members: Member[]; has_more: boolean }>("GET", `/groups/${id}`, { after: cur, limit: 100 }), [id, cur]);
  const act = useAction();
  const [newOwner, setNewOwner] = useState("");
  if (!d.data) return <Err text={d.error} />;
  const g = d.data.group;
  const then = (label: string, fn: () => Promise<unknown>, confirmText?: string) => act.run(label, fn, confirmText).then(d.reload);
  return (
    <div>
      <p><a href="#/groups">← All groups</a></p>
      <Card title={`${g.name} (#${g.id})`}>
        <dl class="facts">
          <dt>Owner</dt><dd><a href={`#/users/${g.owner}`}>{g.owner}</a></dd>
          <dt>Members</dt><dd>{g.member_count}</dd>
          <dt>Created</dt><dd>{when(g.created_at)}</dd>
          <dt>Status</dt><dd data-status>{g.dismissed ? "dismissed" : g.mute_all ? "everyone muted" : "active"}</dd>
        </dl>
      </Card>
      {can("operator") && !g.dismissed && (
        <Card title="Actions">
          <Note text={act.note} />
          <Err text={act.error} />
          <div class="row">
            <button name="mute" onClick={() => then(g.mute_all ? "Unmute all" : "Mute all", () => call("PUT", `/groups/${id}/mute`, { muted: !g.mute_all }))}>{g.mute_all ? "Unmute everyone" : "Mute everyone"}</button>
            <button class="danger" name="dismiss" onClick={() => then("Dismiss", () => call("POST", `/groups/${id}/dismiss`, {}), `Dismiss ${g.name}? Members can no longer send there.`)}>Dismiss group</button>
          </div>
          <form class="row" onSubmit={(e) => { e.preventDefault(); then("Transfer", () => call("POST", `/groups/${id}/transfer`, { user_id: Number(newOwner) }), `Make user ${newOwner} the owner?`); }}>
            <input name="new-owner" placeholder="New owner's user id (a member)" value={newOwner} onInput={(e) => setNewOwner(e.currentTarget.value)} required />
            <button type="submit">Transfer ownership</button>
          </form>
        </Card>
      )}
      <Card title="Members">
        <table>
          <thead><tr><th>User</th><th>Nickname</th><th>Role</th><th>Joined</th></tr></thead>
          <tbody>{d.data.members.map((m) => (
            <tr key={m.user_id}><td><a href={`#/users/${m.user_id}`}>{m.username}</a></td><td>{m.nickname}</td><td>{m.role}</td><td>{when(m.joined_at)}</td></tr>
          ))}</tbody>
        </table>
        <div class="pager">
          <button disabled={after.length < 2} onClick={() => setAfter(after.slice(0, -1))}>Previous</button>
          <button disabled={!d.data.has_more} onClick={() => d.data && setAfter([...after, d.data.members[d.data.members.length - 1].user_id])}>Next</button>
        </div>
      </Card>
      <p><a href={`#/audit/group:${g.id}`}>Audit entries about this group →</a></p>
    </div>
  );
}
