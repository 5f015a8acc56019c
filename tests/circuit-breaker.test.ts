import { describe, expect, it } from 'vitest';
import { CircuitBreaker, CircuitOpenError } from '../src/infra/circuit-breaker.js';

const WINDOW = 10_000;
const OPEN = 30_000;

function setup(failureThreshold = 3) {
  let now = 1_000_000;
  const breaker = new CircuitBreaker({ failureThreshold, windowMs: WINDOW, openMs: OPEN, now: () => now });
  return { breaker, advance: (ms: number) => void (now += ms) };
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const boom = () => Promise.reject(new Error('upstream down'));

async function failTimes(breaker: CircuitBreaker, key: string, times: number) {
  for (let i = 0; i < times; i += 1) await expect(breaker.run(key, boom)).rejects.toThrow('upstream down');
}

describe('CircuitBreaker', () => {
  it('runs the work while closed and hands back its result or its own error', async () => {
    const { breaker } = setup();
    await expect(breaker.run('a', async () => 42)).resolves.toBe(42);
    const original = new Error('exact');
    await expect(breaker.run('a', () => Promise.reject(original))).rejects.toBe(original);
    expect(breaker.state('a')).toBe('closed');
  });

  it('opens at the threshold and then fails at once, without calling the work, with the time left', async () => {
    const { breaker, advance } = setup(3);
    await failTimes(breaker, 'a', 2);
    expect(breaker.state('a')).toBe('closed');
    await failTimes(breaker, 'a', 1);
    expect(breaker.state('a')).toBe('open');

    advance(4_000);
    let called = false;
    const error = await breaker
      .run('a', async () => {
        called = true;
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toMatchObject({ code: 'ERR_CIRCUIT_OPEN', key: 'a', retryAfterMs: OPEN - 4_000 });
    expect(called).toBe(false);
  });

  it('counts only the failures within the window', async () => {
    const { breaker, advance } = setup(2);
    await failTimes(breaker, 'a', 1);
    advance(WINDOW);
    await failTimes(breaker, 'a', 1);
    expect(breaker.state('a')).toBe('closed');
    advance(WINDOW - 1);
    await failTimes(breaker, 'a', 1);
    expect(breaker.state('a')).toBe('open');
  });

  it('does not count a rejection that isFailure says is not the upstream failing, nor successes in between', async () => {
    const { breaker } = setup(2);
    const notFailure = () => false;
    for (let i = 0; i < 5; i += 1) await expect(breaker.run('a', boom, notFailure)).rejects.toThrow('upstream down');
    expect(breaker.state('a')).toBe('closed');
    await failTimes(breaker, 'a', 1);
    await breaker.run('a', async () => 'ok');
    await failTimes(breaker, 'a', 1);
    expect(breaker.state('a')).toBe('open');
  });

  it('keeps each key to itself', async () => {
    const { breaker } = setup(1);
    await failTimes(breaker, 'dead.example:11434', 1);
    expect(breaker.state('dead.example:11434')).toBe('open');
    expect(breaker.state('alive.example:11434')).toBe('closed');
    await expect(breaker.run('alive.example:11434', async () => 'fine')).resolves.toBe('fine');
  });

  it('after openMs lets one trial through at a time; its success closes the circuit', async () => {
    const { breaker, advance } = setup(1);
    await failTimes(breaker, 'a', 1);
    advance(OPEN - 1);
    expect(breaker.state('a')).toBe('open');
    advance(1);
    expect(breaker.state('a')).toBe('half_open');

    const trial = deferred<string>();
    const running = breaker.run('a', () => trial.promise);
    let secondCalled = false;
    const second = await breaker
      .run('a', async () => {
        secondCalled = true;
      })
      .catch((e: unknown) => e);
    expect(second).toBeInstanceOf(CircuitOpenError);
    expect((second as CircuitOpenError).retryAfterMs).toBe(OPEN);
    expect(secondCalled).toBe(false);

    trial.resolve('back');
    await expect(running).resolves.toBe('back');
    expect(breaker.state('a')).toBe('closed');
    await expect(breaker.run('a', async () => 'again')).resolves.toBe('again');
  });

  it('reopens for openMs when the trial fails', async () => {
    const { breaker, advance } = setup(1);
    await failTimes(breaker, 'a', 1);
    advance(OPEN);
    await failTimes(breaker, 'a', 1);
    expect(breaker.state('a')).toBe('open');
    const error = await breaker.run('a', async () => 'x').catch((e: unknown) => e);
    expect(error).toMatchObject({ retryAfterMs: OPEN });
    advance(OPEN);
    expect(breaker.state('a')).toBe('half_open');
  });

  it('closes when the trial is answered with an error that is not a failure (the upstream is up)', async () => {
    const { breaker, advance } = setup(1);
    await failTimes(breaker, 'a', 1);
    advance(OPEN);
    await expect(breaker.run('a', boom, () => false)).rejects.toThrow('upstream down');
    expect(breaker.state('a')).toBe('closed');
  });

  it('a freshly closed circuit starts counting from zero', async () => {
    const { breaker, advance } = setup(2);
    await failTimes(breaker, 'a', 2);
    advance(OPEN);
    await breaker.run('a', async () => 'trial ok');
    await failTimes(breaker, 'a', 1);
    expect(breaker.state('a')).toBe('closed');
  });

  it('ignores the outcome of calls that started before the circuit last opened or closed', async () => {
    const { breaker, advance } = setup(1);
    const slowFailure = deferred<never>();
    const slowSuccess = deferred<string>();
    const stale = breaker.run('a', () => slowFailure.promise);
    const staleOk = breaker.run('a', () => slowSuccess.promise);
    await failTimes(breaker, 'a', 1);
    advance(OPEN);
    expect(breaker.state('a')).toBe('half_open');

    // A success from before the circuit opened is no trial: the circuit stays half-open.
    slowSuccess.resolve('late');
    await expect(staleOk).resolves.toBe('late');
    expect(breaker.state('a')).toBe('half_open');

    await breaker.run('a', async () => 'trial ok');
    expect(breaker.state('a')).toBe('closed');
    // With a threshold of 1 this failure would reopen the circuit, were it counted.
    slowFailure.reject(new Error('late failure'));
    await expect(stale).rejects.toThrow('late failure');
    expect(breaker.state('a')).toBe('closed');
  });

  it('forgets idle upstreams, keeping those with a failure in the window, an open circuit or a call in flight', async () => {
    const { breaker, advance } = setup(2);
    await breaker.run('ok', async () => 1);
    await failTimes(breaker, 'one-failure', 1);
    await failTimes(breaker, 'opened', 2);
    const busy = deferred<string>();
    const inFlight = breaker.run('busy', () => busy.promise);
    advance(WINDOW / 2);
    await failTimes(breaker, 'recent', 1);
    expect(breaker.size).toBe(5);

    advance(WINDOW / 2);
    await breaker.run('other', async () => 1);
    // 'ok' and 'one-failure' have nothing left in the window; 'opened' is still open
    expect(breaker.size).toBe(4);
    expect(breaker.state('opened')).toBe('open');
    // the failure of 'recent' still counts
    await failTimes(breaker, 'recent', 1);
    expect(breaker.state('recent')).toBe('open');

    advance(OPEN + WINDOW);
    expect(breaker.state('opened')).toBe('half_open');
    await breaker.run('other', async () => 1);
    // the pauses of 'opened' and 'recent' ended a window ago: gone, so they start closed
    expect(breaker.state('opened')).toBe('closed');
    expect(breaker.size).toBe(2);

    busy.resolve('done');
    await inFlight;
    advance(WINDOW);
    await breaker.run('other', async () => 1);
    expect(breaker.size).toBe(1);
  });
});
