import { describe, expect, it } from 'vitest';
import { KeyRing, MandateError, TaskTokens, type KeyStore, type SigningKey } from '../src/index.ts';
import { FrozenClock, SequentialIds, hasher } from './helpers.ts';

class MemoryKeys implements KeyStore {
  private readonly keys: SigningKey[] = [];
  listKeys(purpose: SigningKey['purpose']): Promise<SigningKey[]> {
    return Promise.resolve(this.keys.filter((k) => k.purpose === purpose));
  }
  addKey(key: SigningKey): Promise<void> {
    this.keys.push(key);
    return Promise.resolve();
  }
  retireKey(kid: string, at: number): Promise<void> {
    const i = this.keys.findIndex((k) => k.kid === kid);
    const k = this.keys[i];
    if (k) this.keys[i] = { ...k, status: 'retired', retiredAt: at };
    return Promise.resolve();
  }
}

async function setup(cacheSize = 1000) {
  const clock = new FrozenClock();
  const ids = new SequentialIds();
  const ring = await KeyRing.open(new MemoryKeys(), 'task-token', clock, ids, 3_600_000);
  const hashed: string[] = [];
  const tokens = new TaskTokens(ring, { issuer: 'mandate', audience: 'mandate', clock, ids, cacheSize, hasher: { sha256Hex: (s) => (hashed.push(s), hasher.sha256Hex(s)) } });
  const mint = (taskId: string, ttlMs: number) => tokens.mint({ agentId: 'spiffe://t.local/a', taskId, mandateHash: 'sha256:' + '0'.repeat(64), txn: 'txn_1', expiresAt: clock.now() + ttlMs });
  return { clock, tokens, mint, hashed };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof MandateError ? e.code : String(e);
  }
}

describe('the verified task token cache', () => {
  it('serves a token verified before from the cache, and nothing that differs from it by a byte', async () => {
    const { tokens, mint } = await setup();
    const { token, claims } = await mint('task_1', 300_000);
    expect(await tokens.verify(token)).toEqual(claims);
    expect(tokens.cached).toBe(1);
    expect((await tokens.verify(token)).task_id).toBe('task_1');
    // the same signature under another payload, and a changed signature: each is verified, and refused
    const [h, p, s] = token.split('.') as [string, string, string];
    const other = (await mint('task_2', 300_000)).token.split('.')[1] as string;
    expect(await code(tokens.verify(`${h}.${other}.${s}`))).toBe('TOKEN_SIGNATURE_INVALID');
    const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
    expect(await code(tokens.verify(`${h}.${p}.${flipped}`))).toBe('TOKEN_SIGNATURE_INVALID');
    expect(tokens.cached).toBe(1);
  });

  it('keys the cache by the SHA-256 of the token, so the text of a token is not kept', async () => {
    const { tokens, mint, hashed } = await setup();
    const { token } = await mint('task_1', 300_000);
    await tokens.verify(token);
    await tokens.verify(token);
    expect(hashed).toEqual([token, token]);
  });

  it('still refuses a cached token once it has expired', async () => {
    const { clock, tokens, mint } = await setup();
    const { token } = await mint('task_1', 60_000);
    await tokens.verify(token);
    clock.advance(60_000);
    expect(await code(tokens.verify(token))).toBe('TOKEN_EXPIRED');
    expect(tokens.cached).toBe(0);
  });

  it('forgets expired tokens as new ones are verified (at most a minute late), before the cache is full', async () => {
    const { clock, tokens, mint } = await setup();
    // renewed tasks: each old token is never looked up again
    for (let i = 0; i < 10; i++) await tokens.verify((await mint(`task_${i}`, 60_000)).token);
    expect(tokens.cached).toBe(10);
    clock.advance(61_000);
    for (let i = 0; i < 10; i++) await tokens.verify((await mint(`task_${i}`, 60_000)).token);
    expect(tokens.cached).toBe(10);
  });

  it('forgets a token it is told to (a renewed one), and verifies it again if it comes back', async () => {
    const { tokens, mint } = await setup();
    const { token } = await mint('task_1', 300_000);
    const other = (await mint('task_2', 300_000)).token;
    await tokens.verify(token);
    await tokens.verify(other);
    expect(tokens.cached).toBe(2);
    tokens.forget(token);
    expect(tokens.cached).toBe(1);
    // the signature is checked again: a forged token with the same claims is still refused
    const [h, p] = token.split('.') as [string, string, string];
    expect(await code(tokens.verify(`${h}.${p}.${'A'.repeat(86)}`))).toBe('TOKEN_SIGNATURE_INVALID');
    expect((await tokens.verify(token)).task_id).toBe('task_1');
    expect(tokens.cached).toBe(2);
  });

  it('keeps at most its size, dropping the oldest when none has expired', async () => {
    const { tokens, mint } = await setup(100);
    const first = await mint('task_0', 300_000);
    await tokens.verify(first.token);
    for (let i = 1; i < 150; i++) await tokens.verify((await mint(`task_${i}`, 300_000)).token);
    expect(tokens.cached).toBeLessThanOrEqual(100);
    // forgotten is not refused: verified again from its signature
    expect((await tokens.verify(first.token)).task_id).toBe('task_0');
  });
});
