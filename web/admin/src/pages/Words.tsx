import { useState } from "preact/hooks";
import { call, can, when } from "../api";
import { Card, Err, Note, useAction, useLoad } from "../ui";

type Word = { id: number; word: string; category: string; action: string; created_by: number; created_at: number };

const actions: { value: string; label: string }[] = [
  { value: "block", label: "block (refuse the text)" },
  { value: "mask", label: "mask (replace with *)" },
  { value: "review", label: "review (let through, queue it)" },
];

// Words is the sensitive-word list (admin.words.*): a page by id, searchable,
// with add and remove for operators.
export function Words() {
  const [q, setQ] = useState("");
  const [after, setAfter] = useState<number[]>([0]);
  const cur = after[after.length - 1];
  const list = useLoad(() => call<{ words: Word[]; total: number; has_more: boolean }>("GET", "/words", { q, after: cur || undefined, limit: 50 }), [q, cur]);
  const act = useAction();
  const empty = { word: "", category: "", action: "mask" };
  const [f, setF] = useState(empty);
  const set = (k: keyof typeof empty) => (e: Event) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value });
  const add = (e: Event) => {
    e.preventDefault();
    act.run(`Add "${f.word}"`, () => call("POST", "/words", { words: [{ word: f.word, category: f.category || undefined, action: f.action }] }))
      .then(() => { setF({ ...empty, action: f.action, category: f.category }); list.reload(); });
  };
  return (
    <div>
      {can("operator") && (
        <Card title="Add a word">
          <Note text={act.note} />
          <Err text={act.error} />
          <form class="filters" onSubmit={add}>
            <label>Word<input name="word" value={f.word} onInput={set("word")} maxLength={64} required /></label>
            <label>Category<input name="category" placeholder="spam, abuse, …" value={f.category} onInput={set("category")} maxLength={32} /></label>
            <label>Action<select name="action" value={f.action} onChange={set("action")}>{actions.map((a) => <option key={a.value} value={a.value}>{a.label}</option>)}</select></label>
            <button type="submit">Add word</button>
          </form>
          <p class="muted small">Words match anywhere in messages, captions, nicknames, group names and announcements, ignoring case and full-width forms. Adding a word already listed changes its category and action. Workers pick up a change within moments.</p>
        </Card>
      )}
      <Card title={list.data ? `Words (${list.data.total})` : "Words"}>
        <div class="toolbar">
          <input placeholder="Search words" name="q" value={q} onInput={(e) => { setQ(e.currentTarget.value); setAfter([0]); }} />
        </div>
        <Err text={list.error} />
        <table>
          <thead><tr><th>ID</th><th>Word</th><th>Category</th><th>Action</th><th>Added by</th><th>Added</th><th></th></tr></thead>
          <tbody>
            {list.data?.words.map((w) => (
              <tr key={w.id} data-word={w.word}>
                <td>{w.id}</td>
                <td><code>{w.word}</code></td>
                <td>{w.category}</td>
                <td><span class={"tag " + (w.action === "block" ? "bad" : w.action === "review" ? "" : "ok")}>{w.action}</span></td>
                <td>{w.created_by ? `operator ${w.created_by}` : "—"}</td>
                <td>{when(w.created_at)}</td>
                <td>{can("operator") && <button class="link" name="remove" onClick={() => act.run(`Remove "${w.word}"`, () => call("DELETE", `/words/${w.id}`), `Remove "${w.word}" from the list?`).then(list.reload)}>Remove</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {list.data && list.data.words.length === 0 && <p class="muted">{q ? "No words match." : "The list is empty."}</p>}
        <div class="pager">
          <button disabled={after.length < 2} onClick={() => setAfter(after.slice(0, -1))}>Previous</button>
          <button disabled={!list.data?.has_more} onClick={() => list.data && setAfter([...after, list.data.words[list.data.words.length - 1].id])}>Next</button>
        </div>
      </Card>
    </div>
  );
}
