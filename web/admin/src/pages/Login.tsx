import { useState } from "preact/hooks";
import { call, saveSession, type Operator } from "../api";
import { Err, message } from "../ui";

export function Login({ onLogin }: { onLogin: () => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [totp, setTotp] = useState("");
  const [needTotp, setNeedTotp] = useState(false);
  const [error, setError] = useState("");
  const submit = async (e: Event) => {
    e.preventDefault();
    setError("");
    try {
      const r = await call<{ token: string; operator: Operator }>("POST", "/login", { username, password, totp: totp || undefined });
      saveSession(r.token, r.operator);
      onLogin();
    } catch (err) {
      if (message(err).includes("totp code required")) {
        setNeedTotp(true);
        setError("Enter the 6-digit code from your authenticator app.");
        return;
      }
      setError(message(err));
    }
  };
  return (
    <div class="login">
      <form onSubmit={submit} class="card">
        <h1>natter back office</h1>
        <p class="muted">Operators only. Chat accounts cannot sign in here.</p>
        <label>Username<input name="username" autocomplete="username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} required /></label>
        <label>Password<input name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required /></label>
        {needTotp && (
          <label>Authenticator code<input name="totp" inputMode="numeric" autocomplete="one-time-code" value={totp} onInput={(e) => setTotp(e.currentTarget.value)} /></label>
        )}
        <Err text={error} />
        <button type="submit">Sign in</button>
      </form>
    </div>
  );
}
