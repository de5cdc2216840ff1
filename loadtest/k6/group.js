// natter group scenario for k6: one group of MEMBERS users, every VU one online
// member (ONLINE VUs), the first SENDERS of them sending RATE group messages per
// second in total; delivery latency from the scheduled send time carried in
// client_msg_id, deliveries per second, and seq checks per receiver.
//
//   k6 run -e EDGE=http://127.0.0.1:8080 -e MEMBERS=200 -e ONLINE=100 -e SENDERS=5 -e RATE=20 loadtest/k6/group.js
//
// Run the edge with EDGE_RATE_LIMIT=-1 for load tests (see loadtest/README.md).
import ws from 'k6/ws';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { WS, clientMsgID, createGroup, register, runTag, scheduledMs, sendFrame } from './lib.js';

const MEMBERS = Number(__ENV.MEMBERS || 200);
const ONLINE = Number(__ENV.ONLINE || 100);
const SENDERS = Number(__ENV.SENDERS || 5);
const RATE = Number(__ENV.RATE || 20);
const SIZE = Number(__ENV.SIZE || 32);
const DURATION = __ENV.DURATION || '30s';

const ackLatency = new Trend('ack_latency', true);
const deliveryLatency = new Trend('delivery_latency', true);
const delivered = new Counter('deliveries');
const acked = new Counter('msgs_acked');
const sendErrors = new Counter('send_errors');
const duplicated = new Counter('seq_duplicated');

export const options = {
  scenarios: {
    group: { executor: 'per-vu-iterations', vus: ONLINE, iterations: 1, maxDuration: '10m' },
  },
  thresholds: {
    delivery_latency: ['p(95)<100'], // issue 5: 200,000 deliveries/s at p95 < 100 ms
    send_errors: ['count==0'],
    seq_duplicated: ['count==0'],
  },
  setupTimeout: '20m',
};

export function setup() {
  const tag = runTag();
  const users = [];
  for (let i = 0; i < MEMBERS; i++) users.push(register(`${tag}${i}`));
  const conv = createGroup(users[0], users.slice(1), `${tag}group`);
  return { tag, conv, users: users.slice(0, ONLINE) };
}

function parseDuration(s) {
  const m = /^(\d+)(ms|s|m)$/.exec(s);
  if (!m) throw new Error(`duration ${s}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60000 }[m[2]];
}

export default function (data) {
  const idx = __VU - 1;
  const me = data.users[idx];
  const sending = idx < SENDERS;
  const everyMs = 1000 * SENDERS / RATE;
  const durationMs = parseDuration(DURATION);
  const pending = {};
  const seen = {};
  let k = 0;

  const res = ws.connect(`${WS}?token=${me.token}`, {}, (socket) => {
    socket.on('open', () => {
      if (sending) {
        const start = Date.now() + 1000 + Math.random() * everyMs; // let the receivers connect
        socket.setTimeout(function tick() {
          const now = Date.now();
          while (start + k * everyMs <= now && k * everyMs < durationMs) {
            const due = start + k * everyMs;
            k++;
            const id = `s${k}`;
            pending[id] = due;
            socket.send(sendFrame(id, { conv_id: data.conv }, clientMsgID(data.tag, idx, k, Math.floor(due)), SIZE));
          }
          if (k * everyMs < durationMs) socket.setTimeout(tick, Math.max(1, start + k * everyMs - Date.now()));
        }, Math.max(1, start - Date.now()));
      }
      socket.setTimeout(() => socket.close(), durationMs + 6000);
    });
    socket.on('message', (raw) => {
      const now = Date.now();
      const f = JSON.parse(raw);
      if (f.event === 'msg.new') {
        const m = f.data;
        if (m.conv_id !== data.conv || !m.client_msg_id.startsWith(`L${data.tag}`)) return; // system messages
        deliveryLatency.add(now - scheduledMs(m.client_msg_id));
        delivered.add(1);
        if (seen[m.seq]) duplicated.add(1);
        seen[m.seq] = true;
      } else if (f.id && pending[f.id] !== undefined) {
        if (f.ok) {
          ackLatency.add(now - pending[f.id]);
          acked.add(1);
        } else {
          sendErrors.add(1);
        }
        delete pending[f.id];
      }
    });
  });
  check(res, { 'upgraded (101)': (r) => r && r.status === 101 });
}
