/**
 * A JWT whose header or payload names a member twice is refused (RFC 7515 §4, RFC 7519 §4):
 * JSON.parse keeps the last of two `sub`s, another reader the first, so such a token means two
 * things. Signed with the real keys, sent over HTTP: workload tokens (task start and delegation)
 * and Mandate's own task tokens.
 */
import { webcrypto } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeJwt, errorOf, mandate, startHarness, START_MS, type Harness } from '../support.ts';

const b64 = (t: string | Uint8Array) => Buffer.from(t).toString('base64url');

async function signText(key: webcrypto.CryptoKey, algorithm: webcrypto.AlgorithmIdentifier | webcrypto.EcdsaParams, headerText: string, payloadText: string): Promise<string> {
  const input = `${b64(headerText)}.${b64(payloadText)}`;
  const sig = await webcrypto.subtle.sign(algorithm, key, new TextEncoder().encode(input));
  return `${input}.${b64(new Uint8Array(sig))}`;
}

describe('tokens with a member named twice', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h.close());

  /** a JWT-SVID signed by the dev issuer, written as given */
  const svidText = async (payloadText: string): Promise<string> => {
    const issuer = h.runtime.devIssuer;
    if (!issuer) throw new Error('no dev issuer');
    const key = await webcrypto.subtle.importKey('jwk', issuer.privateJwk() as webcrypto.JsonWebKey, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    return signText(key, { name: 'ECDSA', hash: 'SHA-256' }, JSON.stringify({ alg: 'ES256', kid: issuer.kid, typ: 'JWT' }), payloadText);
  };
  const iat = Math.floor(START_MS / 1000);
  const claimsText = (sub: string, extra = '') => `{"sub":"${sub}","aud":"mandate","iat":${iat},"exp":${iat + 300}${extra}}`;
  const startWith = (svid: string) => h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}` }, payload: { mandate: mandate() } });

  it('refuses a workload token with two sub claims at task start (it would start as the second)', async () => {
    const [worker, admin] = [await h.registerAgent('worker'), await h.registerAgent('admin')];
    expect((await startWith(await svidText(claimsText(worker)))).statusCode).toBe(201);
    const twice = await startWith(await svidText(claimsText(worker, `,"sub":"${admin}"`)));
    expect(twice.statusCode).toBe(401);
    expect(errorOf(twice).code).toBe('TOKEN_MALFORMED');
    const escaped = await startWith(await svidText(claimsText(worker, `,"\\u0073ub":"${admin}"`)));
    expect(errorOf(escaped).code).toBe('TOKEN_MALFORMED');
  });

  it("refuses a delegation whose child workload token has two sub claims", async () => {
    const [root, sub, admin] = [await h.registerAgent('root'), await h.registerAgent('sub'), await h.registerAgent('admin')];
    const parent = await h.startTask(root, mandate({ delegation: { allowed: true, max_depth: 1, max_children: 5 }, budgets: { calls: 20 } }));
    const res = await h.inject({
      method: 'POST',
      url: `/v1/tasks/${parent.id}/delegate`,
      headers: { authorization: `Bearer ${parent.token}` },
      payload: { workload_token: await svidText(claimsText(sub, `,"sub":"${admin}"`)), mandate: mandate({ tools: [{ name: 'helpdesk.search_tickets' }], budgets: { calls: 1 } }) },
    });
    expect(errorOf(res).code).toBe('TOKEN_MALFORMED');
  });

  it('refuses a task token with two task_id claims, even signed with the active task-token key', async () => {
    const agent = await h.registerAgent('worker');
    const [a, b] = [await h.startTask(agent), await h.startTask(agent)];
    const { header, payload } = decodeJwt(a.token);
    const active = h.runtime.taskKeys.active();
    const sign = (text: string) => signText(active.privateKey, { name: 'Ed25519' }, JSON.stringify(header), text);
    // B's task id first, A's last: JSON.parse reads A, a first-wins reader B
    const forged = await sign(`{"task_id":"${b.id}",${JSON.stringify(payload).slice(1)}`);
    // a deny is a result (200), not an error
    const res = await h.authorize(forged, { tool: 'helpdesk.search_tickets', args: { query: 'x' } });
    expect(res.json()).toMatchObject({ effect: 'deny', reasons: ['TOKEN_MALFORMED'] });
    // the signer is sound: the same payload written once is accepted
    const clean = await sign(JSON.stringify(payload));
    expect((await h.authorize(clean, { tool: 'helpdesk.search_tickets', args: { query: 'x' } })).json<{ effect: string }>().effect).toBe('allow');
  });
});
