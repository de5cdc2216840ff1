// Helpers shared by natter's k6 scripts: HTTP calls against the edge and the
// message format of the Go load tool (loadtest/scenario/chat.go).
import http from 'k6/http';

export const EDGE = __ENV.EDGE || 'http://127.0.0.1:8080';
export const WS = EDGE.replace(/^http/, 'ws') + '/ws';
export const PASSWORD = 'password-123';

const json = { headers: { 'Content-Type': 'application/json' } };

function bearer(token) {
  return { headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` } };
}

function ok(res, what) {
  if (res.status !== 200) {
    throw new Error(`${what}: HTTP ${res.status} ${res.body}`);
  }
  return res.json();
}

// register creates an account and logs it in on device "k6"; it returns
// {user_id, token}. Each costs an argon2id hash on the server (~20 ms): fine for
// the tens or hundreds of users a k6 run uses; the Go tool seeds thousands by SQL.
export function register(username) {
  ok(http.post(`${EDGE}/api/v1/users/register`, JSON.stringify({ username, password: PASSWORD }), json), 'register');
  const t = ok(http.post(`${EDGE}/api/v1/users/login`,
    JSON.stringify({ username, password: PASSWORD, device_id: 'k6' }), json), 'login');
  return { user_id: t.user_id, token: t.access_token };
}

// befriend makes a and b friends (friend.request, then friend.respond).
export function befriend(a, b) {
  const r = ok(http.post(`${EDGE}/api/v1/social/friends/request`, JSON.stringify({ to: b.user_id }), bearer(a.token)), 'friend.request');
  if (r.status === 'pending') {
    ok(http.put(`${EDGE}/api/v1/social/friends/request/${r.request_id}`, JSON.stringify({ accept: true }), bearer(b.token)), 'friend.respond');
  }
}

// createGroup makes owner's group with members and returns its conversation id.
export function createGroup(owner, members, name) {
  const g = ok(http.post(`${EDGE}/api/v1/social/groups`, JSON.stringify({
    name, members: members.map((m) => m.user_id), join_policy: 'invite',
  }), bearer(owner.token)), 'group.create');
  return g.conv_id;
}

// runTag is unique per run, like the Go tool's username prefix.
export function runTag() {
  return 'k6' + Math.random().toString(36).slice(2, 8) + '-';
}

// clientMsgID is "L<tag><sender>.<k>.<scheduled unix ns>", the Go tool's format:
// the receiver reads the scheduled time back from it (k6 has milliseconds).
export function clientMsgID(tag, sender, k, scheduledMs) {
  return `L${tag}${sender}.${k}.${scheduledMs}000000`;
}

export function scheduledMs(clientMsgId) {
  return Number(clientMsgId.slice(clientMsgId.lastIndexOf('.') + 1)) / 1e6;
}

export function sendFrame(id, addressing, cmid, size) {
  const text = 'load message ' + 'x'.repeat(Math.max(size - 13, 0));
  return JSON.stringify({ id, op: 'msg.send', data: Object.assign({}, addressing, { client_msg_id: cmid, type: 'text', content: { text } }) });
}
