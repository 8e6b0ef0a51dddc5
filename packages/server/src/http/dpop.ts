/**
 * Proof of possession at the HTTP edge (RFC 9449): reads the `DPoP` header, names the target the
 * way the agent had to (the configured public URL and the request path, without the query) and
 * asks the core's verifier. The MCP gateway verifies its requests through `verifyHttpProof` too.
 */
import { MandateError, type DpopVerifier, type ProofResult } from '@mandate/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { MandateRuntime } from '../compose.ts';
import { trustsHostHeader } from '../config.ts';

export interface HttpRequestLike {
  readonly method: string;
  /** the request target as received: path and query */
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  /** scheme and host the request came in on, used only when no public URL is configured */
  readonly protocol?: string;
  readonly host?: string;
}

/**
 * The URL a proof must name: `server.public_url` (or, given none, the request's scheme and host,
 * which only development may rely on: see `requestProof`) + the path.
 */
export function htuFor(publicUrl: string | undefined, req: HttpRequestLike): string {
  const base = (publicUrl ?? `${req.protocol ?? 'http'}://${req.host ?? 'localhost'}`).replace(/\/+$/, '');
  const path = req.url.split('?')[0]?.split('#')[0] ?? '/';
  return base + path;
}

/**
 * Verifies the request's DPoP proof for `accessToken`. Undefined when the request carries no
 * proof (a key-bound token is then denied by the binding check with DPOP_PROOF_MISSING); a
 * result otherwise, failed or not. Several `DPoP` headers are a failed proof.
 */
export async function verifyHttpProof(verifier: DpopVerifier, publicUrl: string | undefined, req: HttpRequestLike, accessToken: string, now: number): Promise<ProofResult | undefined> {
  const header = req.headers['dpop'];
  if (header === undefined) return undefined;
  if (Array.isArray(header)) return { ok: false, reason: 'DPOP_PROOF_INVALID', detail: 'one DPoP header per request' };
  return verifier.verifyProof({ proof: header, method: req.method, htu: htuFor(publicUrl, req), accessToken, now });
}

export const NO_PUBLIC_URL = 'this server cannot check proofs of possession: server.public_url is not set, and outside development the Host header is not trusted to name the URL a proof must be made for';

/** For the routes: verifies the proof and hands out the current nonce when nonces are on. */
export async function requestProof(rt: MandateRuntime, req: FastifyRequest, reply: FastifyReply, accessToken: string): Promise<ProofResult | undefined> {
  const now = rt.clock.now();
  const nonces = rt.dpop.nonces;
  if (nonces) reply.header('dpop-nonce', nonces.current(now));
  // no proof, nothing to verify: skip naming the target (scheme and host are getters on the request)
  if (req.headers['dpop'] === undefined) return undefined;
  const publicUrl = rt.config.server.public_url;
  // a proof's htu taken from the Host header would let whoever forges it choose what proofs are valid for
  if (publicUrl === undefined && !trustsHostHeader(rt.config)) return { ok: false, reason: 'DPOP_PROOF_INVALID', detail: NO_PUBLIC_URL };
  return verifyHttpProof(rt.dpop, publicUrl, { method: req.method, url: req.url, headers: req.headers, protocol: req.protocol, host: req.host }, accessToken, now);
}

/** The failed proof as an error (for routes that answer with errors, not decisions). */
export function proofError(p: ProofResult | undefined): MandateError | undefined {
  return p !== undefined && !p.ok ? new MandateError(p.reason, p.detail) : undefined;
}
