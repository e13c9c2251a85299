import { defineConfig } from 'vitest/config';

// Two projects: byte-level unit tests run in parallel; namespace tests run one file at a
// time, because they start real routers and real programs on a 2-core machine, and only after the
// unit tests (groupOrder), so that no unit test competes with their timing for the CPU.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
