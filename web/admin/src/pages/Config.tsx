import { useState } from "preact/hooks";
import { call, can, when } from "../api";
import { Card, Err, Note, useAction, useLoad } from "../ui";

type Item = { name: string; type: string; description: string; default?: string; min?: number; max?: number; value: unknown; updated_by?: number; updated_at?: number };
type Flag = { name: string; description?: string; enabled: boolean; percent?: number; overrides?: Record<string, boolean>; updated_by: number; updated_at: number };
type Rates = { DirectPerSecond: number; DirectPerMinute: number; GroupPerSecond: number; GroupPerMinute: number };
type Override = { user_id: number; direct_per_second: number | null; direct_per_minute: number | null; group_per_second: number | null; group_per_minute: number | null; updated_by: number; updated_at: number };

// Config is config items, feature flags and per-user send rates
// (admin.config.*, admin.features.*, admin.rate.*). #/config/<flag> opens a flag.
export function Config({ param }: { param?: string }) {
  if (param) return <FlagView name={decodeURIComponent(param)} />;
  return (
    <div>
      <Items />
      <Flags />
      <RateOverrides />
    </div>
  );
}

function show(v: unknown): string {
  return v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v);
}

function json(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

function Items() {
  const list = useLoad(() => call<{ items: Item[] }>("GET", "/config/items"));
  const act = useAction();
  const [edit, setEdit] = useState<Record<string, string>>({});
  const save = (it: Item, value: unknown) =>
    act.run(`Set ${it.name}`, () => call("PUT", "/config/items", { name: it.name, value })).then(() => { setEdit({ ...edit, [it.name]: "" }); list.reload(); });
  const parse = (it: Item, s: string): unknown => (it.type === "int" ? Number(s) : it.type === "bool" ? s === "true" : s);
  return (
    <Card title="Config items">
      <Note text={act.note} />
      <Err text={act.error || list.error} />
      <table>
        <thead><tr><th>Name</th><th>Description</th><th>Default</th><th>Value</th><th>Changed</th>{can("superadmin") && <th>Set</th>}</tr></thead>
        <tbody>
          {list.data?.items.map((it) => (
            <tr key={it.name} data-item={it.name}>
              <td><code>{it.name}</code><div class="muted small">{it.type}{it.max ? ` ${it.min ?? 0}–${it.max}${it.type === "duration" ? " s" : ""}` : ""}</div></td>
              <td class="small">{it.description}</td>
              <td>{it.default ? show(json(it.default)) : <span class="muted small">from the environment</span>}</td>
              <td data-value>{it.value === null || it.value === undefined ? <span class="muted">default</span> : <strong>{show(it.value)}</strong>}</td>
              <td class="small">{it.updated_at ? <>{when(it.updated_at)}<br />by operator {it.updated_by}</> : "—"}</td>
              {can("superadmin") && (
                <td>
                  <form class="row nowrap" onSubmit={(e) => { e.preventDefault(); save(it, parse(it, edit[it.name] ?? "")); }}>
                    {it.type === "bool" ? (
                      <select name={"value-" + it.name} value={edit[it.name] ?? ""} onChange={(e) => setEdit({ ...edit, [it.name]: e.currentTarget.value })}>
                        <option value="" disabled>choose</option><option value="true">true</option><option value="false">false</option>
                      </select>
                    ) : (
                      <input name={"value-" + it.name} style="width:110px" type={it.type === "int" ? "number" : "text"} placeholder={it.type === "duration" ? "2m, 90s" : ""} value={edit[it.name] ?? ""} onInput={(e) => setEdit({ ...edit, [it.name]: e.currentTarget.value })} required />
                    )}
                    <button type="submit">Set</button>
                    {it.value !== null && it.value !== undefined && <button type="button" class="link" onClick={() => save(it, null)}>Reset</button>}
                  </form>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </Card>
  );
}

function Flags() {
  const list = useLoad(() => call<{ flags: Flag[] }>("GET", "/features"));
  const act = useAction();
  const [name, setName] = useState("");
  const [desc, setDesc] = useState("");
  const put = (label: string, flag: string, body: Record<string, unknown>) =>
    act.run(label, () => call("PUT", `/features/${encodeURIComponent(flag)}`, body)).then(list.reload);
  return (
    <Card title="Feature flags">
      <Note text={act.note} />
      <Err text={act.error || list.error} />
      <table>
        <thead><tr><th>Name</th><th>Description</th><th>Everyone</th><th>Rollout</th><th>Overrides</th><th>Changed</th><th></th></tr></thead>
        <tbody>
          {list.data?.flags.map((f) => (
            <tr key={f.name} data-flag={f.name}>
              <td><a href={`#/config/${encodeURIComponent(f.name)}`}><code>{f.name}</code></a></td>
              <td class="small">{f.description}</td>
              <td data-state>{f.enabled ? <span class="tag ok">on</span> : <span class="tag">off</span>}</td>
              <td>{f.enabled ? "—" : `${f.percent || 0}%`}</td>
              <td>{Object.keys(f.overrides || {}).length}</td>
              <td class="small">{when(f.updated_at)}</td>
              <td>{can("superadmin") && <button name="toggle" onClick={() => put(`Turn ${f.name} ${f.enabled ? "off" : "on"}`, f.name, { enabled: !f.enabled })}>{f.enabled ? "Turn off" : "Turn on"}</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data && list.data.flags.length === 0 && <p class="muted">No flags yet.</p>}
      {can("superadmin") && (
        <form class="filters" onSubmit={(e) => { e.preventDefault(); put(`Create ${name}`, name, { description: desc || undefined }).then(() => { setName(""); setDesc(""); }); }}>
          <label>New flag name<input name="flag-name" placeholder="msgtype.voice" value={name} onInput={(e) => setName(e.currentTarget.value)} pattern="[a-z0-9][a-z0-9_.\-]{0,63}" required /></label>
          <label>Description<input name="flag-description" value={desc} onInput={(e) => setDesc(e.currentTarget.value)} maxLength={255} /></label>
          <button type="submit">Create flag</button>
        </form>
      )}
      <p class="muted small">A new flag starts off for everyone at 0%. The server reads <code>msgtype.&lt;type&gt;</code> (text, rich, image, file, voice, video, sticker): while it exists and is off for a user, they cannot send that type. A flag is on for a user when their override says so, else when it is on for everyone, else for the rollout's share of users.</p>
    </Card>
  );
}

function FlagView({ name }: { name: string }) {
  const d = useLoad(() => call<Flag>("GET", `/features/${encodeURIComponent(name)}`), [name]);
  const act = useAction();
  const [percent, setPercent] = useState("");
  const [desc, setDesc] = useState<string | null>(null);
  const [user, setUser] = useState("");
  const [on, setOn] = useState("true");
  const put = (label: string, body: Record<string, unknown>) =>
    act.run(label, () => call("PUT", `/features/${encodeURIComponent(name)}`, body)).then(d.reload);
  const back = <p><a href="#/config">← Config & flags</a></p>;
  if (!d.data) return <div>{back}<Err text={d.error} /></div>;
  const f = d.data;
  const su = can("superadmin");
  const overrides = Object.entries(f.overrides || {});
  return (
    <div>
      {back}
      <Card title={f.name}>
        <Note text={act.note} />
        <Err text={act.error} />
        <dl class="facts">
          <dt>Description</dt><dd>{f.description || "—"}</dd>
          <dt>On for everyone</dt><dd data-state>{f.enabled ? "yes" : "no"}</dd>
          <dt>Rollout</dt><dd>{f.percent || 0}% of users (when not on for everyone)</dd>
          <dt>Changed</dt><dd>{when(f.updated_at)} by operator {f.updated_by}</dd>
        </dl>
        {su && (
          <div>
            <div class="row" style="margin-top:12px">
              <button name="toggle" onClick={() => put(f.enabled ? "Turn off" : "Turn on", { enabled: !f.enabled })}>{f.enabled ? "Turn off for everyone" : "Turn on for everyone"}</button>
            </div>
            <form class="row" onSubmit={(e) => { e.preventDefault(); put("Rollout", { percent: Number(percent) }); setPercent(""); }}>
              <input name="percent" type="number" min="0" max="100" placeholder="0–100" value={percent} onInput={(e) => setPercent(e.currentTarget.value)} required />
              <button type="submit">Set rollout %</button>
            </form>
            <form class="row" onSubmit={(e) => { e.preventDefault(); put("Description", { description: desc ?? "" }); setDesc(null); }}>
              <input name="description" placeholder="Description" size={50} maxLength={255} value={desc ?? f.description ?? ""} onInput={(e) => setDesc(e.currentTarget.value)} />
              <button type="submit">Save description</button>
            </form>
          </div>
        )}
      </Card>
      <Card title={`Per-user overrides (${overrides.length})`}>
        <table>
          <thead><tr><th>User</th><th>Flag for them</th><th></th></tr></thead>
          <tbody>
            {overrides.map(([uid, v]) => (
              <tr key={uid} data-override={uid}>
                <td><a href={`#/users/${uid}`}>{uid}</a></td>
                <td>{v ? <span class="tag ok">on</span> : <span class="tag">off</span>}</td>
                <td>{su && <button class="link" onClick={() => put(`Clear override of ${uid}`, { clear_users: [Number(uid)] })}>Clear</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {overrides.length === 0 && <p class="muted">No overrides.</p>}
        {su && (
          <form class="row" onSubmit={(e) => { e.preventDefault(); put(`Override for ${user}`, { set_users: { [user]: on === "true" } }); setUser(""); }}>
            <input name="override-user" type="number" min="1" placeholder="User id" value={user} onInput={(e) => setUser(e.currentTarget.value)} required />
            <select name="override-value" value={on} onChange={(e) => setOn(e.currentTarget.value)}><option value="true">on</option><option value="false">off</option></select>
            <button type="submit">Set override</button>
          </form>
        )}
      </Card>
    </div>
  );
}

const rateFields: { key: keyof Override & keyof RateForm; label: string }[] = [
  { key: "direct_per_second", label: "1:1 per second" },
  { key: "direct_per_minute", label: "1:1 per minute" },
  { key: "group_per_second", label: "Groups per second" },
  { key: "group_per_minute", label: "Groups per minute" },
];
type RateForm = { user_id: string; direct_per_second: string; direct_per_minute: string; group_per_second: string; group_per_minute: string };

function RateOverrides() {
  const [after, setAfter] = useState<number[]>([0]);
  const cur = after[after.length - 1];
  const list = useLoad(() => call<{ global: Rates; overrides: Override[]; has_more: boolean }>("GET", "/rate/overrides", { after: cur || undefined, limit: 50 }), [cur]);
  const act = useAction();
  const empty: RateForm = { user_id: "", direct_per_second: "", direct_per_minute: "", group_per_second: "", group_per_minute: "" };
  const [f, setF] = useState(empty);
  const save = (e: Event) => {
    e.preventDefault();
    const body: Record<string, unknown> = {};
    for (const r of rateFields) if (f[r.key] !== "") body[r.key] = Number(f[r.key]);
    act.run(`Rates of user ${f.user_id}`, () => call("PUT", `/rate/overrides/${Number(f.user_id)}`, body)).then(() => { setF(empty); list.reload(); });
  };
  const g = list.data?.global;
  const lim = (v: number | null | undefined) => (v === null || v === undefined ? <span class="muted">global</span> : v === 0 ? "no limit" : String(v));
  return (
    <Card title="Send rates per user">
      <Note text={act.note} />
      <Err text={act.error || list.error} />
      {g && (
        <p class="small">Global (config items <code>rate.*</code>): 1:1 {g.DirectPerSecond || "∞"}/s, {g.DirectPerMinute || "∞"}/min; groups {g.GroupPerSecond || "∞"}/s, {g.GroupPerMinute || "∞"}/min.</p>
      )}
      <table>
        <thead><tr><th>User</th>{rateFields.map((r) => <th key={r.key}>{r.label}</th>)}<th>Changed</th></tr></thead>
        <tbody>
          {list.data?.overrides.map((o) => (
            <tr key={o.user_id} data-rate={o.user_id}>
              <td><a href={`#/users/${o.user_id}`}>{o.user_id}</a></td>
              {rateFields.map((r) => <td key={r.key}>{lim(o[r.key] as number | null)}</td>)}
              <td class="small">{when(o.updated_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data && list.data.overrides.length === 0 && <p class="muted">No user has an override.</p>}
      <div class="pager">
        <button disabled={after.length < 2} onClick={() => setAfter(after.slice(0, -1))}>Previous</button>
        <button disabled={!list.data?.has_more} onClick={() => list.data && setAfter([...after, list.data.overrides[list.data.overrides.length - 1].user_id])}>Next</button>
      </div>
      {can("operator") && (
        <form class="filters" onSubmit={save}>
          <label>User id<input name="rate-user" type="number" min="1" value={f.user_id} onInput={(e) => setF({ ...f, user_id: e.currentTarget.value })} required /></label>
          {rateFields.map((r) => (
            <label key={r.key}>{r.label}<input name={"rate-" + r.key} type="number" min="0" placeholder="global" value={f[r.key]} onInput={(e) => setF({ ...f, [r.key]: e.currentTarget.value })} /></label>
          ))}
          <button type="submit">Set override</button>
        </form>
      )}
      {can("operator") && <p class="muted small">Empty fields take the global value (all empty clears the user's override); 0 means no limit.</p>}
    </Card>
  );
}
