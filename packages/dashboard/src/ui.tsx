import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { ApiError } from './api.ts';

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/**
 * A moment as the operator reads it: date, time and the browser's zone (`2026-12-06 05:21:03
 * GMT+1`), so a record from yesterday or from another office is never mistaken for today's.
 */
export function time(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const zone = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zone}`.trimEnd();
}

/** A `<time>` element: the local date with its zone, the UTC instant on hover. */
export function When({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <>—</>;
  return (
    <time dateTime={iso} title={iso}>
      {time(iso)}
    </time>
  );
}

/**
 * Ids shown whole, their middle elided: time-ordered ids share a long prefix, so a cut at the
 * front makes every row look alike. Kept for text that is not an id's own cell.
 */
export function short(id: string | null | undefined, n = 14): string {
  if (!id) return '—';
  if (id.length <= n) return id;
  const tail = Math.max(4, Math.floor(n / 2));
  return `${id.slice(0, n - tail)}…${id.slice(-tail)}`;
}

/**
 * An id in a table: the elided form to read, the full id on hover (`title`) and in the copy
 * button, which puts the whole id on the clipboard.
 */
export function Id({ id, n = 14, href }: { id: string | null | undefined; n?: number; href?: string }) {
  const [copied, setCopied] = useState(false);
  if (!id) return <>—</>;
  const text = short(id, n);
  const copy = () => {
    void navigator.clipboard.writeText(id).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  };
  return (
    <span class="id" data-id={id}>
      {href === undefined ? <code title={id}>{text}</code> : <a href={href} title={id}><code>{text}</code></a>}
      <button type="button" class="copy" aria-label={`Copy ${id}`} title="Copy the full id" onClick={copy}>
        {copied ? '✓' : '⧉'}
      </button>
    </span>
  );
}

/** The last path segment of a SPIFFE ID: what an operator recognises an agent by. */
export function agentName(id: string | null | undefined): string {
  if (!id) return '—';
  return id.split('/').filter(Boolean).at(-1) ?? id;
}

export function EffectBadge({ effect }: { effect: string }) {
  const label = effect === 'approval_required' ? 'needs approval' : effect;
  return <span class={`badge effect-${effect}`}>{label}</span>;
}

export function ErrorNote({ error }: { error: string | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

export interface ConfirmRequest {
  readonly title: string;
  readonly body: ComponentChildren;
  readonly confirmLabel: string;
  /** ask for a reason (kills and approvals record one) */
  readonly reason?: boolean;
  /** the longest reason the server takes (default 1000) */
  readonly reasonMax?: number;
  readonly onConfirm: (reason: string) => Promise<void> | void;
}

/**
 * A modal confirmation on the native <dialog>: focus moves into it and is trapped there, Escape
 * cancels, and focus returns to the control that opened it.
 */
export function ConfirmDialog({ request, onClose }: { request: ConfirmRequest | undefined; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const opener = useRef<Element | null>(null);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (request && !d.open) {
      opener.current = document.activeElement;
      setReason('');
      setError(undefined);
      d.showModal();
    } else if (!request && d.open) {
      d.close();
    }
  }, [request]);

  const close = () => {
    onClose();
    const el = opener.current;
    if (el instanceof HTMLElement) el.focus();
  };

  const confirm = async (e: Event) => {
    e.preventDefault();
    if (!request) return;
    if (request.reason && reason.trim() === '') {
      setError('A reason is required.');
      return;
    }
    setBusy(true);
    try {
      await request.onConfirm(reason.trim());
      close();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} aria-labelledby="confirm-title" aria-describedby="confirm-body" onCancel={(e) => { e.preventDefault(); close(); }}>
      {request && (
        <form method="dialog" onSubmit={confirm}>
          <h2 id="confirm-title">{request.title}</h2>
          <div id="confirm-body">{request.body}</div>
          {request.reason && (
            <label class="field">
              Reason
              <input name="reason" value={reason} maxLength={request.reasonMax ?? 1000} required onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
            </label>
          )}
          <ErrorNote error={error} />
          <div class="actions">
            <button type="button" autofocus onClick={close} disabled={busy}>
              Cancel
            </button>
            <button type="submit" class="danger" disabled={busy}>
              {request.confirmLabel}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}

export function Json({ value }: { value: unknown }) {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}
