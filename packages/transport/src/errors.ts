import { Data } from "effect"

/** The object (or its bucket) does not exist. */
export class NotFound extends Data.TaggedError("NotFound")<{
  readonly bucket: string
  readonly key: string
}> {}

/** The store refused the credentials or the operation. */
export class Unauthorized extends Data.TaggedError("Unauthorized")<{
  readonly bucket: string
  readonly key: string
  readonly reason: string
}> {}

/**
 * The store could not be reached or failed. `transient` errors (network, 5xx, throttling)
 * are worth retrying; the rest are not.
 */
export class Unavailable extends Data.TaggedError("Unavailable")<{
  readonly bucket: string
  readonly key: string
  readonly transient: boolean
  readonly reason: string
}> {}

/** A key or bucket name that is not in the safe alphabet, or one that could escape its bucket. */
export class InvalidKey extends Data.TaggedError("InvalidKey")<{
  readonly key: string
  readonly reason: string
}> {}

/** A ranged read outside the object. */
export class InvalidRange extends Data.TaggedError("InvalidRange")<{
  readonly bucket: string
  readonly key: string
  readonly offset: number
  readonly length: number
  readonly size: number
}> {}

/** The object is larger than the reader allows (`maxBytes`): the read stopped at the cap. */
export class TooLarge extends Data.TaggedError("TooLarge")<{
  readonly bucket: string
  readonly key: string
  /** The size the store announced, or the bytes read when the read was cut off (> maxBytes). */
  readonly size: number
  readonly maxBytes: number
}> {}

/** The object's store timestamp lies before the window's upload interval. */
export class TooEarly extends Data.TaggedError("TooEarly")<{
  readonly key: string
  readonly storeTime: number
  readonly start: number
}> {}

/** The object's store timestamp lies after the window's upload interval. */
export class TooLate extends Data.TaggedError("TooLate")<{
  readonly key: string
  readonly storeTime: number
  readonly end: number
}> {}

/** A signed envelope that is malformed, tampered with, signed by someone else or for another context. */
export class BadSignature extends Data.TaggedError("BadSignature")<{
  readonly reason: string
}> {}

/** An envelope context that cannot be encoded (kind not printable ascii, uid beyond u32, ...). */
export class InvalidContext extends Data.TaggedError("InvalidContext")<{
  readonly reason: string
}> {}

/** Errors of the storage operations themselves. */
export type StoreError = NotFound | Unauthorized | Unavailable | InvalidKey | InvalidRange | TooLarge

export const isTransient = (error: StoreError): boolean => error._tag === "Unavailable" && error.transient
