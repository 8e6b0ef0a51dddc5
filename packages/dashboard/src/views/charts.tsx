import { useEffect, useState } from 'preact/hooks';
import type { AuditRecord, Decision } from '../api.ts';
import type { Shared } from '../main.tsx';
import { ErrorNote, errorText } from '../ui.tsx';

const EFFECTS = ['allow', 'approval_required', 'deny'] as const;
type Effect = (typeof EFFECTS)[number];
const BUCKETS = 24;

interface Point {
  callId: string | null;
  ts: number;
  effect: Effect;
  tool: string;
  latency: number | undefined;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

function fromRecord(r: AuditRecord): Point | undefined {
  const effect = r.data['effect'];
  if (r.kind !== 'decision' || !EFFECTS.includes(effect as Effect)) return undefined;
  return { callId: r.call_id, ts: Date.parse(r.ts), effect: effect as Effect, tool: String(r.data['tool']), latency: undefined };
}

function OverTime({ points }: { points: readonly Point[] }) {
  const W = 640;
  const H = 200;
  const pad = 28;
  if (points.length === 0) return <p class="muted">No decisions yet.</p>;
  const min = Math.min(...points.map((p) => p.ts));
  const max = Math.max(...points.map((p) => p.ts), min + 60_000);
  const step = (max - min) / BUCKETS;
  const buckets = Array.from({ length: BUCKETS }, (_, i) => ({ start: min + i * step, allow: 0, approval_required: 0, deny: 0 }));
  for (const p of points) {
    const b = buckets[Math.min(BUCKETS - 1, Math.floor((p.ts - min) / step))];
    if (b) b[p.effect] += 1;
  }
  const top = Math.max(1, ...buckets.map((b) => b.allow + b.approval_required + b.deny));
  const bw = (W - pad * 2) / BUCKETS;
  const label = (ms: number) => new Date(ms).toLocaleTimeString(undefined, { hour12: false, hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return (
    <figure>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby="ot-title" class="chart">
        <title id="ot-title">Decisions over time, stacked by outcome, {points.length} decisions</title>
        <line x1={pad} y1={H - pad} x2={W - pad} y2={H - pad} class="axis" />
        <text x={pad} y={14} class="tick">
          {top}
        </text>
        {buckets.map((b, i) => {
          let y = H - pad;
          return EFFECTS.map((e) => {
            const h = (b[e] / top) * (H - pad * 2);
            y -= h;
            return h > 0 ? <rect key={`${i}${e}`} x={pad + i * bw + 1} y={y} width={bw - 2} height={h} class={`fill-${e}`} /> : null;
          });
        })}
        <text x={pad} y={H - 8} class="tick">
          {label(min)}
        </text>
        <text x={W - pad} y={H - 8} class="tick" text-anchor="end">
          {label(max)}
        </text>
      </svg>
      <figcaption>
        <span class="key fill-allow-key">allow</span> <span class="key fill-approval_required-key">needs approval</span> <span class="key fill-deny-key">deny</span>
      </figcaption>
    </figure>
  );
}

function Bars({ title, rows, unit }: { title: string; rows: readonly [string, number][]; unit: string }) {
  const W = 640;
  const rowH = 24;
  const H = Math.max(rowH, rows.length * rowH) + 8;
  const top = Math.max(1, ...rows.map((r) => r[1]));
  const id = title.replace(/\W+/g, '-').toLowerCase();
  if (rows.length === 0) return <p class="muted">Nothing yet.</p>;
  return (
    <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={`${id}-t`} class="chart">
      <title id={`${id}-t`}>
        {title}: {rows.map(([k, v]) => `${k} ${v}${unit}`).join(', ')}
      </title>
      {rows.map(([k, v], i) => (
        <g key={k}>
          <text x={0} y={i * rowH + 16} class="tick">
            {k}
          </text>
          <rect x={220} y={i * rowH + 4} width={((W - 300) * v) / top} height={rowH - 8} class="fill-bar" />
          <text x={228 + ((W - 300) * v) / top} y={i * rowH + 16} class="tick">
            {unit === ' ms' ? v.toFixed(2) : v}
            {unit}
          </text>
        </g>
      ))}
    </svg>
  );
}

export function ChartsView({ shared }: { shared: Shared }) {
  const [history, setHistory] = useState<Point[]>([]);
  const [error, setError] = useState<string>();

  useEffect(() => {
    shared.api.get<{ records: AuditRecord[] }>('/v1/audit?tail=true&limit=5000').then(
      (r) => {
        setHistory(r.records.map(fromRecord).filter((p): p is Point => p !== undefined));
        setError(undefined);
      },
      (e: unknown) => setError(errorText(e)),
    );
  }, [shared.api, shared.version]);

  const live: Point[] = shared.decisions.filter((d: Decision) => EFFECTS.includes(d.effect)).map((d) => ({ callId: d.call_id, ts: Date.parse(d.ts), effect: d.effect, tool: d.tool ?? '?', latency: d.latency_ms }));
  // the audit log has every committed decision; the stream adds latency and unauthenticated denies
  const seen = new Set(history.map((p) => p.callId));
  const points = [...history, ...live.filter((p) => !seen.has(p.callId))];
  const denied = new Map<string, number>();
  for (const p of points) if (p.effect === 'deny') denied.set(p.tool, (denied.get(p.tool) ?? 0) + 1);
  const topDenied = [...denied.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
  const lat = live.map((p) => p.latency).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  const pct: [string, number][] = lat.length === 0 ? [] : [['p50', percentile(lat, 50)], ['p90', percentile(lat, 90)], ['p99', percentile(lat, 99)], ['max', lat.at(-1) ?? 0]];

  return (
    <>
      <ErrorNote error={error} />
      <section aria-labelledby="ot-h">
        <h2 id="ot-h">Decisions over time by outcome</h2>
        <OverTime points={points} />
      </section>
      <section aria-labelledby="td-h">
        <h2 id="td-h">Top denied tools</h2>
        <Bars title="Denials by tool" rows={topDenied} unit="" />
      </section>
      <section aria-labelledby="lat-h">
        <h2 id="lat-h">Decision latency percentiles</h2>
        <p class="muted small">From the {lat.length} decision(s) streamed since sign-in (latency is not kept in the audit log).</p>
        <Bars title="Latency percentiles" rows={pct} unit=" ms" />
      </section>
    </>
  );
}
