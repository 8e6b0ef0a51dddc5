/**
 * Tool description pinning (THREATS ASI04, the "rug pull"): the first time the gateway sees an
 * upstream tool, its description and input schema are pinned by hash; when a later list shows
 * them changed, the tool is blocked (hidden and refused) until an operator approves what it
 * says now, and a high-severity signal goes into the audit chain.
 */
import { canonicalJson, MandateError, type AuditAppender, type Clock, type ControlStore, type Hasher, type JsonObject, type JsonValue } from '@mandate/core';

const PREFIX = 'mcp.pin.';
const INDEX = 'mcp.pin-index';

export type PinStatus = 'approved' | 'blocked';

export interface Pin {
  readonly server: string;
  readonly tool: string;
  /** the approved hash of description + input schema */
  readonly hash: string;
  readonly status: PinStatus;
  /** what the upstream shows now, while blocked */
  readonly pendingHash: string | undefined;
  readonly pinnedAt: number;
  readonly changedAt: number | undefined;
}

export interface PinAlert {
  readonly detector: 'tool_pinning';
  readonly severity: 'high';
  readonly server: string;
  readonly tool: string;
  readonly oldHash: string;
  readonly newHash: string;
  readonly taskId: string | undefined;
}

export interface PinLog {
  warn(obj: object, msg: string): void;
}

export interface PinRegistryDeps {
  readonly controls: ControlStore;
  readonly hasher: Hasher;
  readonly audit: AuditAppender;
  readonly clock: Clock;
  readonly log: PinLog;
  readonly onAlert?: ((alert: PinAlert) => void) | undefined;
}

/** What a tool's pin covers: the words the model reads and the shape of its arguments. */
export function toolHash(hasher: Hasher, tool: { description?: string | undefined; inputSchema?: unknown }): string {
  return 'sha256:' + hasher.sha256Hex(canonicalJson({ description: tool.description ?? null, input_schema: (tool.inputSchema ?? null) as JsonValue }));
}

function toPin(v: JsonObject): Pin {
  return {
    server: String(v['server']),
    tool: String(v['tool']),
    hash: String(v['hash']),
    status: v['status'] === 'approved' ? 'approved' : 'blocked',
    pendingHash: typeof v['pending_hash'] === 'string' ? v['pending_hash'] : undefined,
    pinnedAt: typeof v['pinned_at'] === 'number' ? v['pinned_at'] : 0,
    changedAt: typeof v['changed_at'] === 'number' ? v['changed_at'] : undefined,
  };
}

function fromPin(p: Pin): JsonObject {
  return {
    server: p.server,
    tool: p.tool,
    hash: p.hash,
    status: p.status,
    ...(p.pendingHash !== undefined ? { pending_hash: p.pendingHash } : {}),
    pinned_at: p.pinnedAt,
    ...(p.changedAt !== undefined ? { changed_at: p.changedAt } : {}),
  };
}

export class PinRegistry {
  private readonly d: PinRegistryDeps;
  /** read-modify-write of a pin and the index, one at a time in this process */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(deps: PinRegistryDeps) {
    this.d = deps;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private key(server: string, tool: string): string {
    return `${PREFIX}${server}.${tool}`;
  }

  async get(server: string, tool: string): Promise<Pin | undefined> {
    const v = await this.d.controls.getControl(this.key(server, tool));
    return v ? toPin(v) : undefined;
  }

  /**
   * Checks what an upstream shows for one tool against its pin: pins it when new, blocks it
   * (and raises the alert) when changed. Returns whether the tool, as shown, may be used.
   */
  check(server: string, tool: string, hash: string, taskId?: string): Promise<boolean> {
    return this.serial(async () => {
      const now = this.d.clock.now();
      const pin = await this.get(server, tool);
      if (!pin) {
        await this.d.controls.setControl(this.key(server, tool), fromPin({ server, tool, hash, status: 'approved', pendingHash: undefined, pinnedAt: now, changedAt: undefined }), now);
        await this.addToIndex(server, tool, now);
        return true;
      }
      // a blocked tool stays blocked even if it changes back: it has shown it can change
      if (pin.hash === hash) return pin.status === 'approved';
      if (pin.status === 'blocked' && pin.pendingHash === hash) return false;
      // changed (again): block, remember what it shows now, and say so
      await this.d.controls.setControl(this.key(server, tool), fromPin({ ...pin, status: 'blocked', pendingHash: hash, changedAt: now }), now);
      const alert: PinAlert = { detector: 'tool_pinning', severity: 'high', server, tool, oldHash: pin.hash, newHash: hash, taskId };
      await this.d.audit.append([
        {
          kind: 'signal',
          ts: now,
          ...(taskId !== undefined ? { taskId } : {}),
          data: { detector: 'tool_pinning', severity: 'high', server, tool, old_hash: pin.hash, new_hash: hash, effect: 'tool blocked until an operator approves it' },
        },
      ]);
      this.d.log.warn({ server, tool, oldHash: pin.hash, newHash: hash }, 'an upstream tool changed its description or input schema: blocked until an operator approves it');
      try {
        this.d.onAlert?.(alert);
      } catch (e) {
        this.d.log.warn({ err: e }, 'the pin alert hook failed');
      }
      return false;
    });
  }

  /** An operator accepts what the tool shows now: its pending hash becomes the pin. */
  approve(server: string, tool: string, by: string): Promise<Pin> {
    return this.serial(async () => {
      const now = this.d.clock.now();
      const pin = await this.get(server, tool);
      if (!pin) throw new MandateError('NOT_FOUND', `no pin for ${server}/${tool}`);
      if (pin.status === 'approved') throw new MandateError('CONFLICT', `${server}/${tool} is not blocked`);
      const next: Pin = { ...pin, hash: pin.pendingHash ?? pin.hash, status: 'approved', pendingHash: undefined, changedAt: now };
      await this.d.controls.setControl(this.key(server, tool), fromPin(next), now);
      await this.d.audit.append([{ kind: 'signal', ts: now, data: { detector: 'tool_pinning', severity: 'info', server, tool, old_hash: pin.hash, new_hash: next.hash, effect: 'approved by an operator', by } }]);
      return next;
    });
  }

  async list(): Promise<Pin[]> {
    const idx = await this.d.controls.getControl(INDEX);
    const keys = Array.isArray(idx?.['keys']) ? (idx['keys'] as JsonValue[]).filter((k): k is string => typeof k === 'string') : [];
    const out: Pin[] = [];
    for (const k of keys) {
      const v = await this.d.controls.getControl(k);
      if (v) out.push(toPin(v));
    }
    return out;
  }

  private async addToIndex(server: string, tool: string, now: number): Promise<void> {
    const idx = await this.d.controls.getControl(INDEX);
    const keys = Array.isArray(idx?.['keys']) ? (idx['keys'] as JsonValue[]).filter((k): k is string => typeof k === 'string') : [];
    const k = this.key(server, tool);
    if (keys.includes(k)) return;
    keys.push(k);
    await this.d.controls.setControl(INDEX, { keys }, now);
  }
}
