import { Ollama, type ChatResponse, type Message, type ModelResponse } from 'ollama';
import type { Redis } from 'ioredis';
import { type CircuitBreaker, CircuitOpenError } from '../../infra/circuit-breaker.js';
import type { Clock } from '../../infra/clock.js';
import type { Logger } from '../../infra/logger.js';
import { OutboundRefusedError, type GuardedFetch } from '../../infra/outbound.js';
import { AppError } from '../../shared/errors.js';
import type { OllamaKeyService } from './service.js';

export interface ProxySettings {
  /** The operator's Ollama: used by users without a base URL of their own. */
  defaultBaseUrl: string | null;
  /** Prompt and reply tokens a user may spend per UTC day; 0: no limit. */
  dailyTokenLimit: number;
}

/**
 * Who a reply is for: a signed-in user (their stored key and base URL, else the operator's
 * model), or an anonymous chat (always the operator's model). Each has its own token budget.
 */
export type AiCaller = { userId: string } | { anonymousId: string };

const budgetOwner = (caller: AiCaller) => ('userId' in caller ? caller.userId : `anon:${caller.anonymousId}`);

export interface ChatInput {
  model: string;
  messages: Message[];
  options?: Record<string, unknown> | undefined;
}

/** A reply streaming from upstream: its parts, and how to stop it (a client gone away). */
export interface ChatStream {
  parts: AsyncIterable<ChatResponse>;
  abort(): void;
}

export interface ModelView {
  name: string;
  model: string;
  size: number;
  digest: string;
  modifiedAt: Date;
  family: string | null;
  parameterSize: string | null;
}

/** The part of an error from the ollama client that says what upstream answered. */
interface UpstreamError {
  status_code?: number;
  error?: string;
}

const DAY_SECONDS = 24 * 3600;

/**
 * The AI partner's way to a model: the user's own Ollama (with their stored key) or the
 * operator's, through the official client on a fetch that refuses private and loopback
 * addresses the operator did not configure, follows no redirect, and times out on a dead
 * connection or a silent stream. A host failing again and again is cut off for a while (a
 * circuit breaker) so its users get a fast 503 instead of a hanging request.
 */
export class OllamaProxy {
  constructor(
    private readonly dependencies: { keys: OllamaKeyService; fetch: GuardedFetch; breaker: CircuitBreaker; redis: Redis; clock: Clock; logger: Logger },
    private readonly settings: ProxySettings,
  ) {}

  /** The user's upstream and the headers that carry their key; 503 ai_unavailable when there is none. */
  private async upstreamFor(caller: AiCaller): Promise<{ host: string; headers: Record<string, string> }> {
    const credentials = 'userId' in caller ? await this.dependencies.keys.credentialsOf(caller.userId) : null;
    const host = credentials?.baseUrl ?? this.settings.defaultBaseUrl;
    if (!host)
      throw new AppError(
        'ai_unavailable',
        'The AI partner is not available: no Ollama server is configured (store your key with your own base URL, or ask the operator to set OLLAMA_BASE_URL)',
      );
    return { host, headers: credentials ? { authorization: `Bearer ${credentials.apiKey}` } : {} };
  }

  /** One client per request: the user's headers, and a signal of ours on every fetch (the client has none before the headers). */
  private client(upstream: { host: string; headers: Record<string, string> }, signal: AbortSignal): Ollama {
    const guarded = this.dependencies.fetch;
    return new Ollama({
      host: upstream.host,
      headers: upstream.headers,
      fetch: ((input: string, init?: RequestInit) =>
        guarded(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal })) as typeof fetch,
    });
  }

  private budgetKey(caller: AiCaller): string {
    return `ai:tokens:${budgetOwner(caller)}:${this.dependencies.clock.now().toISOString().slice(0, 10)}`;
  }

  private async checkBudget(caller: AiCaller): Promise<void> {
    if (!this.settings.dailyTokenLimit) return;
    const used = Number((await this.dependencies.redis.get(this.budgetKey(caller))) ?? 0);
    if (used >= this.settings.dailyTokenLimit)
      throw new AppError('ai_budget_exceeded', `You have used today's ${this.settings.dailyTokenLimit} AI tokens; more tomorrow (UTC)`, {
        used,
        limit: this.settings.dailyTokenLimit,
      });
  }

  private async spend(caller: AiCaller, tokens: number): Promise<void> {
    if (!this.settings.dailyTokenLimit || tokens <= 0) return;
    const key = this.budgetKey(caller);
    await this.dependencies.redis
      .multi()
      .incrby(key, tokens)
      .expire(key, 2 * DAY_SECONDS)
      .exec();
  }

  /**
   * Opens a streamed chat: resolves once upstream answered (so a refusal is an HTTP status,
   * not a broken stream), with the parts to relay. The tokens spent are counted when the reply
   * is done (a reply cut off before its last chunk counts a token a chunk it streamed, as Ollama
   * streams them); `abort` (or `signal`) cancels the upstream request.
   */
  async chat(caller: AiCaller, input: ChatInput, signal: AbortSignal): Promise<ChatStream> {
    await this.checkBudget(caller);
    const upstream = await this.upstreamFor(caller);
    const controller = new AbortController();
    const stop = () => controller.abort();
    signal.addEventListener('abort', stop, { once: true });
    if (signal.aborted) stop();
    const client = this.client(upstream, controller.signal);
    try {
      const iterator = await this.guarded(
        upstream.host,
        () => client.chat({ model: input.model, messages: input.messages, stream: true, ...(input.options ? { options: input.options } : {}) }),
        controller.signal,
      );
      const spend = (tokens: number) => this.spend(caller, tokens);
      const logger = this.dependencies.logger;
      async function* relay(): AsyncGenerator<ChatResponse> {
        let streamed = 0;
        let counted = false;
        try {
          for await (const part of iterator) {
            // counted before the last chunk goes out: a consumer may stop once it has it
            if (part.done) {
              counted = true;
              await spend((part.prompt_eval_count ?? 0) + (part.eval_count ?? 0));
            } else streamed += 1;
            yield part;
          }
        } finally {
          signal.removeEventListener('abort', stop);
          iterator.abort();
          controller.abort();
          // cut off (the client left, the server stopped it, upstream broke): what streamed was generated all the same
          if (!counted)
            await spend(streamed).catch((error: unknown) =>
              logger.warn({ err: error, caller: budgetOwner(caller) }, 'could not count the tokens of a cut-off reply'),
            );
        }
      }
      return {
        parts: relay(),
        abort: () => {
          logger.debug({ caller: budgetOwner(caller) }, 'the client left: the upstream chat is cancelled');
          iterator.abort();
          controller.abort();
        },
      };
    } catch (error) {
      signal.removeEventListener('abort', stop);
      controller.abort();
      throw error;
    }
  }

  async listModels(userId: string): Promise<ModelView[]> {
    const upstream = await this.upstreamFor({ userId });
    const controller = new AbortController();
    try {
      const { models } = await this.guarded(upstream.host, () => this.client(upstream, controller.signal).list(), controller.signal);
      return models.map((model: ModelResponse) => ({
        name: model.name,
        model: model.model,
        size: model.size,
        digest: model.digest,
        modifiedAt: new Date(model.modified_at),
        family: model.details?.family ?? null,
        parameterSize: model.details?.parameter_size ?? null,
      }));
    } finally {
      controller.abort();
    }
  }

  /**
   * Runs a call upstream through the host's circuit breaker and turns what can go wrong into
   * the client's error: a refused address, a missing model, a host that is down. A call we
   * cancelled (`cancelled`: the client left, the server is stopping) says nothing of the host.
   */
  private async guarded<T>(baseUrl: string, call: () => Promise<T>, cancelled: AbortSignal): Promise<T> {
    const host = new URL(baseUrl).host;
    try {
      return await this.dependencies.breaker.run(host, call, (error) => {
        if (cancelled.aborted || error instanceof OutboundRefusedError) return false;
        const status = (error as UpstreamError).status_code;
        return status === undefined || status >= 500;
      });
    } catch (error) {
      if (error instanceof CircuitOpenError) {
        const retryAfter = Math.max(1, Math.ceil(error.retryAfterMs / 1000));
        throw new AppError(
          'ai_unavailable',
          'The AI model is not answering; try again shortly',
          { retryAfterSeconds: retryAfter },
          { 'retry-after': String(retryAfter) },
        );
      }
      if (cancelled.aborted) throw new AppError('ai_unavailable', 'The request to the model was cancelled');
      if (error instanceof OutboundRefusedError)
        throw new AppError(
          'base_url_refused',
          'Your Ollama base URL is not reachable from this server: use a public address (private and loopback ones are refused)',
        );
      const { status_code: status, error: message } = error as UpstreamError;
      if (status === 404) throw new AppError('ai_model_not_found', `The model is not available on the Ollama server${message ? `: ${message}` : ''}`);
      if (status === 401 || status === 403) throw new AppError('ai_key_rejected', 'The Ollama server refused your key: store a valid one');
      if (status !== undefined && status < 500) throw new AppError('bad_request', `The Ollama server refused the request${message ? `: ${message}` : ''}`);
      this.dependencies.logger.warn({ err: error, host }, 'an Ollama server failed');
      throw new AppError('ai_unavailable', 'The AI model is not answering; try again shortly');
    }
  }
}
