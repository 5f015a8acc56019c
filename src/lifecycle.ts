import type { App } from './app.js';
import type { Container } from './container.js';

/**
 * Stops the server gracefully: stop accepting, let in-flight requests finish within
 * `timeoutMs` (then cut the remaining connections), close the app's hooks and the
 * container. Resolves true when everything finished in time.
 */
export async function shutdown(app: App, container: Container, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
    timer.unref();
  });
  // A keep-alive connection whose request finishes after close() began would stay open and
  // hold close() up; close such connections as soon as they fall idle.
  const sweeper = setInterval(() => app.server.closeIdleConnections(), 50);
  const outcome = await Promise.race([app.close().then(() => 'closed' as const), timedOut]);
  clearInterval(sweeper);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    container.logger.warn({ timeoutMs }, 'in-flight requests did not finish in time; closing their connections');
    app.server.closeAllConnections();
  }
  await container.close();
  return outcome === 'closed';
}
