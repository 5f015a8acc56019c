import type { App } from './app.js';
import type { Container } from './container.js';

/**
 * Stops the server gracefully: stop accepting connections at once, answer 503
 * `shutting_down` to requests that still arrive on open connections, let in-flight requests
 * finish within `timeoutMs` (then cut the remaining connections), run the app's preClose and
 * onClose hooks (sockets, matchmaking); meanwhile stop taking jobs and let the running ones
 * finish by the same deadline (the others run again later); then close the container (the job
 * queue, Redis, the database pool, the embedded PostgreSQL). Resolves true when everything
 * finished in time.
 */
export async function shutdown(app: App, container: Container, timeoutMs: number): Promise<boolean> {
  const jobsStopped = container.jobs.runtime.stop(timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
    timer.unref();
  });
  // No new connections from here on; app.close() closes the listener too, but only after the
  // preClose hooks (closing the sockets), during which new connections would still be accepted.
  if (app.server.listening) app.server.close();
  // A keep-alive connection whose request finishes after close() began would stay open and
  // hold close() up; close such connections as soon as they fall idle.
  const sweeper = setInterval(() => app.server.closeIdleConnections(), 50);
  const closing = app.close();
  const outcome = await Promise.race([closing.then(() => 'closed' as const), timedOut]);
  clearInterval(sweeper);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    container.logger.warn({ timeoutMs }, 'in-flight requests did not finish in time; closing their connections');
    app.server.closeAllConnections();
    // With the connections gone close() completes: its onClose hooks (the searches of this
    // instance, the Socket.io adapter) still use Redis, which the container is about to close.
    await closing;
  }
  const jobsFinished = await jobsStopped;
  await container.close();
  return outcome === 'closed' && jobsFinished;
}

/** A worker process's shutdown: the running jobs get `timeoutMs`, then the container closes. */
export async function stopWorker(container: Container, timeoutMs: number): Promise<boolean> {
  const finished = await container.jobs.runtime.stop(timeoutMs);
  await container.close();
  return finished;
}
