import { Data } from "effect"

/** A safetensors byte string that does not follow the format (header, dtype, shape or offsets). */
export class SafetensorsDecodeError extends Data.TaggedError("SafetensorsDecodeError")<{ readonly reason: string }> {
  /** the reason, so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.reason
  }
}

/** Tensors that cannot be written as safetensors (unsupported dtype, data length not matching shape). */
export class SafetensorsEncodeError extends Data.TaggedError("SafetensorsEncodeError")<{ readonly reason: string }> {
  /** the reason, so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.reason
  }
}

/**
 * An .npy byte string that does not follow the format or uses a layout we do not read; `source`
 * names the file when the caller passed one.
 */
export class NpyDecodeError extends Data.TaggedError("NpyDecodeError")<{
  readonly reason: string
  readonly source?: string
}> {
  /** the reason (after the file, if known), so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.source === undefined ? this.reason : `${this.source}: ${this.reason}`
  }
}

/** An array that cannot be written as .npy (bad shape, or data length not matching it). */
export class NpyEncodeError extends Data.TaggedError("NpyEncodeError")<{ readonly reason: string }> {
  /** the reason, so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.reason
  }
}

/** A file could not be read or written. */
export class FileIoError extends Data.TaggedError("FileIoError")<{
  readonly path: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `${this.path}: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}
