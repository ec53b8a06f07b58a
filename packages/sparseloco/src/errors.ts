/** Typed failures of the codec and of the wire format. */
import { Data } from "effect"

/** Why compress / aggregate refused its input. */
export type CodecErrorReason =
  | "BadParams"
  | "BadShape"
  | "LengthMismatch"
  | "NonFinite"
  | "PeerMismatch"
  | "NoPeers"

export class CodecError extends Data.TaggedError("CodecError")<{
  readonly reason: CodecErrorReason
  readonly message: string
}> {}

/** Why an encoded update was rejected by the strict decoder. */
export type WireErrorReason =
  | "Truncated"
  | "BadMagic"
  | "UnknownVersion"
  | "BadChecksum"
  | "BadHeader"
  | "UnknownCoding"
  | "BadLength"
  | "BadIndex"
  | "DuplicateIndex"
  | "BadCode"
  | "BadStats"
  | "ShapeMismatch"
  | "TrailingBytes"

export class WireError extends Data.TaggedError("WireError")<{
  readonly reason: WireErrorReason
  readonly message: string
}> {}
