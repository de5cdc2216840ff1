// natter direct scenario for k6: USERS users (even) in pairs of friends, each
// connected over WebSocket and sending to its partner at RATE messages per second
// in total; ack latency (reply) and end-to-end latency (the partner's push, from the
// scheduled send time carried in client_msg_id), with seq checks on the pushes.
//
//   k6 run -e EDGE=http://127.0.0.1:8080 -e USERS=100 -e RATE=500 -e DURATION=30s loadtest/k6/direct.js
//
// The edge allows 50 frames/s per connection by default: run it with
// EDGE_RATE_LIMIT=-1 for load tests (see loadtest/README.md).
import ws from 'k6/ws';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { WS, befriend, clientMsgID, register, runTag, scheduledMs, sendFrame } from './lib.js';

const USERS = Number(__ENV.USERS || 100);
const RATE = Number(__ENV.RATE || 500);
const SIZE = Number(__ENV.SIZE || 32);
const DURATION = __ENV.DURATION || '30s';

const ackLatency = new Trend('ack_latency', true);
const e2eLatency = new Trend('e2e_latency', true);
const acked = new Counter('msgs_acked');
const delivered = new Counter('msgs_delivered');
const sendErrors = new Counter('send_errors');
const duplicated = new Counter('seq_duplicated');
const outOfOrder = new Counter('seq_out_of_order');

export const options = {
  scenarios: {
    direct: { executor: 'per-vu-iterations', vus: USERS, iterations: 1, maxDuration: '10m' },
  },
  thresholds: {
    e2e_latency: ['p(95)<50'], // issue 5: 10,000 msgs/s with p99 < 50 ms
    ack_latency: ['p(95)<50'],
    send_errors: ['count==0'],
    seq_duplicated: ['count==0'],
  },
  setupTimeout: '10m',
};

export function setup() {
  if (USERS % 2 !== 0) throw new Error('USERS must be even');
  const tag = runTag();
  const users = [];
  for (let i = 0; i < USERS; i++) users.push(register(`${tag}${i}`));
  for (let i = 0; i < USERS; i += 2) befriend(users[i], users[i + 1]);
  return { tag, users };
}

function parseDuration(s) {
  const m = /^(\d+)(ms|s|m)$/.exec(s);
  if (!m) throw new Error(`duration ${s}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60000 }[m[2]];
}

export default function (data) {
  const idx = __VU - 1;
  const me = data.users[idx];
  const peer = data.users[idx % 2 === 0 ? idx + 1 : idx - 1];
  const everyMs = 1000 * USERS / RATE; // each user's share of the rate
  const durationMs = parseDuration(DURATION);
  const pending = {}; // request id -> scheduled ms
  let k = 0;
  let lastSeq = 0;
  const seen = {};

  const res = ws.connect(`${WS}?token=${me.token}`, {}, (socket) => {
    socket.on('open', () => {
      const start = Date.now() + Math.random() * everyMs; // spread the senders
      socket.setTimeout(function tick() {
        // Open loop: catch up every send that is due, measured from when it was due.
        const now = Date.now();
        while (start + k * everyMs <= now && k * everyMs < durationMs) {
          const due = start + k * everyMs;
          k++;
          const id = `s${k}`;
          pending[id] = due;
          socket.send(sendFrame(id, { to: peer.user_id }, clientMsgID(data.tag, idx, k, Math.floor(due)), SIZE));
        }
        if (k * everyMs < durationMs) socket.setTimeout(tick, Math.max(1, start + k * everyMs - Date.now()));
      }, Math.max(1, start - Date.now()));
      socket.setTimeout(() => socket.close(), durationMs + 5000); // drain
    });
    socket.on('message', (raw) => {
      const now = Date.now();
      const f = JSON.parse(raw);
      if (f.event === 'msg.new') {
        const m = f.data;
        if (!m.client_msg_id.startsWith(`L${data.tag}`)) return;
        e2eLatency.add(now - scheduledMs(m.client_msg_id));
        delivered.add(1);
        if (seen[m.seq]) duplicated.add(1);
        else if (m.seq < lastSeq) outOfOrder.add(1);
        seen[m.seq] = true;
        lastSeq = Math.max(lastSeq, m.seq);
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
