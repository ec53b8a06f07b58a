/**
 * NumPy `.npy` reader and writer (format versions 1.0, 2.0 and 3.0; C order only).
 *
 * Layout: magic `\x93NUMPY`, major and minor version bytes, header length (u16 LE in v1, u32 LE
 * in v2/v3), a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`
 * padded with spaces and a newline, then the raw little-endian data.
 */
import { Either } from "effect"
import { NpyDecodeError, NpyEncodeError } from "./errors.ts"

export type NpyDtype = "<f4" | "<i4" | "<u4" | "<i8"

export type NpyData = Float32Array | Int32Array | Uint32Array | BigInt64Array

export interface NpyArray {
  readonly dtype: NpyDtype
  readonly shape: readonly number[]
  readonly data: NpyData
}

const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // "\x93NUMPY"

const bytesPerElement: Record<NpyDtype, number> = { "<f4": 4, "<i4": 4, "<u4": 4, "<i8": 8 }

const isNpyDtype = (s: string): s is NpyDtype => s in bytesPerElement

const fail = (reason: string) => Either.left(new NpyDecodeError({ reason }))

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1)

/** Parses the header dict literal: exactly the keys descr, fortran_order and shape. */
const parseHeader = (text: string): Either.Either<{ descr: string; fortranOrder: boolean; shape: number[] }, NpyDecodeError> => {
  const body = text.trim()
  if (!body.startsWith("{") || !body.endsWith("}")) return fail(`header is not a dict literal: ${JSON.stringify(body)}`)
  const entry = /\s*'([A-Za-z_]+)'\s*:\s*('[^']*'|True|False|\([^()]*\))\s*(,|$)/y
  const inner = body.slice(1, -1)
  const fields = new Map<string, string>()
  entry.lastIndex = 0
  while (entry.lastIndex < inner.length) {
    if (inner.slice(entry.lastIndex).trim() === "") break
    const m = entry.exec(inner)
    if (m === null) return fail(`cannot parse header dict at ${JSON.stringify(inner.slice(entry.lastIndex))}`)
    if (fields.has(m[1]!)) return fail(`header repeats key '${m[1]}'`)
    fields.set(m[1]!, m[2]!)
  }
  const descr = fields.get("descr")
  const fortran = fields.get("fortran_order")
  const shapeText = fields.get("shape")
  if (descr === undefined || fortran === undefined || shapeText === undefined || fields.size !== 3) {
    return fail(`header must have exactly the keys descr, fortran_order and shape; got ${[...fields.keys()].join(", ")}`)
  }
  if (!descr.startsWith("'")) return fail(`descr must be a string, got ${descr}`)
  if (fortran !== "True" && fortran !== "False") return fail(`fortran_order must be True or False, got ${fortran}`)
  if (!shapeText.startsWith("(")) return fail(`shape must be a tuple, got ${shapeText}`)
  const dims = shapeText.slice(1, -1).split(",").map((s) => s.trim())
  if (dims.length > 0 && dims[dims.length - 1] === "") dims.pop()
  const shape: number[] = []
  for (const d of dims) {
    if (!/^\d+$/.test(d)) return fail(`shape entry ${JSON.stringify(d)} is not a non-negative integer`)
    shape.push(Number(d))
  }
  if (dims.length === 1 && !/,\s*\)$/.test(shapeText)) return fail(`shape ${shapeText} is not a tuple (missing trailing comma)`)
  return Either.right({ descr: descr.slice(1, -1), fortranOrder: fortran === "True", shape })
}

/** Decodes a whole `.npy` byte string. */
export const decodeNpy = (bytes: Uint8Array): Either.Either<NpyArray, NpyDecodeError> => {
  if (bytes.byteLength < 10 || !magic.every((b, i) => bytes[i] === b)) return fail("missing the \\x93NUMPY magic")
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const major = bytes[6]!
  let headerStart: number
  let headerLength: number
  if (major === 1) {
    headerStart = 10
    headerLength = view.getUint16(8, true)
  } else if (major === 2 || major === 3) {
    if (bytes.byteLength < 12) return fail("file ends inside the header length")
    headerStart = 12
    headerLength = view.getUint32(8, true)
  } else {
    return fail(`unsupported format version ${major}.${bytes[7]}`)
  }
  if (headerStart + headerLength > bytes.byteLength) return fail(`header length ${headerLength} runs past the end of the file`)
  let text: string
  try {
    const decoder = new TextDecoder(major === 3 ? "utf-8" : "latin1", { fatal: true })
    text = decoder.decode(bytes.subarray(headerStart, headerStart + headerLength))
  } catch (cause) {
    return fail(`header is not text: ${String(cause)}`)
  }
  const header = parseHeader(text)
  if (Either.isLeft(header)) return Either.left(header.left)
  const { descr, fortranOrder, shape } = header.right
  if (!isNpyDtype(descr)) return fail(`unsupported dtype '${descr}' (reads <f4, <i4, <u4, <i8)`)
  if (fortranOrder && shape.length > 1) return fail("Fortran-order arrays are not supported")
  const dataStart = headerStart + headerLength
  const expected = product(shape) * bytesPerElement[descr]
  const available = bytes.byteLength - dataStart
  if (available !== expected) {
    return fail(`data is ${available} bytes; shape (${shape.join(", ")}) of ${descr} needs ${expected}`)
  }
  const raw = bytes.slice(dataStart).buffer // fresh, aligned copy
  const rawView = new DataView(raw)
  const n = product(shape)
  switch (descr) {
    case "<f4": {
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) out[i] = rawView.getFloat32(i * 4, true)
      return Either.right({ dtype: descr, shape, data: out })
    }
    case "<i4": {
      const out = new Int32Array(n)
      for (let i = 0; i < n; i++) out[i] = rawView.getInt32(i * 4, true)
      return Either.right({ dtype: descr, shape, data: out })
    }
    case "<u4": {
      const out = new Uint32Array(n)
      for (let i = 0; i < n; i++) out[i] = rawView.getUint32(i * 4, true)
      return Either.right({ dtype: descr, shape, data: out })
    }
    case "<i8": {
      const out = new BigInt64Array(n)
      for (let i = 0; i < n; i++) out[i] = rawView.getBigInt64(i * 8, true)
      return Either.right({ dtype: descr, shape, data: out })
    }
  }
}

const dtypeOf = (data: NpyData): NpyDtype =>
  data instanceof Float32Array ? "<f4" : data instanceof Int32Array ? "<i4" : data instanceof Uint32Array ? "<u4" : "<i8"

/** Encodes a C-order array; version 1.0 unless the header needs more than 65535 bytes. */
export const encodeNpy = (data: NpyData, shape: readonly number[]): Either.Either<Uint8Array, NpyEncodeError> => {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    return Either.left(new NpyEncodeError({ reason: `bad shape (${shape.join(", ")})` }))
  }
  if (product(shape) !== data.length) {
    return Either.left(new NpyEncodeError({ reason: `${data.length} elements for shape (${shape.join(", ")})` }))
  }
  const dtype = dtypeOf(data)
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`
  // numpy pads so the data starts on a 64-byte boundary; the header ends with a newline
  const paddedTotal = (prefix: number) => Math.ceil((prefix + dict.length + 1) / 64) * 64
  const v1 = paddedTotal(10) - 10 <= 0xffff
  const prefix = v1 ? 10 : 12
  const total = paddedTotal(prefix)
  const headerLength = total - prefix
  const out = new Uint8Array(total + data.byteLength)
  const view = new DataView(out.buffer)
  out.set(magic, 0)
  out[6] = v1 ? 1 : 2
  out[7] = 0
  if (v1) view.setUint16(8, headerLength, true)
  else view.setUint32(8, headerLength, true)
  const padded = dict + " ".repeat(headerLength - dict.length - 1) + "\n"
  for (let i = 0; i < padded.length; i++) out[prefix + i] = padded.charCodeAt(i)
  for (let i = 0; i < data.length; i++) {
    const at = total + i * (dtype === "<i8" ? 8 : 4)
    if (data instanceof Float32Array) view.setFloat32(at, data[i]!, true)
    else if (data instanceof Int32Array) view.setInt32(at, data[i]!, true)
    else if (data instanceof Uint32Array) view.setUint32(at, data[i]!, true)
    else view.setBigInt64(at, data[i]!, true)
  }
  return Either.right(out)
}
