/**
 * safetensors (https://github.com/huggingface/safetensors) reader and writer.
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { string: string } }`,
 * then the data block; offsets are relative to the data block. Decoding is as strict as the
 * Python library: every tensor's byte range must match its dtype and shape, and the ranges must
 * tile the data block exactly (no gaps, no overlaps, nothing left over).
 */
import { Either, ParseResult, Schema } from "effect"
import { SafetensorsDecodeError, SafetensorsEncodeError } from "./errors.ts"

/** dtypes we decode; half precisions are widened to f32 on read. */
export type SafetensorsDtype = "F32" | "F16" | "BF16" | "I32"

export interface SafetensorsTensor {
  /** the dtype stored in the file (F16/BF16 data is returned widened to a Float32Array) */
  readonly dtype: SafetensorsDtype
  readonly shape: readonly number[]
  readonly data: Float32Array | Int32Array
}

export interface SafetensorsFile {
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>
  readonly metadata: Readonly<Record<string, string>>
}

const bytesPerElement: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4 }

/** The Python library refuses headers above 100 MB; so do we, before allocating anything. */
const maxHeaderBytes = 100_000_000

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

const TensorInfo = Schema.Struct({
  dtype: Schema.Literal("F32", "F16", "BF16", "I32"),
  shape: Schema.Array(NonNegativeInt),
  data_offsets: Schema.Tuple(NonNegativeInt, NonNegativeInt)
})

const fail = (reason: string) => Either.left(new SafetensorsDecodeError({ reason }))

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1)

/** Byte copies are only a valid decode on little-endian hosts; others take the DataView path. */
const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

const halfToFloat = (h: number): number => {
  const sign = h & 0x8000 ? -1 : 1
  const exponent = (h >> 10) & 0x1f
  const mantissa = h & 0x3ff
  if (exponent === 0) return sign * mantissa * 2 ** -24
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15)
}

const decodeData = (dtype: SafetensorsDtype, bytes: Uint8Array): Float32Array | Int32Array => {
  // copy into a fresh, aligned buffer: the source offset need not be a multiple of 4
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  switch (dtype) {
    case "F32": {
      if (hostIsLittleEndian) return new Float32Array(bytes.slice().buffer)
      const out = new Float32Array(bytes.byteLength / 4)
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true)
      return out
    }
    case "I32": {
      if (hostIsLittleEndian) return new Int32Array(bytes.slice().buffer)
      const out = new Int32Array(bytes.byteLength / 4)
      for (let i = 0; i < out.length; i++) out[i] = view.getInt32(i * 4, true)
      return out
    }
    case "F16": {
      const out = new Float32Array(bytes.byteLength / 2)
      for (let i = 0; i < out.length; i++) out[i] = halfToFloat(view.getUint16(i * 2, true))
      return out
    }
    case "BF16": {
      const out = new Float32Array(bytes.byteLength / 2)
      const widened = new Uint32Array(out.buffer)
      for (let i = 0; i < out.length; i++) widened[i] = view.getUint16(i * 2, true) << 16
      return out
    }
  }
}

/** Decodes a whole safetensors byte string. */
export const decodeSafetensors = (bytes: Uint8Array): Either.Either<SafetensorsFile, SafetensorsDecodeError> => {
  if (bytes.byteLength < 8) return fail(`file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerLength = view.getBigUint64(0, true)
  if (headerLength > BigInt(maxHeaderBytes)) return fail(`header length ${headerLength} exceeds ${maxHeaderBytes}`)
  const n = Number(headerLength)
  if (8 + n > bytes.byteLength) return fail(`header length ${n} runs past the end of the ${bytes.byteLength}-byte file`)
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)))
  } catch (cause) {
    return fail(`header is not UTF-8 JSON: ${String(cause)}`)
  }
  // checked by hand, not with Schema.Record: decoding into a fresh {} would turn a key named
  // "__proto__" into a prototype change and lose that tensor
  if (typeof json !== "object" || json === null || Array.isArray(json)) return fail(`header is not a JSON object`)
  const data = bytes.subarray(8 + n)

  let metadata: Record<string, string> = {}
  const entries: Array<{ name: string; info: typeof TensorInfo.Type }> = []
  for (const [name, value] of Object.entries(json)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return fail(`__metadata__ must map strings to strings`)
      const pairs: Array<[string, string]> = []
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") return fail(`__metadata__ must map strings to strings`)
        pairs.push([k, v])
      }
      metadata = Object.fromEntries(pairs)
      continue
    }
    const decoded = Schema.decodeUnknownEither(TensorInfo)(value)
    if (Either.isLeft(decoded)) {
      return fail(`tensor "${name}": ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`)
    }
    entries.push({ name, info: decoded.right })
  }

  for (const { name, info } of entries) {
    const [begin, end] = info.data_offsets
    if (end < begin) return fail(`tensor "${name}": data_offsets [${begin}, ${end}] end before they begin`)
    if (end > data.byteLength) {
      return fail(`tensor "${name}": data_offsets end ${end} is past the ${data.byteLength}-byte data block`)
    }
    const expected = product(info.shape) * bytesPerElement[info.dtype]
    if (end - begin !== expected) {
      return fail(`tensor "${name}": ${end - begin} bytes for ${info.dtype} shape [${info.shape.join(", ")}] (needs ${expected})`)
    }
  }
  // the ranges must tile the data block exactly, in offset order
  const sorted = [...entries].sort((a, b) => a.info.data_offsets[0] - b.info.data_offsets[0] || a.info.data_offsets[1] - b.info.data_offsets[1])
  let cursor = 0
  for (const { name, info } of sorted) {
    const [begin, end] = info.data_offsets
    if (begin < cursor) return fail(`tensor "${name}": data_offsets [${begin}, ${end}] overlap the previous tensor (ends at ${cursor})`)
    if (begin > cursor) return fail(`tensor "${name}": gap in the data block between ${cursor} and ${begin}`)
    cursor = end
  }
  if (cursor !== data.byteLength) return fail(`data block has ${data.byteLength - cursor} bytes no tensor covers`)

  const tensors = new Map<string, SafetensorsTensor>()
  for (const { name, info } of entries) {
    const [begin, end] = info.data_offsets
    tensors.set(name, { dtype: info.dtype, shape: [...info.shape], data: decodeData(info.dtype, data.subarray(begin, end)) })
  }
  return Either.right({ tensors, metadata })
}

/** A tensor to write: Float32Array is stored as F32, Int32Array as I32. */
export interface SafetensorsInput {
  readonly shape: readonly number[]
  readonly data: Float32Array | Int32Array
}

/**
 * Encodes tensors (in the iteration order given) and optional string metadata. The header is
 * padded with spaces to a multiple of 8 bytes so the data block is aligned, as the Python writer does.
 */
export const encodeSafetensors = (
  tensors: Iterable<readonly [string, SafetensorsInput]>,
  metadata?: Readonly<Record<string, string>>
): Either.Either<Uint8Array, SafetensorsEncodeError> => {
  // no prototype: a tensor named "__proto__" must become a key, not replace the prototype
  const header: Record<string, unknown> = Object.create(null)
  if (metadata !== undefined && Object.keys(metadata).length > 0) header["__metadata__"] = Object.fromEntries(Object.entries(metadata))
  const parts: Array<Float32Array | Int32Array> = []
  let offset = 0
  for (const [name, tensor] of tensors) {
    if (name === "__metadata__") return Either.left(new SafetensorsEncodeError({ reason: `"__metadata__" is reserved` }))
    if (Object.hasOwn(header, name)) {
      return Either.left(new SafetensorsEncodeError({ reason: `duplicate tensor name "${name}"` }))
    }
    if (!tensor.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      return Either.left(new SafetensorsEncodeError({ reason: `tensor "${name}": bad shape [${tensor.shape.join(", ")}]` }))
    }
    if (product(tensor.shape) !== tensor.data.length) {
      return Either.left(new SafetensorsEncodeError({
        reason: `tensor "${name}": ${tensor.data.length} elements for shape [${tensor.shape.join(", ")}]`
      }))
    }
    const dtype: SafetensorsDtype = tensor.data instanceof Float32Array ? "F32" : "I32"
    header[name] = { dtype, shape: [...tensor.shape], data_offsets: [offset, offset + tensor.data.byteLength] }
    offset += tensor.data.byteLength
    parts.push(tensor.data)
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const headerLength = Math.ceil(json.byteLength / 8) * 8
  const out = new Uint8Array(8 + headerLength + offset)
  const view = new DataView(out.buffer)
  view.setBigUint64(0, BigInt(headerLength), true)
  out.set(json, 8)
  out.fill(0x20, 8 + json.byteLength, 8 + headerLength)
  let cursor = 8 + headerLength
  for (const part of parts) {
    if (hostIsLittleEndian) {
      out.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), cursor)
      cursor += part.byteLength
      continue
    }
    for (let i = 0; i < part.length; i++, cursor += 4) {
      if (part instanceof Float32Array) view.setFloat32(cursor, part[i]!, true)
      else view.setInt32(cursor, part[i]!, true)
    }
  }
  return Either.right(out)
}
