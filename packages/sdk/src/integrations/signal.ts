/**
 * Where a framework keeps a tool call's AbortSignal, for `guard`: every adapter reads the
 * framework's own signal from there and hands the tool the guarded call's signal in its place
 * (the framework's combined with the kill watch's), so a killed task's tool sees it abort.
 */
import type { GuardOptions } from '../task.ts';

/**
 * A copy of `options` with `signal` under `key`; every other own property (symbol keys and
 * accessors too) and the prototype are kept, and the framework's object is never changed.
 */
export function withSignal(options: unknown, key: string, signal: AbortSignal): object {
  if (typeof options !== 'object' || options === null) return { [key]: signal };
  const descriptors = Object.getOwnPropertyDescriptors(options);
  descriptors[key] = { value: signal, enumerable: true, writable: true, configurable: true };
  return Object.create(Object.getPrototypeOf(options) as object | null, descriptors) as object;
}

/**
 * The `signal` and `passSignal` of a framework whose tool function takes an options object as
 * argument `index`, with the signal under `key` (Vercel AI: 1, `abortSignal`; LangChain: 1,
 * `signal`; OpenAI Agents: 2, `signal`).
 */
export function signalAt<A extends unknown[]>(index: number, key: string): Pick<GuardOptions<A>, 'signal' | 'passSignal'> {
  return {
    signal: (...a) => {
      const s = (a[index] as Record<string, unknown> | undefined)?.[key];
      return s instanceof AbortSignal ? s : undefined;
    },
    passSignal: (signal, a) => {
      const out: unknown[] = [...a];
      while (out.length <= index) out.push(undefined);
      out[index] = withSignal(a[index], key, signal);
      return out;
    },
  };
}
