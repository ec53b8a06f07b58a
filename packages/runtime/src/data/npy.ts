/**
 * Minimal strict reader/writer for NumPy `.npy` files (format versions 1.0, 2.0, 3.0), limited to
 * the little-endian C-order numeric arrays the data pipeline uses. Anything else is rejected with
 * an `NpyFormatError` rather than guessed at. Typed arrays are host-endian; every platform Bun and
 * Node run on is little-endian, which is what the `<` dtypes below require.
 */
import { Either } from "effect"
import { NpyFormatError } from "./errors.ts"

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] as const // "\x93NUMPY"
/** numpy pads the header so the data starts on a 64-byte boundary. */
const ALIGN = 64

export type NpyDtype = "<u4" | "<i4" | "<f4" | "<u2" | "|u1" | "<f8"

export type NpyData = Uint32Array | Int32Array | Float32Array | Uint16Array | Uint8Array | Float64Array

const BYTES: Record<NpyDtype, number> = { "<u4": 4, "<i4": 4, "<f4": 4, "<u2": 2, "|u1": 1, "<f8": 8 }

/** numpy writes single-byte types with `|`, but also accepts `<u1`; normalise on read. */
const DTYPE_ALIASES: Record<string, NpyDtype> = {
  "<u4": "<u4", "<i4": "<i4", "<f4": "<f4", "<u2": "<u2", "|u1": "|u1", "<u1": "|u1", "<f8": "<f8",
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

export interface NpyArray<D extends NpyData = NpyData> {
  readonly dtype: NpyDtype
  readonly shape: readonly number[]
  readonly data: D
}

const fail = (reason: string, source?: string) =>
  Either.left(new NpyFormatError(source === undefined ? { reason } : { reason, source }))

/**
 * Bytes needed to hold magic + version + header-length field; read this many first to learn how
 * long the whole header is (`npyHeaderLength`).
 */
export const NPY_PREFIX_BYTES = 12

/** Total header length (offset of the data) from the first `NPY_PREFIX_BYTES` bytes of a file. */
export const npyHeaderLength = (prefix: Uint8Array, source?: string): Either.Either<number, NpyFormatError> => {
  if (prefix.length < 10) return fail(`file too short for a .npy header (${prefix.length} bytes)`, source)
  for (let i = 0; i < MAGIC.length; i++) {
    if (prefix[i] !== MAGIC[i]) return fail("missing \\x93NUMPY magic", source)
  }
  const major = prefix[6]
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength)
  if (major === 1) return Either.right(10 + view.getUint16(8, true))
  if (major === 2 || major === 3) {
    if (prefix.length < 12) return fail("file too short for a v2/v3 .npy header", source)
    return Either.right(12 + view.getUint32(8, true))
  }
  return fail(`unsupported .npy format version ${major}.${prefix[7]}`, source)
}

/** Parses the Python-literal header dict, e.g. `{'descr': '<u4', 'fortran_order': False, 'shape': (3,), }`. */
const parseHeaderDict = (
  text: string,
  source?: string,
): Either.Either<{ descr: string; fortranOrder: boolean; shape: number[] }, NpyFormatError> => {
  let pos = 0
  const skipWs = () => {
    while (pos < text.length && (text[pos] === " " || text[pos] === "\t")) pos++
  }
  const expect = (ch: string): boolean => {
    skipWs()
    if (text[pos] !== ch) return false
    pos++
    return true
  }
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
  const parseInt = (): number | undefined => {
    skipWs()
    const m = /^[0-9]+/.exec(text.slice(pos))
    if (m === null) return undefined
    pos += m[0].length
    const n = Number(m[0])
    return Number.isSafeInteger(n) ? n : undefined
  }
  const parseValue = (): string | boolean | number[] | undefined => {
    skipWs()
    if (text.startsWith("True", pos)) { pos += 4; return true }
    if (text.startsWith("False", pos)) { pos += 5; return false }
    if (text[pos] === "(") {
      pos++
      const dims: number[] = []
      skipWs()
      if (text[pos] === ")") { pos++; return dims }
      for (;;) {
        const n = parseInt()
        if (n === undefined) return undefined
        dims.push(n)
        skipWs()
        if (text[pos] === ",") {
          pos++
          skipWs()
          if (text[pos] === ")") { pos++; return dims }
          continue
        }
        if (text[pos] === ")") {
          pos++
          // A one-element tuple must carry its trailing comma in Python syntax.
          return dims.length === 1 ? undefined : dims
        }
        return undefined
      }
    }
    return parseString()
  }

  if (!expect("{")) return fail("header is not a dict literal", source)
  const fields = new Map<string, string | boolean | number[]>()
  for (;;) {
    skipWs()
    if (text[pos] === "}") { pos++; break }
    const key = parseString()
    if (key === undefined) return fail("malformed header key", source)
    if (!expect(":")) return fail(`missing ':' after header key '${key}'`, source)
    const value = parseValue()
    if (value === undefined) return fail(`malformed value for header key '${key}'`, source)
    if (fields.has(key)) return fail(`duplicate header key '${key}'`, source)
    fields.set(key, value)
    skipWs()
    if (text[pos] === ",") { pos++; continue }
    if (text[pos] === "}") { pos++; break }
    return fail("expected ',' or '}' in header dict", source)
  }
  if (!/^[ ]*\n$/.test(text.slice(pos))) return fail("header must end with space padding and a newline", source)
  if (fields.size !== 3) return fail(`header must have exactly descr, fortran_order, shape (got ${[...fields.keys()].join(", ")})`, source)
  const descr = fields.get("descr")
  const fortranOrder = fields.get("fortran_order")
  const shape = fields.get("shape")
  if (typeof descr !== "string") return fail("header 'descr' must be a string", source)
  if (typeof fortranOrder !== "boolean") return fail("header 'fortran_order' must be True or False", source)
  if (!Array.isArray(shape)) return fail("header 'shape' must be a tuple of integers", source)
  return Either.right({ descr, fortranOrder, shape })
}

/** Parses and validates a full header; `bytes` must hold at least the whole header. */
export const parseNpyHeader = (bytes: Uint8Array, source?: string): Either.Either<NpyHeader, NpyFormatError> =>
  Either.flatMap(npyHeaderLength(bytes, source), (dataOffset) => {
    if (bytes.length < dataOffset) return fail(`header claims ${dataOffset} bytes but only ${bytes.length} present`, source)
    const textStart = bytes[6] === 1 ? 10 : 12
    const raw = bytes.subarray(textStart, dataOffset)
    const text = bytes[6] === 3 ? new TextDecoder("utf-8").decode(raw) : latin1(raw)
    return Either.flatMap(parseHeaderDict(text, source), ({ descr, fortranOrder, shape }) => {
      const dtype = DTYPE_ALIASES[descr]
      if (dtype === undefined) return fail(`unsupported dtype '${descr}'`, source)
      if (fortranOrder && shape.length > 1) return fail("Fortran-order arrays are not supported", source)
      const size = shape.reduce((a, b) => a * b, 1)
      if (!Number.isSafeInteger(size)) return fail("array size overflows", source)
      return Either.right({ dtype, shape, dataOffset, size, bytesPerElement: BYTES[dtype] })
    })
  })

const latin1 = (raw: Uint8Array): string => {
  let s = ""
  for (const b of raw) s += String.fromCharCode(b)
  return s
}

/** Builds a typed array of `dtype` over (a copy of, if misaligned) `bytes`. */
export const typedArrayOf = (dtype: NpyDtype, bytes: Uint8Array): NpyData => {
  const width = BYTES[dtype]
  const aligned = bytes.byteOffset % width === 0 ? bytes : bytes.slice()
  const { buffer, byteOffset } = aligned
  const length = aligned.byteLength / width
  switch (dtype) {
    case "<u4": return new Uint32Array(buffer, byteOffset, length)
    case "<i4": return new Int32Array(buffer, byteOffset, length)
    case "<f4": return new Float32Array(buffer, byteOffset, length)
    case "<u2": return new Uint16Array(buffer, byteOffset, length)
    case "|u1": return new Uint8Array(buffer, byteOffset, length)
    case "<f8": return new Float64Array(buffer, byteOffset, length)
  }
}

/** Decodes a whole `.npy` file; the data length must match the header exactly. */
export const decodeNpy = (bytes: Uint8Array, source?: string): Either.Either<NpyArray, NpyFormatError> =>
  Either.flatMap(parseNpyHeader(bytes, source), (h) => {
    const expected = h.dataOffset + h.size * h.bytesPerElement
    if (bytes.length !== expected) {
      return fail(`data is ${bytes.length - h.dataOffset} bytes, header shape needs ${h.size * h.bytesPerElement}`, source)
    }
    return Either.right({ dtype: h.dtype, shape: h.shape, data: typedArrayOf(h.dtype, bytes.subarray(h.dataOffset)) })
  })

/** The dtype tag that matches a typed array's element type. */
export const dtypeOf = (data: NpyData): NpyDtype => {
  if (data instanceof Uint32Array) return "<u4"
  if (data instanceof Int32Array) return "<i4"
  if (data instanceof Float32Array) return "<f4"
  if (data instanceof Uint16Array) return "<u2"
  if (data instanceof Float64Array) return "<f8"
  return "|u1"
}

/** The header bytes numpy itself would write for this dtype and shape (v1.0 unless too long). */
export const encodeNpyHeader = (dtype: NpyDtype, shape: readonly number[]): Uint8Array => {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`
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
): Either.Either<Uint8Array, NpyFormatError> => {
  const size = shape.reduce((a, b) => a * b, 1)
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || size !== data.length) {
    return fail(`shape [${shape.join(", ")}] does not hold ${data.length} elements`)
  }
  const header = encodeNpyHeader(dtypeOf(data), shape)
  const out = new Uint8Array(header.length + data.byteLength)
  out.set(header, 0)
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length)
  return Either.right(out)
}
