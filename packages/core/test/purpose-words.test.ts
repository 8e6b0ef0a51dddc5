import { describe, expect, it } from 'vitest';
import { baseForms, readPurposeWords } from '../src/purpose-words.ts';

const words = (p: string) => readPurposeWords(p).words;

describe('purpose words', () => {
  it('tests words, never substrings: "notebook" and "Facebook" ask for no booking', () => {
    expect(words('Book a table for two').has('book')).toBe(true);
    expect(words('Summarise my notebook and my Facebook messages').has('book')).toBe(false);
  });

  it('counts an inflected word under its base form too', () => {
    expect(words('I deleted it; cancelling the rest, scheduling payments, he paid and sent').has('delete')).toBe(true);
    for (const w of ['delete', 'cancel', 'schedule', 'payment', 'pay', 'send']) expect(words('I deleted it; cancelling the rest, scheduling payments, he paid and sent').has(w), w).toBe(true);
    expect(baseForms('replies')).toContain('reply');
    expect(baseForms('orders')).toContain('order');
  });

  it('leaves out a word under a negation, to the end of its clause', () => {
    const r = readPurposeWords("Summarise the thread but do not reply to anyone. Don't delete anything, never pay, and file it without sending.");
    for (const w of ['summarise', 'thread', 'file']) expect(r.words.has(w), w).toBe(true);
    for (const w of ['reply', 'delete', 'pay', 'send']) {
      expect(r.words.has(w), w).toBe(false);
      expect(r.negated.has(w), w).toBe(true);
    }
    // the clause ends: what follows a comma or "but" counts again
    expect(readPurposeWords("Don't wait, pay the bill").words.has('pay')).toBe(true);
    expect(readPurposeWords('Never mind the old one but delete the draft').words.has('delete')).toBe(true);
  });

  it('counts a word asked for anywhere, even if it is also negated elsewhere', () => {
    expect(readPurposeWords('Send the report to Kim, but do not send the draft').words.has('send')).toBe(true);
  });

  it('reads curly apostrophes and capitals like plain ones', () => {
    expect(readPurposeWords('DON\u2019T DELETE the files').words.has('delete')).toBe(false);
  });
});
