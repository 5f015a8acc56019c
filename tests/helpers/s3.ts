import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

/** A local S3-compatible server (s3rver) with one bucket, and the settings that point Parley at it. */
export async function startS3(bucket = 'parley-media'): Promise<{ endpoint: string; port: number; env: Record<string, string>; close(): Promise<void> }> {
  const s3 = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: mkdtempSync(path.join(os.tmpdir(), 'parley-s3-')),
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const { port } = await s3.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    port,
    env: { STORAGE_BUCKET_NAME: bucket, STORAGE_ENDPOINT: endpoint, STORAGE_REGION: 'us-east-1', STORAGE_ACCESS_KEY: 'S3RVER', STORAGE_SECRET_KEY: 'S3RVER' },
    close: () => s3.close(),
  };
}
