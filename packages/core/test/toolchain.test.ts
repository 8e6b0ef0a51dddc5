import { describe, expect, it } from 'vitest';

describe('toolchain', () => {
  it('runs the tests on Node 22 or newer (the node devDependency, not the system Node 20)', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
  });
});
