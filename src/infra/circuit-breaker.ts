/**
 * A circuit breaker per upstream (key): after `failureThreshold` failures within `windowMs` the
 * upstream is given up on for `openMs` (calls fail at once with CircuitOpenError instead of each
 * waiting for its own timeout), then one trial call decides whether it is back.
 */

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  failureThreshold: number;
  windowMs: number;
  openMs: number;
  /** Milliseconds, e.g. Date.now; injected so tests move time by hand. */
  now: () => number;
}

/** The upstream `key` is given up on for now; try again in `retryAfterMs`. */
export class CircuitOpenError extends Error {
  override name = 'CircuitOpenError';
  readonly code = 'ERR_CIRCUIT_OPEN';
  constructor(
    readonly key: string,
    readonly retryAfterMs: number,
  ) {
    super(`${key} is failing; calls to it are paused for ${Math.ceil(retryAfterMs / 1000)} s`);
  }
}

interface Circuit {
  /** Start times of the failures within the window, oldest first (closed only). */
  failures: number[];
  openUntil: number;
  trialInFlight: boolean;
  /** Calls that started in an earlier generation (before the last open or close) change nothing. */
  generation: number;
  inFlight: number;
}

export class CircuitBreaker {
  private readonly circuits = new Map<string, Circuit>();
  private lastSweep: number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.lastSweep = options.now();
  }

  /**
   * Runs `work` unless the circuit of `key` is open. A rejection counts as a failure when
   * `isFailure` says so (every rejection unless given); one that does not (a 4xx, the caller's own
   * abort) shows the upstream answering, and closes a half-open circuit like a success.
   */
  async run<T>(key: string, work: () => Promise<T>, isFailure: (error: unknown) => boolean = () => true): Promise<T> {
    const now = this.options.now();
    this.sweep(now);
    const circuit = this.circuits.get(key) ?? this.create(key);
    const state = this.stateOf(circuit, now);
    if (state === 'open') throw new CircuitOpenError(key, circuit.openUntil - now);
    // While the trial runs the others wait it out: if it fails, the circuit is open for openMs again.
    if (state === 'half_open' && circuit.trialInFlight) throw new CircuitOpenError(key, this.options.openMs);

    const trial = state === 'half_open';
    const generation = circuit.generation;
    if (trial) circuit.trialInFlight = true;
    circuit.inFlight += 1;
    try {
      const result = await work();
      this.settle(circuit, generation, trial, false);
      return result;
    } catch (error) {
      this.settle(circuit, generation, trial, isFailure(error));
      throw error;
    } finally {
      circuit.inFlight -= 1;
    }
  }

  state(key: string): CircuitState {
    const circuit = this.circuits.get(key);
    return circuit ? this.stateOf(circuit, this.options.now()) : 'closed';
  }

  /** How many upstreams have a circuit held in memory. */
  get size(): number {
    return this.circuits.size;
  }

  private create(key: string): Circuit {
    const circuit: Circuit = { failures: [], openUntil: 0, trialInFlight: false, generation: 0, inFlight: 0 };
    this.circuits.set(key, circuit);
    return circuit;
  }

  private stateOf(circuit: Circuit, now: number): CircuitState {
    if (circuit.openUntil === 0) return 'closed';
    return now < circuit.openUntil ? 'open' : 'half_open';
  }

  private settle(circuit: Circuit, generation: number, trial: boolean, failed: boolean): void {
    if (generation !== circuit.generation) return;
    const now = this.options.now();
    if (trial) {
      circuit.trialInFlight = false;
      if (failed) this.open(circuit, now);
      else this.close(circuit);
      return;
    }
    if (!failed) return;
    circuit.failures = circuit.failures.filter((at) => at > now - this.options.windowMs);
    circuit.failures.push(now);
    if (circuit.failures.length >= this.options.failureThreshold) this.open(circuit, now);
  }

  private open(circuit: Circuit, now: number): void {
    circuit.openUntil = now + this.options.openMs;
    circuit.failures = [];
    circuit.generation += 1;
  }

  private close(circuit: Circuit): void {
    circuit.openUntil = 0;
    circuit.failures = [];
    circuit.generation += 1;
  }

  /**
   * Keys are upstream hosts, some given by users, so idle circuits are dropped, at most once per
   * window: a closed one with no failure left in the window, and an open one whose pause ended a
   * window ago with no call since (it would start closed again, without a trial).
   */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.options.windowMs) return;
    this.lastSweep = now;
    for (const [key, circuit] of this.circuits) {
      if (circuit.inFlight > 0) continue;
      const idle =
        circuit.openUntil === 0 ? circuit.failures.every((at) => at <= now - this.options.windowMs) : circuit.openUntil <= now - this.options.windowMs;
      if (idle) this.circuits.delete(key);
    }
  }
}
