import { describe, expect, it } from 'vitest';
import type { LabelLimits, ValueLabel } from '@mandate/core';
import { MINUTE, T0, type GetStore } from './fixtures.ts';

const LIMITS: LabelLimits = { maxLabels: 4, maxTasks: 2, maxEntries: 3 };
const at = (dt = 0) => ({ now: T0 + dt, expiresAt: T0 + dt + 10 * MINUTE });
const label = (key: string, level: ValueLabel['level'], ...tasks: string[]): ValueLabel => ({ key, level, tasks });
const sorted = (ls: readonly ValueLabel[]) => [...ls].sort((a, b) => a.key.localeCompare(b.key));

export function labelSuite(store: GetStore): void {
  describe('shared-resource labels', () => {
    it('keeps the least trusted label of a value and its newest writers; reads by entry or by whole store', async () => {
      const s = store().labels;
      await s.putLabels('tickets', 'tickets', [label('email:x@evil.example', 'untrusted', 't-1'), label('text:hello there', 'unknown', 't-1')], at(), LIMITS);
      // a later, more trusted write of the same value changes nothing of its level
      await s.putLabels('tickets', 'tickets', [label('email:x@evil.example', 'unknown', 't-2'), label('text:hello there', 'untrusted_text', 't-3')], at(1), LIMITS);
      await s.putLabels('tickets', 'tickets', [label('email:x@evil.example', 'unknown', 't-4')], at(2), LIMITS);
      const read = await s.readLabels({ entries: ['tickets'] }, T0 + 3, 100);
      expect(read.saturated).toBe(false);
      expect(sorted(read.labels)).toEqual([label('email:x@evil.example', 'untrusted', 't-2', 't-4'), label('text:hello there', 'untrusted_text', 't-1', 't-3')]);
      await s.putLabels('fs:/a', 'fs', [label('url:evil.example', 'untrusted', 't-1')], at(), LIMITS);
      await s.putLabels('fs:/b', 'fs', [label('account:12345678', 'unknown', 't-2')], at(), LIMITS);
      expect((await s.readLabels({ entries: ['fs:/a'] }, T0 + 1, 100)).labels.map((l) => l.key)).toEqual(['url:evil.example']);
      expect(sorted((await s.readLabels({ entries: [], store: 'fs' }, T0 + 1, 100)).labels).map((l) => l.key)).toEqual(['account:12345678', 'url:evil.example']);
      expect((await s.readLabels({ entries: ['fs:/c'] }, T0 + 1, 100)).labels).toEqual([]);
    });

    it('saturates an entry past its bound, and a read past its limit, instead of dropping labels silently', async () => {
      const s = store().labels;
      await s.putLabels('q', 'q', ['a', 'b', 'c', 'd', 'e'].map((k) => label(`text:value ${k}`, 'unknown', 't-1')), at(), LIMITS);
      const read = await s.readLabels({ entries: ['q'] }, T0 + 1, 100);
      expect(read.labels).toHaveLength(4);
      expect(read.saturated).toBe(true);
      await s.putLabels('r', 'r', [label('text:one value', 'unknown', 't-1'), label('text:two value', 'unknown', 't-1')], at(), LIMITS);
      expect(await s.readLabels({ entries: ['r'] }, T0 + 1, 1)).toMatchObject({ saturated: true });
      expect(await s.readLabels({ entries: ['r'] }, T0 + 1, 2)).toMatchObject({ saturated: false });
    });

    it('forgets an entry after its expiry; past the bound on live entries a new entry is refused, never made room for by forgetting a live one', async () => {
      const s = store().labels;
      await s.putLabels('e1', 'x', [label('text:first value', 'unknown', 't-1')], at(0), LIMITS);
      await s.putLabels('e2', 'x', [label('text:second value', 'unknown', 't-1')], at(1), LIMITS);
      await s.putLabels('e3', 'x', [label('text:third value', 'unknown', 't-1')], at(2), LIMITS);
      // full of live entries: the fourth is refused and every held label stays
      await expect(s.putLabels('e4', 'x', [label('text:fourth value', 'untrusted', 't-2')], at(3), LIMITS)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
      expect((await s.readLabels({ entries: ['e1', 'e2', 'e3'] }, T0 + 4, 10)).labels).toHaveLength(3);
      expect((await s.readLabels({ entries: ['e4'] }, T0 + 4, 10)).labels).toEqual([]);
      // a held entry still takes more labels when full
      await s.putLabels('e1', 'x', [label('text:more of the first', 'untrusted', 't-2')], at(4), LIMITS);
      expect((await s.readLabels({ entries: ['e1'] }, T0 + 5, 10)).labels).toHaveLength(2);
      // once an entry has expired, a new one takes its room
      expect((await s.readLabels({ entries: ['e2'] }, T0 + 1 + 10 * MINUTE, 10)).labels).toEqual([]);
      await s.putLabels('e4', 'x', [label('text:fourth value', 'untrusted', 't-2')], at(1 + 10 * MINUTE), LIMITS);
      expect((await s.readLabels({ entries: ['e4'] }, T0 + 2 + 10 * MINUTE, 10)).labels).toHaveLength(1);
      expect(await s.pruneLabels(T0 + 5 + 20 * MINUTE, 10)).toBe(3);
    });
  });
}
