import { Schema } from "effect";

// Schema.TaggedError rather than Data.TaggedError: these errors cross the local chain's loopback
// wire, and being Schemas they encode and decode there without a hand-written mapping.

/** The node could not be reached, or dropped the connection mid-request. */
export class ChainUnavailable extends Schema.TaggedError<ChainUnavailable>()("ChainUnavailable", {
  endpoint: Schema.String,
  reason: Schema.String,
}) {}

/** The connected runtime lacks pallets, calls, storage or runtime APIs this client relies on. */
export class RuntimeMismatch extends Schema.TaggedError<RuntimeMismatch>()("RuntimeMismatch", {
  missing: Schema.Array(Schema.String),
}) {}

/** A key, wallet file or seed could not be turned into a signer. */
export class IdentityError extends Schema.TaggedError<IdentityError>()("IdentityError", {
  source: Schema.String,
  reason: Schema.String,
}) {}

/** A commitment string is in no format this package knows, or a value cannot be encoded. */
export class CommitmentFormatError extends Schema.TaggedError<CommitmentFormatError>()("CommitmentFormatError", {
  reason: Schema.String,
}) {}

/** A call was refused before it could act: bad signature, replayed or future nonce, malformed. */
export class CallRejected extends Schema.TaggedError<CallRejected>()("CallRejected", {
  reason: Schema.Literal("BadSignature", "StaleNonce", "FutureNonce", "Malformed"),
  detail: Schema.String,
}) {}

/** The hotkey has no uid on this subnet (subtensor: HotKeyNotRegisteredInSubNet / AccountNotAllowedCommit). */
export class NotRegistered extends Schema.TaggedError<NotRegistered>()("NotRegistered", {
  hotkey: Schema.String,
}) {}

/** Registration failed: hotkey taken, subnet full, or (subtensor) it must be signed by the coldkey. */
export class RegistrationRefused extends Schema.TaggedError<RegistrationRefused>()("RegistrationRefused", {
  reason: Schema.Literal("AlreadyRegistered", "SubnetFull", "NeedsColdkey"),
  hotkey: Schema.String,
}) {}

/** Weights were set again before the rate limit elapsed (subtensor: SettingWeightsTooFast). */
export class WeightsRateLimited extends Schema.TaggedError<WeightsRateLimited>()("WeightsRateLimited", {
  lastSetBlock: Schema.Number,
  rateLimitBlocks: Schema.Number,
  currentBlock: Schema.Number,
}) {}

/**
 * Only validators (stake above the permit threshold) may set weights (NeuronNoValidatorPermit); a
 * node that declares the validator role needs one to lead. `reason` says what lacked it, where known.
 */
export class NoValidatorPermit extends Schema.TaggedError<NoValidatorPermit>()("NoValidatorPermit", {
  hotkey: Schema.String,
  reason: Schema.optional(Schema.String),
}) {}

/** The weight vector is invalid: length mismatch, unknown uid, duplicate uid, non-finite value. */
export class InvalidWeights extends Schema.TaggedError<InvalidWeights>()("InvalidWeights", {
  reason: Schema.String,
}) {}

/** The weights version key is below the subnet's (IncorrectWeightVersionKey). */
export class WeightVersionKeyTooLow extends Schema.TaggedError<WeightVersionKeyTooLow>()("WeightVersionKeyTooLow", {
  given: Schema.Number,
  required: Schema.Number,
}) {}

/** The commitment does not fit what the chain accepts (length, field count, SpaceLimitExceeded). */
export class CommitmentTooLarge extends Schema.TaggedError<CommitmentTooLarge>()("CommitmentTooLarge", {
  reason: Schema.String,
}) {}

/**
 * The subnet requires a weights path this client cannot take: drand-timelocked commit-reveal (CRv3+)
 * needs a drand-encrypted payload, which this package does not produce.
 */
export class UnsupportedWeightsPath extends Schema.TaggedError<UnsupportedWeightsPath>()("UnsupportedWeightsPath", {
  netuid: Schema.Number,
  reason: Schema.String,
}) {}

/** The netuid names no subnet on the connected chain (subtensor: SubNetworkDoesNotExist). */
export class SubnetNotFound extends Schema.TaggedError<SubnetNotFound>()("SubnetNotFound", {
  endpoint: Schema.String,
  netuid: Schema.Number,
}) {
  override get message(): string {
    return `subnet ${this.netuid} does not exist on ${this.endpoint}`;
  }
}

/** A chain call got no answer in time (e.g. an extrinsic's inclusion notification never came). */
export class ChainTimeout extends Schema.TaggedError<ChainTimeout>()("ChainTimeout", {
  endpoint: Schema.String,
  operation: Schema.String,
  afterMs: Schema.Number,
}) {
  override get message(): string {
    return `${this.operation} on ${this.endpoint}: no answer after ${this.afterMs} ms`;
  }
}

/** Any other runtime dispatch error, decoded from the chain's metadata. */
export class DispatchFailed extends Schema.TaggedError<DispatchFailed>()("DispatchFailed", {
  pallet: Schema.String,
  error: Schema.String,
  docs: Schema.String,
}) {}

/** A block (or its timestamp) that is not known: in the future, or pruned from the local history. */
export class UnknownBlock extends Schema.TaggedError<UnknownBlock>()("UnknownBlock", {
  block: Schema.Number,
}) {}

/** Errors a `Chain` operation may fail with. */
export type ChainError =
  | ChainUnavailable
  | RuntimeMismatch
  | CallRejected
  | NotRegistered
  | RegistrationRefused
  | WeightsRateLimited
  | NoValidatorPermit
  | InvalidWeights
  | WeightVersionKeyTooLow
  | CommitmentTooLarge
  | CommitmentFormatError
  | UnsupportedWeightsPath
  | DispatchFailed
  | UnknownBlock
  | SubnetNotFound
  | ChainTimeout;

/** The schema of every `ChainError`, for the loopback wire. */
export const ChainErrorSchema = Schema.Union(
  ChainUnavailable,
  RuntimeMismatch,
  CommitmentFormatError,
  CallRejected,
  NotRegistered,
  RegistrationRefused,
  WeightsRateLimited,
  NoValidatorPermit,
  InvalidWeights,
  WeightVersionKeyTooLow,
  CommitmentTooLarge,
  UnsupportedWeightsPath,
  DispatchFailed,
  UnknownBlock,
  SubnetNotFound,
  ChainTimeout,
);

/** One readable line for any chain error: its tag and its fields (for CLIs and logs). */
export const describeChainError = (error: ChainError): string => {
  const { _tag, ...fields } = JSON.parse(JSON.stringify(error)) as Record<string, unknown>;
  const custom = error._tag === "SubnetNotFound" || error._tag === "ChainTimeout" ? error.message : undefined;
  return `${_tag}: ${custom ?? Object.entries(fields).map(([k, v]) => `${k} ${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ")}`;
};

/**
 * A readable reason from whatever a connection library threw: an Error's message, a WebSocket
 * ErrorEvent's message (which `String()` renders as "[object ErrorEvent]"), or the value as JSON.
 */
export const describeCause = (cause: unknown): string => {
  if (cause instanceof Error) return cause.message;
  if (typeof cause === "string") return cause;
  if (typeof cause === "object" && cause !== null) {
    const c = cause as { readonly message?: unknown; readonly error?: unknown; readonly type?: unknown; readonly reason?: unknown; readonly code?: unknown };
    if (typeof c.message === "string" && c.message !== "") return c.message;
    if (c.error instanceof Error && c.error.message !== "") return c.error.message;
    if (typeof c.reason === "string" && c.reason !== "") return `${c.reason}${c.code === undefined ? "" : ` (code ${String(c.code)})`}`;
    if (typeof c.type === "string") return `${c.type} event${c.code === undefined ? "" : ` (code ${String(c.code)})`}`;
    try {
      const json = JSON.stringify(cause);
      if (json !== undefined && json !== "{}") return json;
    } catch {
      // fall through
    }
  }
  return String(cause);
};
