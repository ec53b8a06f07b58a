/**
 * The runtime's failures: a small union of tagged errors, each naming the phase of a node that
 * failed and carrying, as `cause`, the typed error of the package below that made it fail (a
 * transport `StoreError`, a chain `ChainError`, a data `ShardCorruptError`, what an engine threw).
 * A caller can tell a dead store (`StoreFailure`) from a corrupt upload (`CodecFailure`) from a
 * broken trainer (`EngineFailure`) by `_tag`, and reach the package's own error by `cause`.
 *
 * Every member has `phase` and a readable `reason` (derived from `cause` where there is one), and
 * its `message` is `phase: reason`, which is what the CLI prints.
 */
import type { ChainError, IdentityError, LocalStoreError } from "@covenant/chain"
import type { BadSignature, InvalidContext, StoreError, TooEarly, TooLate } from "@covenant/transport"
import { Data, Effect } from "effect"
import type { DataIoError, ManifestError, SampleOutOfRangeError, SamplerError, ShardCorruptError, ShardScheduleError, TokenizerError } from "./data/errors.ts"
import * as External from "./sim/external.ts"

/** `_tag: reason` (or `_tag: message`) of another package's tagged error. */
const describeTagged = (error: { readonly _tag: string; readonly message?: string; readonly reason?: unknown }): string =>
  `${error._tag}: ${typeof error.reason === "string" ? error.reason : error.message ?? ""}`

/** What the transport package fails with: a storage operation, or a signed envelope. */
export type TransportCause = StoreError | TooEarly | TooLate | BadSignature | InvalidContext
/** What the chain package fails with: a chain operation, a key, the local chain's files. */
export type ChainCause = ChainError | IdentityError | LocalStoreError
/** What the runtime's own data layer (src/data) fails with. */
export type DataCause = ShardCorruptError | ShardScheduleError | ManifestError | SampleOutOfRangeError | SamplerError | DataIoError | TokenizerError

/** The object store failed or refused (missing object, unauthorized, unavailable, bad signature, too late). */
export class StoreFailure extends Data.TaggedError("StoreFailure")<{ readonly phase: string; readonly cause: TransportCause }> {
  get reason(): string {
    return describeTagged(this.cause)
  }
  override get message(): string {
    return `${this.phase}: ${this.reason}`
  }
}

/** The chain failed or refused (unavailable, not registered, rate-limited, a bad key or local chain file). */
export class ChainFailure extends Data.TaggedError("ChainFailure")<{ readonly phase: string; readonly cause: ChainCause }> {
  get reason(): string {
    return describeTagged(this.cause)
  }
  override get message(): string {
    return `${this.phase}: ${this.reason}`
  }
}

/** The engine (or a trainer on it) threw, or could not be created: `cause` is what it threw. */
export class EngineFailure extends Data.TaggedError("EngineFailure")<{ readonly phase: string; readonly cause: unknown }> {
  get reason(): string {
    const c = this.cause
    return typeof c === "object" && c !== null && "_tag" in c && typeof c._tag === "string" ? describeTagged(c as { _tag: string }) : String(c)
  }
  override get message(): string {
    return `${this.phase}: ${this.reason}`
  }
}

/** The run's data could not be read or sampled (a corrupt shard, a missing manifest, a bad schedule). */
export class DataFailure extends Data.TaggedError("DataFailure")<{ readonly phase: string; readonly cause: DataCause }> {
  get reason(): string {
    const e = this.cause
    const file = "file" in e ? ` (${e.file}${"offset" in e && e.offset !== undefined ? ` at byte ${String(e.offset)}` : ""})` : ""
    return `${e._tag}: ${"reason" in e ? e.reason : ""}${file}`
  }
  override get message(): string {
    return `${this.phase}: ${this.reason}`
  }
}

/** Bytes that do not decode (or values that do not encode): an update, a record, a checkpoint. */
export class CodecFailure extends Data.TaggedError("CodecFailure")<{ readonly phase: string; readonly reason: string }> {
  override get message(): string {
    return `${this.phase}: ${this.reason}`
  }
}

/** The node's own state folder could not be written or read back (--state-dir). */
export class StateFailure extends Data.TaggedError("StateFailure")<{ readonly phase: string; readonly reason: string }> {
  override get message(): string {
    return `${this.phase}: ${this.reason}`
  }
}

/** Flags that contradict each other or name nothing; the CLI exits 2 on it, as on @effect/cli's own flag errors. */
export class FlagError extends Data.TaggedError("FlagError")<{ readonly reason: string }> {
  get phase(): "flags" {
    return "flags"
  }
  override get message(): string {
    return `${this.phase}: ${this.reason}`
  }
}

/** Everything else a node cannot go on from: an invariant, the run's timing, the swarm's own bookkeeping. */
export class RuntimeError extends Data.TaggedError("RuntimeError")<{ readonly phase: string; readonly reason: string }> {
  override get message(): string {
    return `${this.phase}: ${this.reason}`
  }
}

/** A runtime failure: match on `_tag`; every member has `phase`, `reason` and `message` (`phase: reason`). */
export type RuntimeFailure = StoreFailure | ChainFailure | EngineFailure | DataFailure | CodecFailure | StateFailure | FlagError | RuntimeError

const failureTags: Record<RuntimeFailure["_tag"], true> = {
  StoreFailure: true, ChainFailure: true, EngineFailure: true, DataFailure: true, CodecFailure: true, StateFailure: true, FlagError: true, RuntimeError: true,
}
export const isRuntimeFailure = (e: unknown): e is RuntimeFailure =>
  typeof e === "object" && e !== null && "_tag" in e && typeof e._tag === "string" && Object.hasOwn(failureTags, e._tag)

const transportTags: Record<TransportCause["_tag"], true> = {
  NotFound: true, Unauthorized: true, Unavailable: true, InvalidKey: true, InvalidRange: true, TooLarge: true,
  TooEarly: true, TooLate: true, BadSignature: true, InvalidContext: true,
}
const chainTags: Record<ChainCause["_tag"], true> = {
  ChainUnavailable: true, RuntimeMismatch: true, CallRejected: true, NotRegistered: true, RegistrationRefused: true, WeightsRateLimited: true,
  NoValidatorPermit: true, InvalidWeights: true, WeightVersionKeyTooLow: true, CommitmentTooLarge: true, CommitmentFormatError: true,
  UnsupportedWeightsPath: true, DispatchFailed: true, UnknownBlock: true, SubnetNotFound: true, ChainTimeout: true, IdentityError: true, LocalStoreError: true,
}
const dataTags: Record<DataCause["_tag"], true> = {
  ShardCorruptError: true, ShardScheduleError: true, ManifestError: true, SampleOutOfRangeError: true, SamplerError: true, DataIoError: true, TokenizerError: true,
}

/** The runtime failure `inPhase` turns a package's error `E` into. */
export type FailureOf<E> = E extends TransportCause ? StoreFailure : E extends ChainCause ? ChainFailure : E extends DataCause ? DataFailure : RuntimeError

type Tagged = { readonly _tag: string; readonly message?: string; readonly reason?: unknown }

/**
 * Wraps a tagged failure of another package as the runtime failure of `phase` that carries it:
 * a transport error becomes a `StoreFailure`, a chain error a `ChainFailure`, a data error a
 * `DataFailure`; any other tagged error (credentials, a spec) a `RuntimeError` naming its tag.
 */
export const inPhase = (phase: string) => <E extends Tagged>(error: E): FailureOf<E> => {
  const tag = error._tag
  // A lookup of `_tag` in the tag tables does not narrow `E` for TypeScript; the tables are typed
  // records of exactly each cause union's tags, so the casts below say what the lookup checked.
  const wrapped = Object.hasOwn(transportTags, tag) ? new StoreFailure({ phase, cause: error as unknown as TransportCause })
    : Object.hasOwn(chainTags, tag) ? new ChainFailure({ phase, cause: error as unknown as ChainCause })
    : Object.hasOwn(dataTags, tag) ? new DataFailure({ phase, cause: error as unknown as DataCause })
    : new RuntimeError({ phase, reason: describeTagged(error) })
  return wrapped as FailureOf<E>
}

/**
 * A synchronous call into the engine (its API throws): what it throws becomes an `EngineFailure`
 * of `phase`. Every runtime call into an engine or trainer goes through this or `awaitEngine`.
 */
export const tryEngine = <A>(phase: string, run: () => A): Effect.Effect<A, EngineFailure> =>
  Effect.try({ try: run, catch: (cause) => new EngineFailure({ phase, cause }) })

/** An engine call that returns a promise (a step, a readback), routed through the simulator's gate (sim/external.ts). */
export const awaitEngine = <A>(phase: string, run: () => PromiseLike<A>): Effect.Effect<A, EngineFailure> =>
  External.tryPromise({ try: run, catch: (cause) => new EngineFailure({ phase, cause }) })
