import { useState } from "preact/hooks";
import { call, can, when } from "../api";
import { Card, Err, Note, useAction, useLoad } from "../ui";

type Item = {
  id: number; source: string; kind: string; conv_id?: string; seq?: number; target_user: number; reporter_id?: number;
  reason?: string; note?: string; excerpt: string; words?: string; status: string; handled_by?: number; handled_at?: number; created_at: number;
};

// Review is the queue of flagged messages and users' reports (admin.review.*):
// approve keeps the content, delete recalls the message for everyone and may ban.
export function Review() {
  const [status, setStatus] = useState("pending");
  const [after, setAfter] = useState<number[]>([0]);
  const cur = after[after.length - 1];
  const list = useLoad(() => call<{ items: Item[]; has_more: boolean }>("GET", "/review", { status, after: cur || undefined, limit: 50 }), [status, cur]);
  const act = useAction();
  const [del, setDel] = useState<Item | null>(null);
  const [ban, setBan] = useState(false);
  const [reason, setReason] = useState("");
  const [until, setUntil] = useState("");
  const op = can("operator");
  const remove = (e: Event) => {
    e.preventDefault();
    if (!del) return;
    const it = del;
    act.run(`Delete #${it.id}`, () => call("POST", `/review/${it.id}/delete`, { ban, ban_reason: ban ? reason : undefined, ban_until: ban && until ? new Date(until).getTime() : undefined }),
      it.kind === "message" ? `Remove this message for everyone${ban ? " and ban its sender" : ""}?` : `Ban user ${it.target_user}?`)
      .then(() => { setDel(null); setBan(false); setReason(""); setUntil(""); list.reload(); });
  };
  return (
    <div>
      <Card>
        <div class="toolbar">
          <label class="inline">Status
            <select name="status" value={status} onChange={(e) => { setStatus(e.currentTarget.value); setAfter([0]); setDel(null); }}>
              <option value="pending">pending</option><option value="approved">approved</option><option value="deleted">deleted</option>
            </select>
          </label>
          <button class="link" onClick={list.reload}>Refresh</button>
        </div>
        <Note text={act.note} />
        <Err text={act.error || list.error} />
        <table>
          <thead><tr><th>ID</th><th>Flagged</th><th>Content</th><th>Sender / user</th><th>Where</th><th>Why</th>{status === "pending" ? op && <th></th> : <th>Handled</th>}</tr></thead>
          <tbody>
            {list.data?.items.map((it) => (
              <tr key={it.id} data-item={it.id} class={del?.id === it.id ? "selected" : ""}>
                <td>{it.id}</td>
                <td class="small">{when(it.created_at)}<br />{it.source === "word" ? "word filter" : <>report by <a href={`#/users/${it.reporter_id}`}>{it.reporter_id}</a></>}</td>
                <td data-excerpt class="excerpt">{it.kind === "user" && <span class="muted small">user's nickname: </span>}{it.excerpt}</td>
                <td><a href={`#/users/${it.target_user}`}>{it.target_user}</a></td>
                <td class="small">{it.conv_id ? <>{it.conv_id} #{it.seq}</> : "—"}</td>
                <td class="small">{it.words ? <>words: <code>{it.words}</code></> : null}{it.reason && <span class="tag">{it.reason}</span>}{it.note && <div>{it.note}</div>}</td>
                {status === "pending" ? op && (
                  <td>
                    <div class="row">
                      <button name="approve" onClick={() => act.run(`Approve #${it.id}`, () => call("POST", `/review/${it.id}/approve`, {})).then(list.reload)}>Approve</button>
                      <button name="delete" class="danger" onClick={() => { setDel(it); setBan(it.kind === "user"); }}>{it.kind === "user" ? "Ban…" : "Delete…"}</button>
                    </div>
                  </td>
                ) : (
                  <td class="small">{when(it.handled_at)}{it.handled_by ? <><br />by operator {it.handled_by}</> : null}</td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {list.data && list.data.items.length === 0 && <p class="muted">Nothing {status === "pending" ? "waits for review" : status}.</p>}
        <div class="pager">
          <button disabled={after.length < 2} onClick={() => setAfter(after.slice(0, -1))}>Previous</button>
          <button disabled={!list.data?.has_more} onClick={() => list.data && setAfter([...after, list.data.items[list.data.items.length - 1].id])}>Next</button>
        </div>
      </Card>
      {op && del && (
        <Card title={`${del.kind === "user" ? "Ban the reported user" : "Delete the message"} (#${del.id})`}>
          <p class="small">{del.kind === "message" ? "The message is recalled for everyone in the conversation and a notice replaces it." : "A reported user has no message to remove: deleting this item bans them."}</p>
          <form class="row" onSubmit={remove}>
            <label class="inline"><input type="checkbox" name="ban" checked={ban} disabled={del.kind === "user"} onChange={(e) => setBan(e.currentTarget.checked)} /> Also ban user {del.target_user}</label>
            {ban && <input name="ban-reason" placeholder="Ban reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} maxLength={500} />}
            {ban && <label class="inline">Until <input name="ban-until" type="datetime-local" value={until} onInput={(e) => setUntil(e.currentTarget.value)} /></label>}
            <button type="submit" class="danger" name="confirm-delete">{del.kind === "user" ? "Ban" : "Delete message"}</button>
            <button type="button" class="link" onClick={() => setDel(null)}>Cancel</button>
          </form>
        </Card>
      )}
    </div>
  );
}
