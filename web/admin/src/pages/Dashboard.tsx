import { useEffect } from "preact/hooks";
import { call, when } from "../api";
import { Card, Err, useLoad } from "../ui";

type Point = { at: number; online: number; msgs_per_sec: number; p95_ms: number };
type OpStat = { op: string; per_sec: number; p95_ms: number; requests: number };
type Metrics = { at: number; online_users: number; connections: Record<string, number>; msgs_per_sec: number; errors_per_sec: number; p95_ms: number; ops: OpStat[]; history: Point[]; targets: Record<string, boolean> };
type Check = { ok: boolean; ms: number; error?: string };
type Health = { nats: Check; database: Check; redis: Check; targets: Record<string, boolean> };

// Chart draws one series of the last hour as an SVG polyline.
function Chart({ title, points, value, unit }: { title: string; points: Point[]; value: (p: Point) => number; unit: string }) {
  const w = 320, h = 90;
  const vals = points.map(value);
  const maxV = Math.max(1, ...vals);
  const t0 = points.length ? points[0].at : 0;
  const span = points.length > 1 ? points[points.length - 1].at - t0 : 1;
  const line = points.map((p, i) => `${((p.at - t0) / span) * w},${h - (vals[i] / maxV) * (h - 10)}`).join(" ");
  const last = vals.length ? vals[vals.length - 1] : 0;
  return (
    <div class="chart">
      <div class="chart-title">{title}<strong>{last.toFixed(unit === "" ? 0 : 1)}{unit}</strong></div>
      <svg viewBox={`0 0 ${w} ${h}`} width="100%" height={h} role="img" aria-label={title}>
        <polyline points={line} fill="none" stroke="currentColor" stroke-width="2" />
      </svg>
      <div class="muted small">max {maxV.toFixed(1)}{unit} over the last {Math.round(span / 60000)} min</div>
    </div>
  );
}

function Dot({ ok }: { ok: boolean }) {
  return <span class={ok ? "dot ok" : "dot bad"}>{ok ? "up" : "down"}</span>;
}

export function Dashboard() {
  const m = useLoad(() => call<Metrics>("GET", "/monitoring/metrics"));
  const h = useLoad(() => call<Health>("GET", "/monitoring/health"));
  useEffect(() => {
    const t = setInterval(() => { m.reload(); h.reload(); }, 5000);
    return () => clearInterval(t);
  }, [m.reload, h.reload]);
  const d = m.data;
  return (
    <div>
      <Err text={m.error || h.error} />
      <div class="stats">
        <div class="stat"><span>Online users</span><strong data-stat="online">{d?.online_users ?? "…"}</strong></div>
        <div class="stat"><span>Messages / s</span><strong>{d ? d.msgs_per_sec.toFixed(1) : "…"}</strong></div>
        <div class="stat"><span>Slowest op p95</span><strong>{d ? d.p95_ms.toFixed(1) + " ms" : "…"}</strong></div>
        <div class="stat"><span>Errors / s</span><strong>{d ? d.errors_per_sec.toFixed(2) : "…"}</strong></div>
      </div>
      {d && (
        <div class="charts">
          <Chart title="Online users" points={d.history} value={(p) => p.online} unit="" />
          <Chart title="Messages / s" points={d.history} value={(p) => p.msgs_per_sec} unit="/s" />
          <Chart title="p95 (slowest op)" points={d.history} value={(p) => p.p95_ms} unit=" ms" />
        </div>
      )}
      <div class="grid2">
        <Card title="Health">
          {h.data && (
            <table>
              <tbody>
                <tr><td>NATS</td><td><Dot ok={h.data.nats.ok} /> {h.data.nats.ms.toFixed(1)} ms {h.data.nats.error}</td></tr>
                <tr><td>Database</td><td><Dot ok={h.data.database.ok} /> {h.data.database.ms.toFixed(1)} ms {h.data.database.error}</td></tr>
                <tr><td>Redis</td><td><Dot ok={h.data.redis.ok} /> {h.data.redis.ms.toFixed(1)} ms {h.data.redis.error}</td></tr>
                {Object.entries(h.data.targets || {}).map(([t, ok]) => <tr key={t}><td>{t}</td><td><Dot ok={ok} /></td></tr>)}
              </tbody>
            </table>
          )}
        </Card>
        <Card title="Connections per edge">
          <table><tbody>
            {d && Object.entries(d.connections).map(([edge, n]) => <tr key={edge}><td>{edge}</td><td>{n}</td></tr>)}
          </tbody></table>
          {d && Object.keys(d.connections).length === 0 && <p class="muted">No edge reported yet.</p>}
        </Card>
      </div>
      <Card title="Operations (last minute)">
        <table>
          <thead><tr><th>Op</th><th>Requests</th><th>Per second</th><th>p95</th></tr></thead>
          <tbody>{d?.ops.map((o) => <tr key={o.op}><td><code>{o.op}</code></td><td>{o.requests}</td><td>{o.per_sec.toFixed(2)}</td><td>{o.p95_ms.toFixed(1)} ms</td></tr>)}</tbody>
        </table>
        <p class="muted small">Sampled {when(d?.at)}</p>
      </Card>
    </div>
  );
}
