import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { MandateError } from '../../src/errors.ts';
import type { WorkloadVerifier } from '../../src/identity/workload.ts';
import { bundleOf, makeKey, sign, svidClaims, verifierWith } from './helpers.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const AGENT = 'spiffe://prod.example/agents/helpdesk';

type Mutation =
  | { kind: 'flip'; segment: number; at: number; shift: number }
  | { kind: 'delete'; segment: number; at: number }
  | { kind: 'insert'; segment: number; at: number; char: string }
  | { kind: 'swap'; order: [number, number, number] };

const segment = fc.integer({ min: 0, max: 2 });
const at = fc.nat();
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), segment, at, shift: fc.integer({ min: 1, max: ALPHABET.length - 1 }) }),
  fc.record({ kind: fc.constant('delete' as const), segment, at }),
  fc.record({ kind: fc.constant('insert' as const), segment, at, char: fc.constantFrom(...ALPHABET) }),
  fc.record({
    kind: fc.constant('swap' as const),
    order: fc.constantFrom<[number, number, number]>([0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]),
  }),
);

function mutate(token: string, m: Mutation): string {
  const parts = token.split('.') as [string, string, string];
  if (m.kind === 'swap') return m.order.map((i) => parts[i]).join('.');
  const s = parts[m.segment] as string;
  const i = m.at % (s.length + (m.kind === 'insert' ? 1 : 0));
  if (m.kind === 'flip') {
    const c = ALPHABET[(ALPHABET.indexOf(s[i] as string) + m.shift) % ALPHABET.length] as string;
    parts[m.segment] = s.slice(0, i) + c + s.slice(i + 1);
  } else if (m.kind === 'delete') {
    parts[m.segment] = s.slice(0, i) + s.slice(i + 1);
  } else {
    parts[m.segment] = s.slice(0, i) + m.char + s.slice(i);
  }
  return parts.join('.');
}

let verifier: WorkloadVerifier;
let token: string;

beforeAll(async () => {
  const key = await makeKey('ES256', 'es-1');
  verifier = verifierWith([bundleOf('prod.example', key)]);
  token = await sign(key, svidClaims(AGENT));
});

describe('WorkloadVerifier under random mutation', () => {
  it('accepts the unmutated token', async () => {
    await expect(verifier.verify(token)).resolves.toMatchObject({ agentId: AGENT });
  });

  it('never accepts a token with a flipped, deleted or inserted character or swapped segments', async () => {
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const mutated = mutate(token, m);
        if (mutated === token) return;
        const outcome = await verifier.verify(mutated).then(
          () => 'accepted',
          (e: unknown) => (e instanceof MandateError ? 'rejected' : `threw ${String(e)}`),
        );
        expect(outcome).toBe('rejected');
      }),
      { numRuns: 500 },
    );
  });
});
