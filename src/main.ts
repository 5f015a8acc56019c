/**
 * Entry point. bcrypt and the access-token checks share libuv's thread pool (4 threads by
 * default); a login burst would otherwise queue every token check behind password hashes.
 * The pool is sized before anything can start it, then the server is loaded.
 */
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('./start.js');
