/**
 * OpenTelemetry traces: with tracing.enabled, /v1/authorize, /mcp and every decision are spans,
 * children of the caller's traceparent, reported to whatever tracer provider the process
 * registered (here the OTel SDK's in-memory exporter); off by default, no span at all.
 */
import { context, propagation, trace, SpanKind } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TRACER_NAME } from '../../src/tracing.ts';
import { startHarness, type Harness } from '../support.ts';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});
beforeEach(() => exporter.reset());

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const traceparent = `00-${TRACE_ID}-${CALLER_SPAN}-01`;

const ours = (): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.instrumentationScope.name === TRACER_NAME);
const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;

describe('tracing.enabled', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config: { tracing: { enabled: true } } });
  });
  afterAll(() => h.close());

  it('makes /v1/authorize a server span under the caller\'s traceparent, with the decision as its child', async () => {
    const agent = await h.registerAgent('traced');
    const task = await h.startTask(agent);
    exporter.reset();
    const r = await h.inject({ method: 'POST', url: '/v1/authorize', headers: { authorization: `Bearer ${task.token}`, traceparent }, payload: { tool: 'helpdesk.search_tickets', args: { query: 'refund' } } });
    expect(r.statusCode).toBe(200);
    const spans = ours();
    const authorize = spans.find((s) => s.name === 'mandate.authorize');
    const decide = spans.find((s) => s.name === 'mandate.decide');
    expect(authorize?.kind).toBe(SpanKind.SERVER);
    expect(authorize?.spanContext().traceId).toBe(TRACE_ID);
    expect(authorize && parentOf(authorize)).toBe(CALLER_SPAN);
    expect(decide?.spanContext().traceId).toBe(TRACE_ID);
    expect(decide && parentOf(decide)).toBe(authorize?.spanContext().spanId);
    expect(decide?.attributes).toMatchObject({ 'mandate.tool': 'helpdesk.search_tickets', 'mandate.effect': 'allow', 'mandate.task_id': task.id, 'mandate.agent_id': agent });
    // a span never carries arguments or the token
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain('refund');
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain(task.token);
  });

  it('records a deny with its reasons, and starts a new trace without a traceparent', async () => {
    const agent = await h.registerAgent('traced-deny');
    const task = await h.startTask(agent);
    exporter.reset();
    await h.authorize(task.token, { tool: 'shell.exec', args: {} });
    const decide = ours().find((s) => s.name === 'mandate.decide');
    expect(decide?.attributes['mandate.effect']).toBe('deny');
    expect(decide?.attributes['mandate.reasons']).toEqual(['TOOL_NOT_IN_MANDATE']);
    const authorize = ours().find((s) => s.name === 'mandate.authorize');
    expect(authorize && parentOf(authorize)).toBeUndefined();
    expect(authorize?.spanContext().traceId).not.toBe(TRACE_ID);
  });

  it('makes each /mcp request a gateway span under the caller\'s traceparent', async () => {
    const agent = await h.registerAgent('traced-mcp');
    const task = await h.startTask(agent);
    const base = await h.app.listen({ host: '127.0.0.1', port: 0 });
    exporter.reset();
    const r = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${task.token}`, traceparent, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'trace-test', version: '1' } } }),
    });
    await r.text();
    expect(r.status).toBe(200);
    const gateway = ours().find((s) => s.name === 'mandate.gateway');
    expect(gateway?.kind).toBe(SpanKind.SERVER);
    expect(gateway?.spanContext().traceId).toBe(TRACE_ID);
    expect(gateway && parentOf(gateway)).toBe(CALLER_SPAN);
    expect(gateway?.attributes).toMatchObject({ 'http.route': '/mcp', 'rpc.method': 'initialize' });
  });
});

describe('tracing off (the default)', () => {
  it('starts no span, even with a provider registered', async () => {
    const h = await startHarness();
    try {
      const agent = await h.registerAgent('untraced');
      const task = await h.startTask(agent);
      exporter.reset();
      await h.inject({ method: 'POST', url: '/v1/authorize', headers: { authorization: `Bearer ${task.token}`, traceparent }, payload: { tool: 'helpdesk.search_tickets', args: {} } });
      expect(ours()).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
