import { cryptoWaitReady } from "@polkadot/util-crypto";
import { Duration, Effect, Either, ParseResult, Schedule, Schema } from "effect";
import { ChainUnavailable } from "../errors.ts";
import type { ChainError } from "../errors.ts";
import type { LocalBackend } from "./backend.ts";
import { RpcEnvelope, rpcResult } from "./rpc.ts";
import type { RpcRequest } from "./rpc.ts";

const decodeEnvelope = Schema.decodeUnknownEither(RpcEnvelope);

export interface LocalClientOptions {
  /** How long a read keeps retrying an unreachable owner before failing (the block stream never gives up). */
  readonly reconnectTimeoutMs?: number;
}

/** A backend that forwards to an owner's loopback server (see `serveBackend`). */
export const connectBackend = (url: string, options: LocalClientOptions = {}): Effect.Effect<LocalBackend, ChainError> =>
  Effect.gen(function* () {
    yield* Effect.promise(() => cryptoWaitReady());
    const endpoint = `${url.replace(/\/$/, "")}/rpc`;
    const unavailable = (reason: string) => new ChainUnavailable({ endpoint, reason });

    const once = <A, I>(request: RpcRequest, result: Schema.Schema<A, I>, timeoutMs: number): Effect.Effect<A, ChainError> =>
      Effect.gen(function* () {
        const body = yield* Effect.tryPromise({
          try: (signal) =>
            fetch(endpoint, {
              method: "POST",
              body: JSON.stringify(request),
              headers: { "content-type": "application/json" },
              signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
            }).then((r) => r.json()),
          catch: (cause) => unavailable(cause instanceof Error ? cause.message : String(cause)),
        });
        const envelope = decodeEnvelope(body);
        if (Either.isLeft(envelope)) return yield* unavailable(`bad reply: ${ParseResult.TreeFormatter.formatErrorSync(envelope.left)}`);
        if (!envelope.right.ok) return yield* Effect.fail(envelope.right.error);
        return yield* Either.mapLeft(Schema.decodeUnknownEither(result)(envelope.right.result), (e) =>
          unavailable(`bad result: ${ParseResult.TreeFormatter.formatErrorSync(e)}`),
        );
      });

    const retryBudget = Duration.millis(options.reconnectTimeoutMs ?? 15_000);
    const reconnecting = Schedule.exponential(Duration.millis(25)).pipe(
      Schedule.either(Schedule.spaced(Duration.millis(500))),
      Schedule.upTo(retryBudget),
    );
    const read = <A, I>(request: RpcRequest, result: Schema.Schema<A, I>, timeoutMs = 10_000) =>
      Effect.retry(once(request, result, timeoutMs), { schedule: reconnecting, while: (e) => e._tag === "ChainUnavailable" });

    const info = yield* read({ _tag: "Info" }, rpcResult.Info);
    return {
      info,
      head: read({ _tag: "Head" }, rpcResult.Head),
      blocksAfter: (after, waitMs) => once({ _tag: "BlocksAfter", after, waitMs }, rpcResult.BlocksAfter, waitMs + 5_000),
      timestamp: (block) => read({ _tag: "Timestamp", block }, rpcResult.Timestamp),
      nonce: (account) => read({ _tag: "Nonce", account }, rpcResult.Nonce),
      uidOf: (hotkey) => read({ _tag: "UidOf", hotkey }, rpcResult.UidOf),
      // Not retried: a submission whose reply was lost may have been applied; the caller decides.
      submit: (signed) => Effect.asVoid(once({ _tag: "Submit", signed }, rpcResult.Submit, 10_000)),
      view: read({ _tag: "View" }, rpcResult.View),
    } satisfies LocalBackend;
  });
