/**
 * OpenTelemetry traces, through @opentelemetry/api alone: Mandate starts spans (an authorize
 * request, a gateway request, each decision) and never ships an SDK or an exporter. Whoever runs
 * it registers one (the usual `node --import ./otel.js`, with an OTLP exporter, for instance);
 * with none registered the API is a no-op. Off unless `tracing.enabled`, and then each span is
 * a child of the caller's W3C trace context (`traceparent`, read by the registered propagator).
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import type { IncomingHttpHeaders } from 'node:http';
import type { Decision } from '@mandate/core';

export interface Tracing {
  /** false: no span is ever started (callers may skip building what a span would carry) */
  readonly enabled: boolean;
  /** runs `fn` in a server span that continues the trace context in `headers` */
  request<T>(name: string, headers: IncomingHttpHeaders, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>): Promise<T>;
  /** runs `fn` in a span under the active one (a decision) */
  child<T>(name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>): Promise<T>;
}

const off: Tracing = {
  enabled: false,
  request: (_name, _headers, _attributes, fn) => fn(undefined),
  child: (_name, _attributes, fn) => fn(undefined),
};

/** the tracer's name: the instrumentation scope spans are reported under */
export const TRACER_NAME = '@mandate/server';

export function createTracing(enabled: boolean): Tracing {
  if (!enabled) return off;
  // looked up at each span, not once: a provider registered after start still receives them
  const tracer = (): Tracer => trace.getTracer(TRACER_NAME);
  const run = async <T>(span: Span, fn: (span: Span | undefined) => Promise<T>): Promise<T> => {
    try {
      return await fn(span);
    } catch (e) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
      throw e;
    } finally {
      span.end();
    }
  };
  return {
    enabled: true,
    request(name, headers, attributes, fn) {
      const parent = propagation.extract(context.active(), headers);
      const span = tracer().startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
      return context.with(trace.setSpan(parent, span), () => run(span, fn));
    },
    child(name, attributes, fn) {
      const span = tracer().startSpan(name, { kind: SpanKind.INTERNAL, attributes });
      return context.with(trace.setSpan(context.active(), span), () => run(span, fn));
    },
  };
}

/** what a decision span carries: the outcome and why, never arguments or tokens */
export function decisionAttributes(d: Decision): Attributes {
  return {
    'mandate.effect': d.effect,
    'mandate.reasons': [...d.reasons],
    'mandate.policy_ids': [...d.policyIds],
    'mandate.policy_version': d.policyVersion,
    'mandate.final': d.final,
    'mandate.call_id': d.callId,
    ...(d.taskId !== undefined ? { 'mandate.task_id': d.taskId } : {}),
    ...(d.agentId !== undefined ? { 'mandate.agent_id': d.agentId } : {}),
  };
}
