// The console's one way to the back office: the edge's /api/v1/admin/... routes
// with the operator token of admin.login (kept for this tab only).

export type Operator = { id: number; username: string; role: string; totp: boolean; disabled: boolean; created_at: number; last_login?: number };

export class ApiError extends Error {
  constructor(public code: string, message: string, public status: number) {
    super(message);
  }
}

const TOKEN = "natter-admin-token";
const OPERATOR = "natter-admin-operator";

export function session(): { token: string; operator: Operator } | null {
  const token = sessionStorage.getItem(TOKEN);
  const op = sessionStorage.getItem(OPERATOR);
  return token && op ? { token, operator: JSON.parse(op) as Operator } : null;
}

export function saveSession(token: string, operator: Operator) {
  sessionStorage.setItem(TOKEN, token);
  sessionStorage.setItem(OPERATOR, JSON.stringify(operator));
}

export function clearSession() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(OPERATOR);
}

let onUnauthorized: () => void = () => {};
export function whenLoggedOut(fn: () => void) {
  onUnauthorized = fn;
}

// call sends one request; query fields go in the URL of a GET, the rest as JSON.
export async function call<T>(method: string, path: string, body?: Record<string, unknown>): Promise<T> {
  const headers: Record<string, string> = {};
  const s = session();
  if (s) headers["Authorization"] = "Bearer " + s.token;
  let url = "/api/v1/admin" + path;
  let payload: string | undefined;
  if (method === "GET" && body) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(body)) {
      if (v !== undefined && v !== "" && v !== null && v !== false) q.set(k, String(v));
    }
    const qs = q.toString();
    if (qs) url += "?" + qs;
  } else if (body) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(url, { method, headers, body: payload });
  const text = await res.text();
  const data = text ? JSON.parse(text) : {};
  if (!res.ok) {
    const err = data.error || {};
    if (res.status === 401 && s) {
      clearSession();
      onUnauthorized();
    }
    throw new ApiError(err.code || "internal", err.message || res.statusText, res.status);
  }
  return data as T;
}

export const rank: Record<string, number> = { auditor: 1, operator: 2, superadmin: 3 };

// can tells whether the logged-in operator's role reaches role.
export function can(role: string): boolean {
  const s = session();
  return !!s && (rank[s.operator.role] || 0) >= (rank[role] || 99);
}

export function when(ms?: number): string {
  if (!ms) return "—";
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}
