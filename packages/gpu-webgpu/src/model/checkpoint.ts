/**
 * Checkpoints are safetensors files with HF LlamaForCausalLM names, so transformers can load the
 * weights directly. The spec rides along in the metadata (`covenant.spec`, JSON) so a checkpoint
 * is self-describing; `format: "pt"` is what transformers expects of torch safetensors.
 */
import { Data, Effect, Either } from "effect"
import { readBytes, writeBytes } from "../io/files.ts"
import type { FileIoError, SafetensorsDecodeError, SafetensorsEncodeError } from "../io/errors.ts"
import { decodeSafetensors, encodeSafetensors } from "../io/safetensors.ts"
import type { SafetensorsFile } from "../io/safetensors.ts"
import { llamaParameters } from "./parameters.ts"
import type { LlamaSpec } from "./spec.ts"
import { decodeLlamaSpec } from "./spec.ts"
import type { ModelSpecError } from "./spec.ts"

export const specMetadataKey = "covenant.spec"

/** The tensors of a file do not match the parameters the spec calls for. */
export class CheckpointMismatchError extends Data.TaggedError("CheckpointMismatchError")<{ readonly reason: string }> {
  /** the reason, so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.reason
  }
}

/** Checks a name -> data map against the spec: every parameter present with the right length, nothing else. */
export const checkParameters = (
  spec: LlamaSpec,
  tensors: ReadonlyMap<string, { readonly shape?: readonly number[]; readonly data: ArrayLike<number> }>
): Either.Either<void, CheckpointMismatchError> => {
  const expected = llamaParameters(spec)
  for (const { name, shape } of expected) {
    const t = tensors.get(name)
    if (t === undefined) return Either.left(new CheckpointMismatchError({ reason: `missing tensor "${name}"` }))
    const size = shape.reduce((a, b) => a * b, 1)
    const shapeOk = t.shape === undefined || (t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]))
    if (t.data.length !== size || !shapeOk) {
      return Either.left(new CheckpointMismatchError({
        reason: `tensor "${name}" has shape [${t.shape?.join(", ") ?? t.data.length}], the spec needs [${shape.join(", ")}]`
      }))
    }
  }
  const names = new Set(expected.map((p) => p.name))
  for (const name of tensors.keys()) {
    if (!names.has(name)) return Either.left(new CheckpointMismatchError({ reason: `unexpected tensor "${name}"` }))
  }
  return Either.right(undefined)
}

/** Encodes parameters as HF-named safetensors bytes, with the spec (and any extra metadata). */
export const encodeCheckpoint = (
  spec: LlamaSpec,
  parameters: ReadonlyMap<string, Float32Array>,
  metadata: Readonly<Record<string, string>> = {}
): Either.Either<Uint8Array, CheckpointMismatchError | SafetensorsEncodeError> =>
  Either.flatMap(checkParameters(spec, new Map([...parameters].map(([name, data]) => [name, { data }]))), () =>
    encodeSafetensors(
      llamaParameters(spec).map(({ name, shape }) => [name, { shape, data: parameters.get(name)! }] as const),
      { ...metadata, format: "pt", [specMetadataKey]: JSON.stringify(spec) }
    )
  )

export interface Checkpoint {
  readonly spec: LlamaSpec
  readonly parameters: Map<string, Float32Array>
  readonly metadata: Readonly<Record<string, string>>
}

export type CheckpointDecodeError = SafetensorsDecodeError | ModelSpecError | CheckpointMismatchError

/**
 * Decodes a checkpoint. The spec comes from the file's metadata unless `spec` is given (needed for
 * plain HF files, which carry none). Half-precision tensors are widened to f32.
 */
export const decodeCheckpoint = (bytes: Uint8Array, spec?: LlamaSpec): Either.Either<Checkpoint, CheckpointDecodeError> =>
  Either.flatMap(decodeSafetensors(bytes), (file) => checkpointFromFile(file, spec))

/** `decodeCheckpoint` for an already decoded safetensors file. */
export const checkpointFromFile = (
  file: SafetensorsFile,
  spec?: LlamaSpec
): Either.Either<Checkpoint, ModelSpecError | CheckpointMismatchError> =>
  Either.gen(function*() {
    let resolved: LlamaSpec
    if (spec !== undefined) resolved = spec
    else {
      const text = file.metadata[specMetadataKey]
      if (text === undefined) {
        return yield* Either.left(new CheckpointMismatchError({ reason: `no "${specMetadataKey}" metadata and no spec given` }))
      }
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        return yield* Either.left(new CheckpointMismatchError({ reason: `"${specMetadataKey}" metadata is not JSON` }))
      }
      resolved = yield* decodeLlamaSpec(json)
    }
    const parameters = new Map<string, Float32Array>()
    for (const [name, t] of file.tensors) {
      if (!(t.data instanceof Float32Array)) {
        return yield* Either.left(new CheckpointMismatchError({ reason: `tensor "${name}" is ${t.dtype}, not a float type` }))
      }
      parameters.set(name, t.data)
    }
    yield* checkParameters(resolved, file.tensors)
    return { spec: resolved, parameters, metadata: file.metadata }
  })

export const saveCheckpoint = (
  path: string,
  spec: LlamaSpec,
  parameters: ReadonlyMap<string, Float32Array>,
  metadata?: Readonly<Record<string, string>>
): Effect.Effect<void, CheckpointMismatchError | SafetensorsEncodeError | FileIoError> =>
  Effect.flatMap(encodeCheckpoint(spec, parameters, metadata), (bytes) => writeBytes(path, bytes))

export const loadCheckpoint = (path: string, spec?: LlamaSpec): Effect.Effect<Checkpoint, CheckpointDecodeError | FileIoError> =>
  Effect.flatMap(readBytes(path), (bytes) => decodeCheckpoint(bytes, spec))
