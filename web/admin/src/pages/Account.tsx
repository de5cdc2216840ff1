import { useState } from "preact/hooks";
import { call, when, type Operator } from "../api";
import { Card, Err, Note, useAction, useLoad } from "../ui";

// Account: the signed-in operator, and turning on TOTP (a code from an
// authenticator app at every login).
export function Account() {
  const me = useLoad(() => call<Operator>("GET", "/me"));
  const act = useAction();
  const [setup, setSetup] = useState<{ secret: string; uri: string } | null>(null);
  const [code, setCode] = useState("");
  const o = me.data;
  return (
    <div>
      <Err text={me.error} />
      {o && (
        <Card title={o.username}>
          <dl class="facts">
            <dt>Role</dt><dd>{o.role}</dd>
            <dt>Created</dt><dd>{when(o.created_at)}</dd>
            <dt>Last login</dt><dd>{when(o.last_login)}</dd>
            <dt>Two-factor (TOTP)</dt><dd data-totp>{o.totp ? "on" : "off"}</dd>
          </dl>
        </Card>
      )}
      <Card title="Authenticator app (TOTP)">
        <Note text={act.note} />
        <Err text={act.error} />
        {!setup ? (
          <button name="totp-setup" onClick={() => act.run("New secret", async () => setSetup(await call("POST", "/me/totp", {})))}>
            {o?.totp ? "Replace the authenticator secret" : "Set up an authenticator app"}
          </button>
        ) : (
          <form onSubmit={(e) => { e.preventDefault(); act.run("TOTP", () => call("PUT", "/me/totp", { code })).then(() => { setSetup(null); setCode(""); me.reload(); }); }}>
            <p>Add this secret to your authenticator app (or open the link on the phone that has it), then enter the code it shows.</p>
            <p><code data-secret>{setup.secret}</code></p>
            <p class="small"><a href={setup.uri}>{setup.uri}</a></p>
            <div class="row">
              <input name="totp-code" inputMode="numeric" placeholder="6-digit code" value={code} onInput={(e) => setCode(e.currentTarget.value)} required />
              <button type="submit">Turn on</button>
            </div>
          </form>
        )}
      </Card>
    </div>
  );
}
