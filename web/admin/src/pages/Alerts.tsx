import { useState } from "preact/hooks";
import { call, can, when } from "../api";
import { Card, Err, Note, useAction, useLoad } from "../ui";

type Rule = { id: number; name: string; metric: string; op: string; threshold: number; duration_s: number; webhook?: string; enabled: boolean; state: string; since?: number; value: number };

const metrics = ["online_users", "connections", "msgs_per_sec", "errors_per_sec", "p95_ms", "targets_down"];

export function Alerts() {
  const list = useLoad(() => call<{ rules: Rule[] }>("GET", "/monitoring/alerts"));
  const act = useAction();
  const empty = { name: "", metric: "errors_per_sec", op: ">", threshold: "1", duration_s: "60", webhook: "" };
  const [f, setF] = useState(empty);
  const set = (k: keyof typeof empty) => (e: Event) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value });
  const save = (e: Event) => {
    e.preventDefault();
    act.run("Save rule", () => call("PUT", "/monitoring/alerts", { name: f.name, metric: f.metric, op: f.op, threshold: Number(f.threshold), duration_s: Number(f.duration_s), webhook: f.webhook || undefined }))
      .then(() => { setF(empty); list.reload(); });
  };
  return (
    <div>
      <Card title="Rules">
        <Err text={list.error} />
        <table>
          <thead><tr><th>Name</th><th>Condition</th><th>For</th><th>State</th><th>Since</th><th>Value</th><th>Webhook</th><th></th></tr></thead>
          <tbody>
            {list.data?.rules.map((r) => (
              <tr key={r.id} data-rule={r.name}>
                <td>{r.name}</td>
                <td><code>{r.metric} {r.op} {r.threshold}</code></td>
                <td>{r.duration_s}s</td>
                <td><span class={"tag " + (r.state === "firing" ? "bad" : r.state === "ok" ? "ok" : "")}>{r.enabled ? r.state : "disabled"}</span></td>
                <td>{when(r.since)}</td>
                <td>{r.value.toFixed(2)}</td>
                <td class="small">{r.webhook}</td>
                <td>{can("superadmin") && <button class="link" onClick={() => act.run("Delete rule", () => call("DELETE", `/monitoring/alerts/${r.id}`), `Delete ${r.name}?`).then(list.reload)}>Delete</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {list.data && list.data.rules.length === 0 && <p class="muted">No alert rules yet.</p>}
      </Card>
      {can("superadmin") && (
        <Card title="New rule">
          <Note text={act.note} />
          <Err text={act.error} />
          <form class="filters" onSubmit={save}>
            <label>Name<input name="name" value={f.name} onInput={set("name")} required /></label>
            <label>Metric<select name="metric" value={f.metric} onChange={set("metric")}>{metrics.map((m) => <option key={m}>{m}</option>)}</select></label>
            <label>Condition<select name="op" value={f.op} onChange={set("op")}><option value=">">above</option><option value="<">below</option></select></label>
            <label>Threshold<input name="threshold" type="number" step="any" value={f.threshold} onInput={set("threshold")} /></label>
            <label>For (seconds)<input name="duration_s" type="number" min="0" value={f.duration_s} onInput={set("duration_s")} /></label>
            <label>Webhook URL<input name="webhook" type="url" placeholder="https://…" value={f.webhook} onInput={set("webhook")} /></label>
            <button type="submit">Add rule</button>
          </form>
          <p class="muted small">p95 of one op: use the metric name <code>p95_ms:msg.send</code> through the API.</p>
        </Card>
      )}
    </div>
  );
}
