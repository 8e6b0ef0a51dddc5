import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { accessTokenHash, createProof, DpopNonces, DpopVerifier, jwkThumbprint, MemoryReplayCache, normaliseHtu, signTaskState, verifyTaskState, type ProofKey } from '../src/index.ts';
import { FrozenClock, hasher } from './helpers.ts';

const HTU = 'https://mandate.example/v1/authorize';
const TOKEN = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln';

async function key(alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<ProofKey & { jkt: string }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, alg, jkt: await jwkThumbprint(publicJwk) };
}

let n = 0;
const clock = new FrozenClock();
const proof = (k: ProofKey, over: Partial<{ method: string; htu: string; accessToken: string; now: number; jti: string; nonce: string }> = {}) =>
  createProof({ key: k, method: 'POST', htu: HTU, accessToken: TOKEN, now: clock.now(), jti: `jti-${++n}`, hasher, ...over });

function verifier(opts: { nonces?: DpopNonces; replay?: MemoryReplayCache } = {}) {
  return new DpopVerifier({ hasher, replay: opts.replay ?? new MemoryReplayCache(1000), iatWindowMs: 60_000, nonces: opts.nonces });
}

const check = (v: DpopVerifier, p: string | undefined, over: Partial<{ method: string; htu: string; accessToken: string; expectedJkt: string }> = {}) =>
  v.verifyProof({ proof: p, method: 'POST', htu: HTU, accessToken: TOKEN, now: clock.now(), ...over });

let k: ProofKey & { jkt: string };
let other: ProofKey & { jkt: string };
beforeAll(async () => {
  k = await key();
  other = await key('ES256');
});

describe('DPoP proofs (RFC 9449)', () => {
  it('accepts a fresh proof for this method, URL and token, and reports its key thumbprint', async () => {
    const r = await check(verifier(), await proof(k), { expectedJkt: k.jkt });
    expect(r).toMatchObject({ ok: true, jkt: k.jkt });
    const es = await check(verifier(), await proof(other), { expectedJkt: other.jkt });
    expect(es).toMatchObject({ ok: true, jkt: other.jkt });
  });

  it('denies a missing proof with DPOP_PROOF_MISSING', async () => {
    expect(await check(verifier(), undefined)).toMatchObject({ ok: false, reason: 'DPOP_PROOF_MISSING' });
    expect(await check(verifier(), '')).toMatchObject({ ok: false, reason: 'DPOP_PROOF_MISSING' });
  });

  it('denies a proof made with another key than the token is bound to (a stolen token) with DPOP_KEY_MISMATCH', async () => {
    expect(await check(verifier(), await proof(other), { expectedJkt: k.jkt })).toMatchObject({ ok: false, reason: 'DPOP_KEY_MISMATCH' });
  });

  it('denies a replayed proof with DPOP_PROOF_REPLAYED, within the window and on another verifier call', async () => {
    const v = verifier();
    const p = await proof(k);
    expect((await check(v, p)).ok).toBe(true);
    expect(await check(v, p)).toMatchObject({ ok: false, reason: 'DPOP_PROOF_REPLAYED' });
    clock.advance(30_000);
    expect(await check(v, p)).toMatchObject({ ok: false, reason: 'DPOP_PROOF_REPLAYED' });
  });

  it('denies a proof for another URL or method with DPOP_WRONG_TARGET, and ignores query and fragment', async () => {
    const v = verifier();
    expect(await check(v, await proof(k, { htu: 'https://mandate.example/v1/tasks/t1/renew' }))).toMatchObject({ ok: false, reason: 'DPOP_WRONG_TARGET' });
    expect(await check(v, await proof(k, { htu: 'https://evil.example/v1/authorize' }))).toMatchObject({ ok: false, reason: 'DPOP_WRONG_TARGET' });
    expect(await check(v, await proof(k, { method: 'GET' }))).toMatchObject({ ok: false, reason: 'DPOP_WRONG_TARGET' });
    expect((await check(v, await proof(k, { htu: 'HTTPS://Mandate.Example/v1/authorize?x=1#frag' }))).ok).toBe(true);
    expect(normaliseHtu('ftp://mandate.example/x')).toBeUndefined();
  });

  it('denies a stale or future proof with DPOP_PROOF_STALE', async () => {
    const v = verifier();
    expect(await check(v, await proof(k, { now: clock.now() - 61_000 }))).toMatchObject({ ok: false, reason: 'DPOP_PROOF_STALE' });
    expect(await check(v, await proof(k, { now: clock.now() + 61_000 }))).toMatchObject({ ok: false, reason: 'DPOP_PROOF_STALE' });
    expect((await check(v, await proof(k, { now: clock.now() - 59_000 }))).ok).toBe(true);
  });

  it('denies a proof made for another token (ath) with DPOP_PROOF_INVALID', async () => {
    expect(await check(verifier(), await proof(k, { accessToken: TOKEN + 'x' }))).toMatchObject({ ok: false, reason: 'DPOP_PROOF_INVALID' });
    expect(accessTokenHash('abc', hasher)).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
  });

  it('denies proofs of the wrong type, a symmetric algorithm, a private key in the header, or a bad signature', async () => {
    const v = verifier();
    const pub = k.publicJwk;
    const claims = { jti: 'x1', htm: 'POST', htu: HTU, iat: Math.floor(clock.now() / 1000), ath: accessTokenHash(TOKEN, hasher) };
    const wrongTyp = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', jwk: pub }).sign(k.privateKey);
    expect(await check(v, wrongTyp)).toMatchObject({ ok: false, reason: 'DPOP_PROOF_INVALID' });
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: 'c2VjcmV0' } as JWK }).sign(new TextEncoder().encode('secret-secret-secret-secret-1234'));
    expect(await check(v, hs)).toMatchObject({ ok: false, reason: 'DPOP_PROOF_INVALID' });
    const priv = await exportJWK(k.privateKey);
    const leaked = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: priv }).sign(k.privateKey);
    expect(await check(v, leaked)).toMatchObject({ ok: false, reason: 'DPOP_PROOF_INVALID' });
    // signed by one key, naming another: the signature does not verify
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: other.publicJwk }).sign((await generateKeyPair('ES256')).privateKey);
    expect(await check(v, forged)).toMatchObject({ ok: false, reason: 'DPOP_PROOF_INVALID' });
    expect(await check(v, 'not.a.jwt')).toMatchObject({ ok: false, reason: 'DPOP_PROOF_INVALID' });
    expect(await check(v, 'a'.repeat(5000))).toMatchObject({ ok: false, reason: 'DPOP_PROOF_INVALID' });
  });

  it('requires a current server nonce when nonces are on (DPOP_NONCE_REQUIRED), accepting the previous period across a rotation', async () => {
    const nonces = new DpopNonces('a-shared-secret-of-some-length', 60_000, hasher);
    const v = verifier({ nonces });
    expect(await check(v, await proof(k))).toMatchObject({ ok: false, reason: 'DPOP_NONCE_REQUIRED' });
    expect(await check(v, await proof(k, { nonce: 'made-up' }))).toMatchObject({ ok: false, reason: 'DPOP_NONCE_REQUIRED' });
    const nonce = nonces.current(clock.now());
    expect((await check(v, await proof(k, { nonce }))).ok).toBe(true);
    clock.advance(60_000);
    expect(nonces.current(clock.now())).not.toBe(nonce);
    expect((await check(v, await proof(k, { nonce }))).ok).toBe(true);
    clock.advance(60_000);
    expect(await check(v, await proof(k, { nonce }))).toMatchObject({ ok: false, reason: 'DPOP_NONCE_REQUIRED' });
    // another node with the same secret issues and accepts the same nonces
    expect(new DpopNonces('a-shared-secret-of-some-length', 60_000, hasher).current(clock.now())).toBe(nonces.current(clock.now()));
  });

  it('derives each period\'s nonce once, and gives every period, earlier ones too, the same nonce as a fresh instance', () => {
    let hashed = 0;
    const counting = { sha256Hex: (s: string) => ((hashed += 1), hasher.sha256Hex(s)) };
    const nonces = new DpopNonces('a-shared-secret-of-some-length', 60_000, counting);
    const fresh = () => new DpopNonces('a-shared-secret-of-some-length', 60_000, hasher);
    const t = 1_700_000_000_000;
    const first = nonces.current(t);
    for (let i = 0; i < 100; i++) {
      expect(nonces.current(t + i)).toBe(first);
      expect(nonces.accepts(first, t + i)).toBe(true);
      expect(nonces.accepts('made-up', t + i)).toBe(false);
    }
    // the current period and the previous one (checked by a proof that carries neither)
    expect(hashed).toBe(2);
    for (const at of [t + 60_000, t, t - 60_000, t + 600_000, t + 660_000, t + 60_000]) {
      expect(nonces.current(at)).toBe(fresh().current(at));
      expect(nonces.accepts(fresh().current(at - 60_000), at)).toBe(true);
      expect(nonces.accepts(fresh().current(at - 120_000), at)).toBe(false);
    }
  });

  it('fails closed when the replay cache is full of live entries, and frees entries once they expire', async () => {
    const replay = new MemoryReplayCache(2);
    const v = verifier({ replay });
    expect((await check(v, await proof(k))).ok).toBe(true);
    expect((await check(v, await proof(k))).ok).toBe(true);
    expect(await check(v, await proof(k))).toMatchObject({ ok: false, reason: 'LIMIT_EXCEEDED' });
    clock.advance(61_000);
    expect((await check(v, await proof(k))).ok).toBe(true);
  });

  it('does not let an invalid proof take a place in the replay cache', async () => {
    const replay = new MemoryReplayCache(10);
    await check(verifier({ replay }), await proof(k, { method: 'GET' }));
    await check(verifier({ replay }), await proof(other), { expectedJkt: k.jkt });
    expect(replay.size).toBe(0);
  });
});

/** Signs header and payload JSON text byte for byte (EdDSA): for proofs no serializer would write. */
async function signText(k2: ProofKey, headerText: string, payloadText: string): Promise<string> {
  const b64 = (t: string | Uint8Array) => Buffer.from(t).toString('base64url');
  const input = `${b64(headerText)}.${b64(payloadText)}`;
  const sig = await crypto.subtle.sign({ name: 'Ed25519' }, k2.privateKey, new TextEncoder().encode(input));
  return `${input}.${b64(new Uint8Array(sig))}`;
}

describe('DPoP proofs with a member named twice (RFC 7515 §4)', () => {
  const jwkText = () => JSON.stringify({ kty: k.publicJwk.kty, crv: k.publicJwk.crv, x: k.publicJwk.x });
  const header = () => `{"typ":"dpop+jwt","alg":"EdDSA","jwk":${jwkText()}}`;
  const payload = (extra: string, jti: string) =>
    `{"jti":"${jti}","htm":"POST","htu":"${HTU}","iat":${Math.floor(clock.now() / 1000)},"ath":"${accessTokenHash(TOKEN, hasher)}"${extra}}`;

  it('accepts the proof written without the duplicate (the signer works)', async () => {
    expect(await check(verifier(), await signText(k, header(), payload('', 'dup-0')), { expectedJkt: k.jkt })).toMatchObject({ ok: true });
  });

  it('denies two htu or two jti in the payload with DPOP_PROOF_INVALID', async () => {
    // JSON.parse keeps the last of each: without the check these would pass for the second value
    const twoHtu = await signText(k, header(), `{"htu":"https://evil.example/v1/authorize",${payload('', 'dup-1').slice(1)}`);
    expect(await check(verifier(), twoHtu)).toMatchObject({ ok: false, reason: 'DPOP_PROOF_INVALID' });
    const twoJti = await signText(k, header(), payload(',"jti":"dup-other"', 'dup-2'));
    expect(await check(verifier(), twoJti)).toMatchObject({ ok: false, reason: 'DPOP_PROOF_INVALID' });
  });

  it('denies two jwk or two alg members in the header, also when one is spelt with an escape', async () => {
    const twoKeys = `{"typ":"dpop+jwt","alg":"EdDSA","jwk":${JSON.stringify(other.publicJwk)},"jwk":${jwkText()}}`;
    expect(await check(verifier(), await signText(k, twoKeys, payload('', 'dup-3')))).toMatchObject({ ok: false, reason: 'DPOP_PROOF_INVALID' });
    const escaped = `{"typ":"dpop+jwt","\\u0061lg":"ES256","alg":"EdDSA","jwk":${jwkText()}}`;
    expect(await check(verifier(), await signText(k, escaped, payload('', 'dup-4')))).toMatchObject({ ok: false, reason: 'DPOP_PROOF_INVALID' });
  });

  it('denies a signed task state with two progress members', async () => {
    const text = `{"task_id":"task_1","progress":0,"last_call_id":null,"iat":${Math.floor(clock.now() / 1000)},"progress":3}`;
    const jws = await signText(k, `{"typ":"mandate-task-state+jwt","alg":"EdDSA","jwk":${jwkText()}}`, text);
    expect((await verifyTaskState(jws, k.jkt, clock.now(), 60_000)).ok).toBe(false);
    const clean = await signText(k, `{"typ":"mandate-task-state+jwt","alg":"EdDSA","jwk":${jwkText()}}`, text.replace(',"progress":3', ''));
    expect((await verifyTaskState(clean, k.jkt, clock.now(), 60_000)).ok).toBe(true);
  });
});

describe('signed task state', () => {
  it("verifies a state signed with the task's key and refuses another key or a stale state", async () => {
    const state = { taskId: 'task_1', progress: 3, lastCallId: 'call-9' };
    const jws = await signTaskState({ key: k, state, now: clock.now() });
    expect(await verifyTaskState(jws, k.jkt, clock.now(), 60_000)).toEqual({ ok: true, state });
    expect((await verifyTaskState(jws, other.jkt, clock.now(), 60_000)).ok).toBe(false);
    expect((await verifyTaskState(jws, k.jkt, clock.now() + 61_000, 60_000)).ok).toBe(false);
  });
});
