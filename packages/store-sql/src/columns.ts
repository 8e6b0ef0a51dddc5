/**
 * Typed column readers: no dependency beyond canonical JSON, so the SQLite store's commit thread
 * loads them without the rest of the core (`@mandate/store-sql/columns`).
 */
import { canonicalJson } from '@mandate/core/json';
import type { JsonObject } from '@mandate/core';

export type Row = Record<string, unknown>;

/** list limits must be explicit and sane: SQLite reads LIMIT -1 as "no limit", PostgreSQL refuses it */
export function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new TypeError(`limit must be a non-negative integer, got ${String(limit)}`);
  return limit;
}

function column(row: Row, name: string): unknown {
  if (!(name in row)) throw new Error(`column ${name} missing from row`);
  return row[name];
}

export function str(row: Row, name: string): string {
  const v = column(row, name);
  if (typeof v !== 'string') throw new Error(`column ${name} is not text`);
  return v;
}

export function num(row: Row, name: string): number {
  const v = column(row, name);
  if (typeof v !== 'number') throw new Error(`column ${name} is not a number`);
  return v;
}

export function bool(row: Row, name: string): boolean {
  const v = column(row, name);
  if (typeof v !== 'boolean') throw new Error(`column ${name} is not a boolean`);
  return v;
}

export function optStr(row: Row, name: string): string | undefined {
  return column(row, name) === null ? undefined : str(row, name);
}

export function optNum(row: Row, name: string): number | undefined {
  return column(row, name) === null ? undefined : num(row, name);
}

export function json(row: Row, name: string): JsonObject {
  const v: unknown = JSON.parse(str(row, name));
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`column ${name} is not a JSON object`);
  return v as JsonObject;
}

/** JSON columns hold canonical JSON: what audit records hash is byte for byte what is stored */
export function toJson(v: unknown): string {
  return canonicalJson(v);
}
