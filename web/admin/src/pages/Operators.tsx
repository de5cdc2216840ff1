import { useState } from "preact/hooks";
import { call, session, when, type Operator } from "../api";
import { Card, Err, Note, useAction, useLoad } from "../ui";

const roles = ["auditor", "operator", "superadmin"];

// Operators: superadmins add operators, change their roles, disable them and
// reset their passwords or TOTP (each change signs the operator out).
export function Operators() {
  const list = useLoad(() => call<{ operators: Operator[]; has_more: boolean }>("GET", "/operators", { limit: 200 }));
  const act = useAction();
  const me = session()?.operator.id;
  const [f, setF] = useState({ username: "", password: "", role: "operator" });
  const update = (o: Operator, body: Record<string, unknown>, label: string, confirmText?: string) =>
    act.run(label, () => call("PUT", `/operators/${o.id}`, body), confirmText).then(list.reload);
  return (
    <div>
      <Card title="Operators">
        <Note text={act.note} />
        <Err text={act.error || list.error} />
        <table>
          <thead><tr><th>Username</th><th>Role</th><th>TOTP</th><th>Last login</th><th>Status</th><th>Actions</th></tr></thead>
          <tbody>
            {list.data?.operators.map((o) => (
              <tr key={o.id} data-operator={o.username}>
                <td>{o.username}</td>
                <td>
                  {o.id === me ? o.role : (
                    <select aria-label={`Role of ${o.username}`} value={o.role} onChange={(e) => update(o, { role: e.currentTarget.value }, "Role change")}>
                      {roles.map((r) => <option key={r}>{r}</option>)}
                    </select>
                  )}
                </td>
                <td>{o.totp ? "on" : "off"}</td>
                <td>{when(o.last_login)}</td>
                <td>{o.disabled ? <span class="tag bad">disabled</span> : <span class="tag ok">active</span>}</td>
                <td class="row">
                  {o.id !== me && <button class="link" onClick={() => update(o, { disabled: !o.disabled }, o.disabled ? "Enable" : "Disable", o.disabled ? undefined : `Disable ${o.username}? They are signed out now.`)}>{o.disabled ? "Enable" : "Disable"}</button>}
                  {o.totp && <button class="link" onClick={() => update(o, { reset_totp: true }, "TOTP reset", `Turn TOTP off for ${o.username}?`)}>Reset TOTP</button>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Card>
      <Card title="New operator">
        <form class="filters" onSubmit={(e) => { e.preventDefault(); act.run("Create operator", () => call("POST", "/operators", f)).then(() => { setF({ username: "", password: "", role: "operator" }); list.reload(); }); }}>
          <label>Username<input name="op-username" value={f.username} onInput={(e) => setF({ ...f, username: e.currentTarget.value })} required /></label>
          <label>Password<input name="op-password" type="password" minLength={8} value={f.password} onInput={(e) => setF({ ...f, password: e.currentTarget.value })} required /></label>
          <label>Role<select name="op-role" value={f.role} onChange={(e) => setF({ ...f, role: e.currentTarget.value })}>{roles.map((r) => <option key={r}>{r}</option>)}</select></label>
          <button type="submit">Create operator</button>
        </form>
        <p class="muted small">Auditors read everything and change nothing; operators also moderate users and groups; superadmins also manage operators and alert rules.</p>
      </Card>
    </div>
  );
}
