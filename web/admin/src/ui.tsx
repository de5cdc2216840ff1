// Small pieces the pages share.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError } from "./api";

// useLoad runs load now and on reload(), keeping its result, error and state.
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string>("");
  const [busy, setBusy] = useState(true);
  const reload = useCallback(() => {
    setBusy(true);
    load()
      .then((d) => {
        setData(d);
        setError("");
      })
      .catch((e: unknown) => setError(message(e)))
      .finally(() => setBusy(false));
  }, deps);
  useEffect(reload, [reload]);
  return { data, error, busy, reload };
}

export function message(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (${e.code})`;
  return e instanceof Error ? e.message : String(e);
}

export function Err({ text }: { text: string }) {
  return text ? <div class="error" role="alert">{text}</div> : null;
}

export function Note({ text }: { text: string }) {
  return text ? <div class="note" role="status">{text}</div> : null;
}

export function Card({ title, children }: { title?: string; children: ComponentChildren }) {
  return (
    <section class="card">
      {title && <h2>{title}</h2>}
      {children}
    </section>
  );
}

// Action runs fn on a click after an optional confirmation and reports its outcome.
export function useAction() {
  const [note, setNote] = useState("");
  const [error, setError] = useState("");
  const run = async (label: string, fn: () => Promise<unknown>, confirmText?: string) => {
    if (confirmText && !confirm(confirmText)) return;
    setNote("");
    setError("");
    try {
      await fn();
      setNote(label + ": done");
    } catch (e) {
      setError(label + ": " + message(e));
    }
  };
  return { note, error, run };
}
