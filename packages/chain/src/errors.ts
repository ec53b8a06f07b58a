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

/** Only validators (stake above the permit threshold) may set weights (NeuronNoValidatorPermit). */
export class NoValidatorPermit extends Schema.TaggedError<NoValidatorPermit>()("NoValidatorPermit", {
  hotkey: Schema.String,
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
  | UnknownBlock;

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
);
