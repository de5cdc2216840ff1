import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { call, clearSession, session, whenLoggedOut, can } from "./api";
import { pages } from "./nav";
import { Login } from "./pages/Login";
import "./style.css";

// route is the page and its parameter from the URL's hash: #/users/42.
function route(): { path: string; param?: string } {
  const [path, param] = location.hash.replace(/^#\/?/, "").split("/");
  return { path: path || "dashboard", param };
}

function App() {
  const [r, setR] = useState(route());
  const [s, setS] = useState(session());
  useEffect(() => {
    const on = () => setR(route());
    addEventListener("hashchange", on);
    whenLoggedOut(() => setS(null));
    return () => removeEventListener("hashchange", on);
  }, []);
  if (!s) return <Login onLogin={() => setS(session())} />;
  const page = pages.find((p) => p.path === r.path) || pages[0];
  const logout = async () => {
    try {
      await call("POST", "/logout", {});
    } catch {
      /* the session may have ended already */
    }
    clearSession();
    setS(null);
  };
  const Page = page.component;
  return (
    <div class="shell">
      <nav class="side">
        <div class="brand">natter<span>back office</span></div>
        {pages.filter((p) => can(p.role)).map((p) => (
          <a href={"#/" + p.path} class={p === page ? "active" : ""} data-nav={p.path}>{p.title}</a>
        ))}
        <div class="who">
          <div>{s.operator.username}</div>
          <div class="role">{s.operator.role}</div>
          <button class="link" onClick={logout}>Log out</button>
        </div>
      </nav>
      <main>
        <h1>{page.title}</h1>
        <Page param={r.param} key={page.path + (r.param || "")} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
