import { useState } from "preact/hooks";
import { call, when } from "../api";
import { Card, Err, useLoad } from "../ui";

type Entry = { id: number; at: number; actor_kind: string; actor_id: number; actor_name?: string; action: string; target_kind?: string; target_id?: string; before?: unknown; after?: unknown; detail?: string; ip?: string };

// Audit lists the log newest first. #/audit/user:42 opens it filtered on a target.
export function Audit({ param }: { param?: string }) {
  const [tk, ti] = (param || "").split(":");
  const [f, setF] = useState({ action: "", actor_kind: "", actor_id: "", target_kind: tk || "", target_id: ti || "", since: "", until: "" });
  const [before, setBefore] = useState<number[]>([0]);
  const cur = before[before.length - 1];
  const list = useLoad(() => call<{ entries: Entry[]; has_more: boolean }>("GET", "/audit", {
    action: f.action, actor_kind: f.actor_kind, actor_id: f.actor_id, target_kind: f.target_kind, target_id: f.target_id,
    since: f.since ? new Date(f.since).getTime() : undefined, until: f.until ? new Date(f.until).getTime() : undefined,
    before: cur || undefined, limit: 50,
  }), [JSON.stringify(f), cur]);
  const field = (name: keyof typeof f, label: string, type = "text") => (
    <label>{label}<input name={name} type={type} value={f[name]} onChange={(e) => { setF({ ...f, [name]: e.currentTarget.value }); setBefore([0]); }} /></label>
  );
  return (
    <Card>
      <div class="filters">
        {field("action", "Action (user.ban, …)")}
        {field("actor_kind", "Actor kind (operator, user, system)")}
        {field("actor_id", "Actor id")}
        {field("target_kind", "Target kind (user, group, operator)")}
        {field("target_id", "Target id")}
        {field("since", "Since", "datetime-local")}
        {field("until", "Until", "datetime-local")}
      </div>
      <Err text={list.error} />
      <table class="audit">
        <thead><tr><th>When</th><th>Actor</th><th>Action</th><th>Target</th><th>Before → after</th><th>Detail</th><th>IP</th></tr></thead>
        <tbody>
          {list.data?.entries.map((e) => (
            <tr key={e.id} data-action={e.action}>
              <td>{when(e.at)}</td>
              <td>{e.actor_kind} {e.actor_name || (e.actor_id || "")}</td>
              <td><code>{e.action}</code></td>
              <td>{e.target_kind} {e.target_id}</td>
              <td class="json">{e.before !== undefined ? JSON.stringify(e.before) : ""}{e.after !== undefined ? " → " + JSON.stringify(e.after) : ""}</td>
              <td>{e.detail}</td>
              <td>{e.ip}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data && list.data.entries.length === 0 && <p class="muted">No entries match.</p>}
      <div class="pager">
        <button disabled={before.length < 2} onClick={() => setBefore(before.slice(0, -1))}>Newer</button>
        <button disabled={!list.data?.has_more} onClick={() => list.data && setBefore([...before, list.data.entries[list.data.entries.length - 1].id])}>Older</button>
      </div>
    </Card>
  );
}
