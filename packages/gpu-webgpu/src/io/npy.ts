/**
 * NumPy `.npy` reader and writer (format versions 1.0, 2.0 and 3.0), limited to the little-endian
 * C-order numeric arrays exchanged with numpy: model inputs and logits, token shards and their
 * sample indexes. Anything else is rejected with an `NpyDecodeError` rather than guessed at.
 *
 * Layout: magic `\x93NUMPY`, major and minor version bytes, header length (u16 LE in v1, u32 LE
 * in v2/v3), a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`
 * padded with spaces and a newline so the data starts on a 64-byte boundary, then the raw data.
 *
 * Data moves as raw bytes between files and typed arrays. Typed arrays are host-endian; every
 * platform Bun and Node run on is little-endian, which is what the `<` dtypes below require.
 *
 * Besides whole-file `decodeNpy`/`encodeNpy`, the header can be read on its own
 * (`npyHeaderLength`, then `parseNpyHeader`) so large shards can be read at offsets without
 * loading them.
 */
import { Either } from "effect"
import { NpyDecodeError, NpyEncodeError } from "./errors.ts"

export type NpyDtype = "<f4" | "<f8" | "<i4" | "<i8" | "<u4" | "<u2" | "|u1"

export type NpyData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint32Array | Uint16Array | Uint8Array

export interface NpyArray {
  readonly dtype: NpyDtype
  readonly shape: readonly number[]
  readonly data: NpyData
}

export interface NpyHeader {
  readonly dtype: NpyDtype
  readonly shape: readonly number[]
  /** Byte offset of the first element (magic + version + length field + header text). */
  readonly dataOffset: number
  /** Number of elements (product of the shape). */
  readonly size: number
  readonly bytesPerElement: number
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] as const // "\x93NUMPY"

/** numpy pads the header so the data starts on a 64-byte boundary. */
const ALIGN = 64

const BYTES: Record<NpyDtype, number> = { "<f4": 4, "<f8": 8, "<i4": 4, "<i8": 8, "<u4": 4, "<u2": 2, "|u1": 1 }

/** numpy writes single-byte types with `|` but also accepts `<u1`; normalise on read. */
const DTYPE_ALIASES: Readonly<Partial<Record<string, NpyDtype>>> = {
  "<f4": "<f4", "<f8": "<f8", "<i4": "<i4", "<i8": "<i8", "<u4": "<u4", "<u2": "<u2", "|u1": "|u1", "<u1": "|u1",
}

const fail = (reason: string, source?: string) =>
  Either.left(new NpyDecodeError(source === undefined ? { reason } : { reason, source }))

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1)

const shapeText = (shape: readonly number[]): string => (shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`)

/**
 * Bytes needed to hold magic + version + header-length field; read this many first to learn how
 * long the whole header is (`npyHeaderLength`).
 */
export const NPY_PREFIX_BYTES = 12

/** Total header length (offset of the data) from the first `NPY_PREFIX_BYTES` bytes of a file. */
export const npyHeaderLength = (prefix: Uint8Array, source?: string): Either.Either<number, NpyDecodeError> => {
  // Compare the magic over whatever is present first, so a non-.npy file is called that rather than "too short".
  for (let i = 0; i < Math.min(MAGIC.length, prefix.length); i++) {
    if (prefix[i] !== MAGIC[i]) return fail("missing the \\x93NUMPY magic", source)
  }
  if (prefix.length < 10) return fail(`file too short for a .npy header (${prefix.length} bytes)`, source)
  const major = prefix[6]
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength)
  if (major === 1) return Either.right(10 + view.getUint16(8, true))
  if (major === 2 || major === 3) {
    if (prefix.length < 12) return fail("file ends inside the v2/v3 header length", source)
    return Either.right(12 + view.getUint32(8, true))
  }
  return fail(`unsupported .npy format version ${major}.${prefix[7]}`, source)
}

type HeaderValue = string | boolean | number[]

interface HeaderFields {
  readonly descr: string
  readonly fortranOrder: boolean
  readonly shape: number[]
}

/**
 * Parses the Python-literal header dict, e.g. `{'descr': '<u4', 'fortran_order': False, 'shape': (3,), }`,
 * followed by its space padding and newline. Errors are plain reasons; the caller attaches the source.
 */
const parseHeaderText = (text: string): Either.Either<HeaderFields, string> => {
  let pos = 0
  const skipWs = () => {
    while (text[pos] === " " || text[pos] === "\t") pos++
  }
  const here = () => JSON.stringify(text.slice(pos, pos + 24))
  const parseString = (): string | undefined => {
    skipWs()
    const quote = text[pos]
    if (quote !== "'" && quote !== '"') return undefined
    const end = text.indexOf(quote, pos + 1)
    if (end < 0) return undefined
    const s = text.slice(pos + 1, end)
    pos = end + 1
    return s
  }
  const parseShape = (): Either.Either<number[], string> => {
    const start = pos
    pos++ // the "("
    const dims: number[] = []
    for (;;) {
      skipWs()
      if (text[pos] === ")") {
        pos++
        return Either.right(dims)
      }
      const digits = /^[0-9]+/.exec(text.slice(pos))
      if (digits === null) return Either.left(`shape entry at ${here()} is not a non-negative integer`)
      const n = Number(digits[0])
      if (!Number.isSafeInteger(n)) return Either.left(`shape entry ${digits[0]} is too large`)
      dims.push(n)
      pos += digits[0].length
      skipWs()
      if (text[pos] === ",") {
        pos++
        continue
      }
      if (text[pos] !== ")") return Either.left(`cannot parse shape at ${here()}`)
      pos++
      // A one-element tuple must carry its trailing comma in Python syntax; `(3)` is just 3.
      if (dims.length === 1) return Either.left(`shape ${text.slice(start, pos)} is not a tuple (missing trailing comma)`)
      return Either.right(dims)
    }
  }
  const parseValue = (key: string): Either.Either<HeaderValue, string> => {
    skipWs()
    if (text.startsWith("True", pos)) {
      pos += 4
      return Either.right(true)
    }
    if (text.startsWith("False", pos)) {
      pos += 5
      return Either.right(false)
    }
    if (text[pos] === "(") return parseShape()
    const s = parseString()
    return s === undefined ? Either.left(`cannot parse the value of header key '${key}' at ${here()}`) : Either.right(s)
  }

  skipWs()
  if (text[pos] !== "{") return Either.left(`header is not a dict literal: ${here()}`)
  pos++
  const fields = new Map<string, HeaderValue>()
  for (;;) {
    skipWs()
    if (text[pos] === "}") {
      pos++
      break
    }
    const key = parseString()
    if (key === undefined) return Either.left(`cannot parse a header key at ${here()}`)
    skipWs()
    if (text[pos] !== ":") return Either.left(`missing ':' after header key '${key}'`)
    pos++
    const value = parseValue(key)
    if (Either.isLeft(value)) return Either.left(value.left)
    if (fields.has(key)) return Either.left(`header repeats key '${key}'`)
    fields.set(key, value.right)
    skipWs()
    if (text[pos] === ",") {
      pos++
      continue
    }
    if (text[pos] === "}") {
      pos++
      break
    }
    return Either.left(`expected ',' or '}' in the header dict at ${here()}`)
  }
  if (!/^ *\n$/.test(text.slice(pos))) return Either.left("header must end with space padding and a newline")
  const descr = fields.get("descr")
  const fortranOrder = fields.get("fortran_order")
  const shape = fields.get("shape")
  if (fields.size !== 3 || descr === undefined || fortranOrder === undefined || shape === undefined) {
    return Either.left(`header must have exactly the keys descr, fortran_order and shape; got ${[...fields.keys()].join(", ")}`)
  }
  if (typeof descr !== "string") return Either.left("header 'descr' must be a string")
  if (typeof fortranOrder !== "boolean") return Either.left("header 'fortran_order' must be True or False")
  if (!Array.isArray(shape)) return Either.left("header 'shape' must be a tuple of integers")
  return Either.right({ descr, fortranOrder, shape })
}

/** v1/v2 headers are latin1 (every byte is one code point); TextDecoder("latin1") would be windows-1252. */
const latin1 = (raw: Uint8Array): string => {
  let s = ""
  for (const b of raw) s += String.fromCharCode(b)
  return s
}

/** Parses and validates a full header; `bytes` must hold at least the whole header (data may follow). */
export const parseNpyHeader = (bytes: Uint8Array, source?: string): Either.Either<NpyHeader, NpyDecodeError> =>
  Either.flatMap(npyHeaderLength(bytes, source), (dataOffset) => {
    if (bytes.length < dataOffset) {
      return fail(`header length ${dataOffset} runs past the end of the ${bytes.length} bytes given`, source)
    }
    const major = bytes[6]
    const raw = bytes.subarray(major === 1 ? 10 : 12, dataOffset)
    const text =
      major === 3
        ? Either.try({
            try: () => new TextDecoder("utf-8", { fatal: true }).decode(raw),
            catch: () => "v3 header is not valid UTF-8",
          })
        : Either.right(latin1(raw))
    return text.pipe(
      Either.flatMap(parseHeaderText),
      Either.match({
        onLeft: (reason) => fail(reason, source),
        onRight: ({ descr, fortranOrder, shape }) => {
          const dtype = DTYPE_ALIASES[descr]
          if (dtype === undefined) {
            return fail(`unsupported dtype '${descr}' (reads ${Object.keys(BYTES).join(", ")})`, source)
          }
          // Fortran and C order coincide for 0-D and 1-D arrays, which numpy may label either way.
          if (fortranOrder && shape.length > 1) return fail("Fortran-order arrays are not supported", source)
          const size = product(shape)
          if (!Number.isSafeInteger(size * BYTES[dtype])) return fail(`array size ${shapeText(shape)} overflows`, source)
          return Either.right({ dtype, shape, dataOffset, size, bytesPerElement: BYTES[dtype] })
        },
      }),
    )
  })

/** A typed array of `dtype` over `buffer`, which the caller owns and has sized exactly. */
const typedArrayOf = (dtype: NpyDtype, buffer: ArrayBuffer): NpyData => {
  switch (dtype) {
    case "<f4": return new Float32Array(buffer)
    case "<f8": return new Float64Array(buffer)
    case "<i4": return new Int32Array(buffer)
    case "<i8": return new BigInt64Array(buffer)
    case "<u4": return new Uint32Array(buffer)
    case "<u2": return new Uint16Array(buffer)
    case "|u1": return new Uint8Array(buffer)
  }
}

/**
 * Decodes a whole `.npy` file; the data length must match the header exactly. The data is a fresh
 * copy, so it is aligned for its type and neither aliases nor keeps alive the caller's buffer.
 */
export const decodeNpy = (bytes: Uint8Array, source?: string): Either.Either<NpyArray, NpyDecodeError> =>
  Either.flatMap(parseNpyHeader(bytes, source), (h) => {
    const needed = h.size * h.bytesPerElement
    const available = bytes.length - h.dataOffset
    if (available !== needed) {
      return fail(`data is ${available} bytes; shape ${shapeText(h.shape)} of ${h.dtype} needs ${needed}`, source)
    }
    const copy = new ArrayBuffer(needed)
    new Uint8Array(copy).set(bytes.subarray(h.dataOffset))
    return Either.right({ dtype: h.dtype, shape: h.shape, data: typedArrayOf(h.dtype, copy) })
  })

const dtypeOf = (data: NpyData): NpyDtype => {
  if (data instanceof Float32Array) return "<f4"
  if (data instanceof Float64Array) return "<f8"
  if (data instanceof Int32Array) return "<i4"
  if (data instanceof BigInt64Array) return "<i8"
  if (data instanceof Uint32Array) return "<u4"
  if (data instanceof Uint16Array) return "<u2"
  return "|u1"
}

/** The header bytes numpy itself would write for this dtype and shape (v1.0 unless too long). */
export const encodeNpyHeader = (dtype: NpyDtype, shape: readonly number[]): Uint8Array => {
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText(shape)}, }`
  const padded = (prefix: number) => Math.ceil((prefix + dict.length + 1) / ALIGN) * ALIGN
  const v1 = padded(10) - 10 <= 0xffff
  const prefix = v1 ? 10 : 12
  const total = padded(prefix)
  const out = new Uint8Array(total)
  out.set(MAGIC, 0)
  out[6] = v1 ? 1 : 2
  out[7] = 0
  const view = new DataView(out.buffer)
  if (v1) view.setUint16(8, total - prefix, true)
  else view.setUint32(8, total - prefix, true)
  const text = dict.padEnd(total - prefix - 1, " ") + "\n"
  for (let i = 0; i < text.length; i++) out[prefix + i] = text.charCodeAt(i)
  return out
}

/** Encodes a C-order array; `shape` defaults to 1-D. */
export const encodeNpy = (
  data: NpyData,
  shape: readonly number[] = [data.length],
): Either.Either<Uint8Array, NpyEncodeError> => {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    return Either.left(new NpyEncodeError({ reason: `bad shape (${shape.join(", ")})` }))
  }
  if (product(shape) !== data.length) {
    return Either.left(new NpyEncodeError({ reason: `${data.length} elements do not fill shape (${shape.join(", ")})` }))
  }
  const header = encodeNpyHeader(dtypeOf(data), shape)
  const out = new Uint8Array(header.length + data.byteLength)
  out.set(header, 0)
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length)
  return Either.right(out)
}
