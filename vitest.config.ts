import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests bind fixed loopback addresses (127.0.0.x); files run one at a time.
    fileParallelism: false,
    pool: 'forks',
    reporters: ['default'],
  },
});
