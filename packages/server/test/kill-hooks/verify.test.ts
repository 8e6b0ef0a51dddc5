/**
 * A receiver can tell a genuine kill hook delivery from a forged, altered, stale or replayed one:
 * the server's own signer (killHookRequest) against the SDK's verifyKillHook.
 */
import { describe, expect, it } from 'vitest';
import type { SequencedKillEvent } from '@mandate/core';
import { MemorySeenDeliveries, verifyKillHook } from '@mandate/sdk';
import { killHookRequest } from '../../src/kill-hooks/hooks.ts';
import { HOOK_SECRET } from './fixture.ts';

const NOW = Date.UTC(2026, 11, 6, 0, 0, 0);
const KILL: SequencedKillEvent = {
  seq: 7,
  event: { id: 'kill_01', ts: NOW - 1_000, kind: 'task', data: { target: { task: 'task_1' }, reason: 'runaway', by: 'op-1', disabled_agent: null, killed_tasks: ['task_1', 'task_2'], emergency_stop: false, audit_seq: 42 } },
};

function delivery(over: { secret?: string; attempt?: number; at?: number; event?: SequencedKillEvent } = {}) {
  return killHookRequest('ci', over.secret ?? HOOK_SECRET, over.event ?? KILL, over.attempt ?? 1, over.at ?? NOW);
}

function verify(req: { body: string; headers: Record<string, string> }, seen = new MemorySeenDeliveries(), now = NOW) {
  return verifyKillHook({ secret: HOOK_SECRET, headers: req.headers, body: req.body, seen, now: () => now });
}

describe('verifyKillHook', () => {
  it('accepts a genuine delivery and hands back the kill', async () => {
    const v = await verify(delivery());
    expect(v).toMatchObject({ ok: true, deliveryId: 'kill_01.ci', event: { type: 'kill', delivery: { id: 'kill_01.ci', hook: 'ci', attempt: 1 }, kill: { id: 'kill_01', kind: 'task', killed_tasks: ['task_1', 'task_2'] } } });
    // fetch's Headers and raw bytes work the same
    const req = delivery();
    expect(await verifyKillHook({ secret: HOOK_SECRET, headers: new Headers(req.headers), body: new TextEncoder().encode(req.body), seen: new MemorySeenDeliveries(), now: () => NOW })).toMatchObject({ ok: true });
    // header names in any case, as some frameworks hand them over
    const upper = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toUpperCase(), v]));
    expect(await verify({ ...req, headers: upper })).toMatchObject({ ok: true });
  });

  it('signs and verifies the body as UTF-8 bytes: a reason outside ASCII verifies', async () => {
    const event: SequencedKillEvent = { seq: 8, event: { ...KILL.event, id: 'kill_02', data: { ...KILL.event.data, reason: 'arrêt d’urgence ⚠ 停止' } } };
    expect(await verify(delivery({ event }))).toMatchObject({ ok: true, event: { kill: { reason: 'arrêt d’urgence ⚠ 停止' } } });
  });

  it('detects a forged delivery: another key, an altered body, a swapped delivery id or timestamp', async () => {
    const forged = delivery({ secret: 'not-the-hook-secret-at-all' });
    expect(await verify(forged)).toMatchObject({ ok: false, code: 'KILL_HOOK_BAD_SIGNATURE' });
    const real = delivery();
    const altered = { ...real, body: real.body.replace('task_2', 'task_3') };
    expect(await verify(altered)).toMatchObject({ ok: false, code: 'KILL_HOOK_BAD_SIGNATURE' });
    const otherId = { ...real, headers: { ...real.headers, 'x-mandate-delivery': 'kill_02.ci' } };
    expect(await verify(otherId)).toMatchObject({ ok: false, code: 'KILL_HOOK_BAD_SIGNATURE' });
    const retimed = { ...real, headers: { ...real.headers, 'x-mandate-timestamp': String(NOW / 1000 + 1) } };
    expect(await verify(retimed)).toMatchObject({ ok: false, code: 'KILL_HOOK_BAD_SIGNATURE' });
  });

  it('detects a replay: the same delivery again, or a captured one outside the time window', async () => {
    const seen = new MemorySeenDeliveries();
    const req = delivery();
    expect(await verify(req, seen)).toMatchObject({ ok: true });
    expect(await verify(req, seen)).toMatchObject({ ok: false, code: 'KILL_HOOK_REPLAYED', deliveryId: 'kill_01.ci' });
    // Mandate's own retry (a new attempt, signed later) is the same delivery: deduped
    expect(await verify(delivery({ attempt: 2, at: NOW + 30_000 }), seen, NOW + 30_000)).toMatchObject({ ok: false, code: 'KILL_HOOK_REPLAYED' });
    // a captured delivery replayed to a receiver that has forgotten it is refused for its age
    expect(await verify(req, new MemorySeenDeliveries(), NOW + 301_000)).toMatchObject({ ok: false, code: 'KILL_HOOK_STALE' });
    expect(await verify(req, new MemorySeenDeliveries(), NOW - 301_000)).toMatchObject({ ok: false, code: 'KILL_HOOK_STALE' });
    expect(await verify(req, new MemorySeenDeliveries(), NOW + 299_000)).toMatchObject({ ok: true });
  });

  it('remembers a delivery id only once its signature is good, so a forgery cannot block the genuine delivery', async () => {
    const seen = new MemorySeenDeliveries();
    expect(await verify(delivery({ secret: 'not-the-hook-secret-at-all' }), seen)).toMatchObject({ code: 'KILL_HOOK_BAD_SIGNATURE' });
    expect(seen.size).toBe(0);
    expect(await verify(delivery(), seen)).toMatchObject({ ok: true });
  });

  it('refuses malformed headers and bodies with their own code', async () => {
    const req = delivery();
    const without = (name: string) => ({ ...req, headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== name)) });
    for (const name of ['x-mandate-delivery', 'x-mandate-timestamp', 'x-mandate-signature']) expect(await verify(without(name))).toMatchObject({ ok: false, code: 'KILL_HOOK_MALFORMED' });
    expect(await verify({ ...req, headers: { ...req.headers, 'x-mandate-signature': 'sha1=abc' } })).toMatchObject({ code: 'KILL_HOOK_MALFORMED' });
    expect(await verify({ ...req, headers: { ...req.headers, 'x-mandate-timestamp': '1.5' } })).toMatchObject({ code: 'KILL_HOOK_MALFORMED' });
    await expect(verifyKillHook({ secret: 'short', headers: req.headers, body: req.body, seen: new MemorySeenDeliveries() })).rejects.toThrow(TypeError);
  });

  it('forgets ids after their time to live, and the oldest first past its bound', () => {
    const seen = new MemorySeenDeliveries({ ttlMs: 1_000, max: 2 });
    expect(seen.remember('a', 0)).toBe(true);
    expect(seen.remember('a', 500)).toBe(false);
    expect(seen.remember('b', 600)).toBe(true);
    expect(seen.remember('c', 700)).toBe(true); // past max: 'a' is forgotten
    expect(seen.size).toBe(2);
    expect(seen.remember('b', 1_500)).toBe(false);
    expect(seen.remember('b', 1_700)).toBe(true); // expired at 1 600
  });
});
