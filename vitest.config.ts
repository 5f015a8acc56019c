import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/helpers/global-setup.ts'],
    setupFiles: ['tests/helpers/block-network.ts'],
    pool: 'forks',
    // Two cores: two workers, each test file with its own database and Redis db index.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    env: {
      // The suite runs on Node 20 on purpose (engines >=20.19, and on 22 too): the AWS SDK's notice
      // that its 2027 releases need Node 22 is known, and would print once per file that builds an S3 client.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
