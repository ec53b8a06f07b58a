import { ApiPromise, WsProvider } from "@polkadot/api";
import type { SubmittableExtrinsic } from "@polkadot/api/types";
import type { KeyringPair } from "@polkadot/keyring/types";
import type { DispatchError } from "@polkadot/types/interfaces";
import type { Registry } from "@polkadot/types/types";
import { Duration, Effect, Schedule, Stream } from "effect";
import type { Scope } from "effect";
import type { BlockInfo } from "../Chain.ts";
import { ChainTimeout, ChainUnavailable, describeCause, DispatchFailed, RuntimeMismatch, UnknownBlock } from "../errors.ts";

/**
 * What a client needs from a runtime, as `tx.<pallet>.<call>`, `query.<pallet>.<storage>`,
 * `consts.<pallet>.<constant>` or `call.<runtimeApi>.<method>`, named as @polkadot/api decorates them.
 */
export type RuntimeItem = `${"tx" | "query" | "consts" | "call"}.${string}.${string}`;

/** The generic part every Substrate client checks: block time from `Timestamp.now`. */
export const substrateRequirements: ReadonlyArray<RuntimeItem> = ["query.timestamp.now", "query.system.account"];

type Decorated = Readonly<Record<string, Readonly<Record<string, unknown>> | undefined>>;

/** The items the connected runtime lacks (empty when it has them all). */
export const missingRuntimeItems = (api: ApiPromise, required: ReadonlyArray<RuntimeItem>): ReadonlyArray<RuntimeItem> => {
  const roots: Record<string, Decorated> = { tx: api.tx, query: api.query, consts: api.consts, call: api.call };
  return required.filter((item) => {
    const [root = "", section = "", name = ""] = item.split(".");
    return roots[root]?.[section]?.[name] === undefined;
  });
};

/** A runtime dispatch error as a typed `DispatchFailed`, module errors named through the metadata. */
export const decodeDispatchError = (registry: Registry, error: DispatchError): DispatchFailed => {
  if (error.isModule) {
    const meta = registry.findMetaError(error.asModule);
    return new DispatchFailed({ pallet: meta.section, error: meta.name, docs: meta.docs.join(" ") });
  }
  if (error.isToken) return new DispatchFailed({ pallet: "token", error: error.asToken.type, docs: "" });
  if (error.isArithmetic) return new DispatchFailed({ pallet: "arithmetic", error: error.asArithmetic.type, docs: "" });
  return new DispatchFailed({ pallet: "system", error: error.type, docs: "" });
};

/**
 * WsProvider declares `ttl` as `number | null | undefined`, which `ProviderInterface` (optional
 * `number | null`) refuses under exactOptionalPropertyTypes; same value, narrowed type.
 */
class Provider extends WsProvider {
  override get ttl(): number | null {
    return super.ttl ?? null;
  }
  override clone(): Provider {
    return new Provider(this.endpoint);
  }
}

/** A connected Substrate node: the head, a block stream with timestamps, and extrinsic submission. */
export interface SubstrateNode {
  readonly api: ApiPromise;
  readonly endpoint: string;
  /** The runtime's target block time (2 x `timestamp.minimumPeriod`; 12 s when the runtime does not say). */
  readonly blockTimeMs: number;
  readonly head: Effect.Effect<BlockInfo, ChainUnavailable>;
  /** New heads with their timestamps; the subscription is renewed by the provider after a reconnect. */
  readonly blocks: Stream.Stream<BlockInfo, ChainUnavailable>;
  readonly timestampOf: (block: number) => Effect.Effect<number, ChainUnavailable | UnknownBlock>;
  /**
   * Signs, submits and waits until the extrinsic is in a block; dispatch errors become
   * `DispatchFailed`, and no inclusion within the submit timeout `ChainTimeout`.
   */
  readonly submit: (
    tx: SubmittableExtrinsic<"promise">,
    signer: KeyringPair,
  ) => Effect.Effect<{ readonly blockHash: string }, ChainUnavailable | DispatchFailed | ChainTimeout>;
}

export interface ConnectOptions {
  readonly required?: ReadonlyArray<RuntimeItem>;
  /** How long the first connection may take. */
  readonly connectTimeoutMs?: number;
  /** Delay between reconnection attempts after the node goes away. */
  readonly reconnectDelayMs?: number;
  /** How long `submit` waits for inclusion (default: `submitTimeoutBlocks` blocks of the runtime's block time). */
  readonly submitTimeoutMs?: number;
}

/** Blocks `submit` waits for inclusion by default: a healthy chain includes a transaction in one or two. */
export const submitTimeoutBlocks = 10;

/** The default inclusion deadline for a chain of `blockTimeMs` blocks (never under 10 s). */
export const defaultSubmitTimeoutMs = (blockTimeMs: number): number => Math.max(10_000, submitTimeoutBlocks * blockTimeMs);

/** Block time a runtime targets: twice `timestamp.minimumPeriod` (subtensor: 6 s -> 12 s). */
export const expectedBlockTimeMs = (api: ApiPromise): number => {
  const period = Number(api.consts["timestamp"]?.["minimumPeriod"]?.toString() ?? Number.NaN);
  return Number.isFinite(period) && period > 0 ? 2 * period : 12_000;
};

/** Connects, checks the runtime has every required item, and disconnects when the scope closes. */
export const connectSubstrate = (
  endpoint: string,
  options: ConnectOptions = {},
): Effect.Effect<SubstrateNode, ChainUnavailable | RuntimeMismatch, Scope.Scope> =>
  Effect.gen(function* () {
    const unavailable = (cause: unknown) => new ChainUnavailable({ endpoint, reason: describeCause(cause) });
    const connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
    // A failed or timed-out first connection stops the provider, which would otherwise retry forever.
    const api = yield* Effect.acquireRelease(
      Effect.suspend(() => {
        const provider = new Provider(endpoint, options.reconnectDelayMs ?? 1_000);
        return Effect.tryPromise({
          try: () => new ApiPromise({ provider, noInitWarn: true, throwOnConnect: true }).isReadyOrError,
          catch: (cause) => unavailable(`cannot connect to ${endpoint}: ${describeCause(cause)}`),
        }).pipe(
          Effect.timeoutFail({
            duration: Duration.millis(connectTimeoutMs),
            onTimeout: () => unavailable(`cannot connect to ${endpoint}: no connection after ${connectTimeoutMs} ms`),
          }),
          Effect.tapError(() => Effect.promise(() => provider.disconnect().catch(() => undefined))),
        );
      }),
      (a) => Effect.promise(() => a.disconnect().catch(() => undefined)),
    );
    const missing = missingRuntimeItems(api, [...substrateRequirements, ...(options.required ?? [])]);
    if (missing.length > 0) return yield* new RuntimeMismatch({ missing });

    // Read as text: without chain-specific type augmentation the storage value is a plain Codec.
    const timestampAt = (hash: Uint8Array | string): Effect.Effect<number, ChainUnavailable> =>
      Effect.tryPromise({ try: () => api.query.timestamp.now.at(hash), catch: unavailable }).pipe(
        Effect.flatMap((t) => {
          const ms = Number(t.toString());
          return Number.isFinite(ms) ? Effect.succeed(ms) : Effect.fail(unavailable(`timestamp.now is ${t.toString()}`));
        }),
      );

    const head = Effect.tryPromise({ try: () => api.rpc.chain.getHeader(), catch: unavailable }).pipe(
      Effect.flatMap((h) => Effect.map(timestampAt(h.hash), (timestampMs) => ({ number: h.number.toNumber(), timestampMs }))),
    );

    // One subscription per connection: a lost connection fails it, and the retry below subscribes
    // afresh once the provider has reconnected (rather than trusting the provider's resubscribe).
    const headers = Stream.async<{ number: number; hash: string }, ChainUnavailable>((emit) => {
      let unsubscribe: (() => void) | undefined;
      const onDisconnect = () => void emit.fail(unavailable("disconnected"));
      api.on("disconnected", onDisconnect);
      if (!api.isConnected) onDisconnect();
      api.rpc.chain
        .subscribeNewHeads((h) => {
          void emit.single({ number: h.number.toNumber(), hash: h.hash.toHex() });
        })
        .then(
          (u) => {
            unsubscribe = u;
          },
          (cause: unknown) => emit.fail(unavailable(cause)),
        );
      return Effect.sync(() => {
        api.off("disconnected", onDisconnect);
        if (api.isConnected) unsubscribe?.();
      });
    });
    const blocks = headers.pipe(
      Stream.mapEffect((h) => Effect.map(timestampAt(h.hash), (timestampMs) => ({ number: h.number, timestampMs, hash: h.hash }))),
      Stream.retry(Schedule.spaced(Duration.millis(options.reconnectDelayMs ?? 1_000))),
      // A fresh subscription repeats the current head.
      Stream.changesWith((a, b) => a.hash === b.hash),
      Stream.map(({ number, timestampMs }) => ({ number, timestampMs })),
    );

    const timestampOf = (block: number): Effect.Effect<number, ChainUnavailable | UnknownBlock> =>
      Effect.tryPromise({ try: () => api.rpc.chain.getBlockHash(block), catch: unavailable }).pipe(
        Effect.flatMap((hash): Effect.Effect<number, ChainUnavailable | UnknownBlock> =>
          hash.isEmpty ? Effect.fail(new UnknownBlock({ block })) : timestampAt(hash),
        ),
      );

    const blockTimeMs = expectedBlockTimeMs(api);
    const submitTimeoutMs = options.submitTimeoutMs ?? defaultSubmitTimeoutMs(blockTimeMs);

    const include = (tx: SubmittableExtrinsic<"promise">, signer: KeyringPair) =>
      Effect.async<{ readonly blockHash: string }, ChainUnavailable | DispatchFailed>((resume) => {
        let unsubscribe: (() => void) | undefined;
        let done = false;
        const finish = (outcome: Effect.Effect<{ readonly blockHash: string }, ChainUnavailable | DispatchFailed>) => {
          if (done) return;
          done = true;
          unsubscribe?.();
          resume(outcome);
        };
        tx.signAndSend(signer, { nonce: -1 }, (result) => {
          const status = result.status;
          if (status.isInBlock || status.isFinalized) {
            const blockHash = (status.isInBlock ? status.asInBlock : status.asFinalized).toHex();
            finish(result.dispatchError ? Effect.fail(decodeDispatchError(api.registry, result.dispatchError)) : Effect.succeed({ blockHash }));
          } else if (status.isDropped || status.isInvalid || status.isUsurped) {
            finish(Effect.fail(new DispatchFailed({ pallet: "transactionPool", error: status.type, docs: "" })));
          }
        }).then(
          (u) => {
            unsubscribe = u;
            if (done) u();
          },
          (cause: unknown) =>
            // The pool refuses invalid transactions (bad nonce, fees) before dispatch.
            finish(
              Effect.fail(
                api.isConnected
                  ? new DispatchFailed({ pallet: "transactionPool", error: "Invalid", docs: cause instanceof Error ? cause.message : String(cause) })
                  : unavailable(cause),
              ),
            ),
        );
        return Effect.sync(() => {
          done = true;
          unsubscribe?.();
        });
      });
    // A lost inclusion notification (dropped subscription, a node that stops producing) must not
    // hang the caller: interrupting `include` unsubscribes.
    const submit = (tx: SubmittableExtrinsic<"promise">, signer: KeyringPair) =>
      include(tx, signer).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(submitTimeoutMs),
          onTimeout: () => new ChainTimeout({ endpoint, operation: `submit ${tx.method.section}.${tx.method.method}`, afterMs: submitTimeoutMs }),
        }),
      );

    return { api, endpoint, blockTimeMs, head, blocks, timestampOf, submit } satisfies SubstrateNode;
  });
