/**
 * Where the agent's workload token (its JWT-SVID or OIDC JWT) comes from. A function is asked
 * again for every task start, so a rotating source (SPIRE's file, a metadata endpoint) is read
 * fresh each time.
 */
export type WorkloadTokenSource = string | (() => string | Promise<string>);

interface EnvHost {
  process?: { env?: Record<string, string | undefined> };
  Deno?: { env?: { get(name: string): string | undefined } };
}

/** Reads the token from an environment variable at each use (Node, Bun, Deno, most edge runtimes). */
export function workloadTokenFromEnv(name = 'MANDATE_WORKLOAD_TOKEN'): () => string {
  return () => {
    const host = globalThis as EnvHost;
    const value = host.process?.env?.[name] ?? host.Deno?.env?.get(name);
    if (value === undefined || value.trim() === '') throw new TypeError(`environment variable ${name} holds no workload token`);
    return value.trim();
  };
}

export async function resolveWorkloadToken(source: WorkloadTokenSource): Promise<string> {
  const token = typeof source === 'string' ? source : await source();
  if (typeof token !== 'string' || token.trim() === '') throw new TypeError('the workload token source gave no token');
  return token.trim();
}
