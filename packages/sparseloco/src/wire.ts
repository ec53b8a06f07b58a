/**
 * The wire format of one peer's update for one window.
 *
 *   "SLCW" | version u8 (2) | flags u8 (0) | reserved u16 (0) | header length u32 | header JSON
 *   | per tensor, in header order: index section (u32 length + bytes), code section (u32 length + bytes)
 *   | CRC-32 u32 over everything before it
 *
 * All integers little-endian. The format carries no signature: the transport seals the encoded
 * bytes in a signed envelope (@covenant/transport's envelope.ts), which also binds run, window and
 * kind. (Version 1 ended in a 64-byte signature slot that nothing ever filled.)
 * Decoding is strict and total: any malformed input gives a WireError, never a throw, and nothing
 * is allocated from a length field before that length is checked against the input.
 */
import { Either, ParseResult, Schema } from "effect"
import { codesLength, packCodes, unpackCodes } from "./codes2bit.ts"
import { crc32 } from "./crc32.ts"
import { WireError } from "./errors.ts"
import type { CodecError, WireErrorReason } from "./errors.ts"
import { layoutOf } from "./layout.ts"
import type { TensorLayout } from "./layout.ts"
import { packed12Length, packIndices12, unpackIndices12 } from "./packed12.ts"
import type { IndexCoding } from "./params.ts"
import { decodeRice, encodeRice, RICE_BAD_INDEX, RICE_BAD_PARAM, RICE_OK, RICE_TRUNCATED } from "./rice.ts"
import type { DenseTensor, TensorUpdate } from "./update.ts"

export const MAGIC = new Uint8Array([0x53, 0x4c, 0x43, 0x57]) // "SLCW"
export const WIRE_VERSION = 2
const PREFIX = 12
const MAX_HEADER = 16 * 1024 * 1024
/** Bound on |shift|, scale and |lookup|: pseudo-gradients are far smaller; larger is an attack. */
export const MAX_STAT = 1e6

// ---------------------------------------------------------------- header schema

const isF32 = (x: number): boolean => Math.fround(x) === x
const Stat = Schema.Number.pipe(
  Schema.filter((x) => (Number.isFinite(x) && Math.abs(x) <= MAX_STAT && isF32(x)) || `a finite float32 with |x| <= ${MAX_STAT}`),
)
const Scale = Stat.pipe(Schema.filter((x) => x > 0 || "a positive scale"))
const Dim = Schema.Int.pipe(Schema.between(1, 2 ** 31 - 1))
const Name = Schema.String.pipe(Schema.maxLength(512))

const SparseHeader = Schema.Struct({
  name: Name,
  shape: Schema.Array(Dim).pipe(Schema.minItems(1), Schema.maxItems(2)),
  coding: Schema.Literal("packed12", "rice"),
  chunk: Schema.Int.pipe(Schema.between(1, 64)),
  kEff: Schema.Int.pipe(Schema.between(1, 4096)),
  shift: Stat,
  scale: Scale,
  lookup: Schema.Array(Stat).pipe(Schema.minItems(2), Schema.maxItems(4)),
})
const DenseHeader = Schema.Struct({
  name: Name,
  shape: Schema.Array(Dim).pipe(Schema.minItems(1), Schema.maxItems(8)),
  coding: Schema.Literal("f32"),
})

export const UpdateMeta = Schema.Struct({
  runId: Schema.String.pipe(Schema.maxLength(256)),
  window: Schema.Int.pipe(Schema.nonNegative()),
  uid: Schema.Int.pipe(Schema.between(0, 65535)),
  /** ss58 address (base58 alphabet); its checksum is the transport's to verify with the signature. */
  hotkey: Schema.String.pipe(Schema.pattern(/^[1-9A-HJ-NP-Za-km-z]{40,60}$/)),
  /** Hex digest of the samples this peer trained on. */
  sampleDigest: Schema.String.pipe(Schema.pattern(/^(?:[0-9a-fA-F]{2}){0,64}$/)),
  sampleCount: Schema.Int.pipe(Schema.nonNegative()),
})
export type UpdateMeta = typeof UpdateMeta.Type

const Header = Schema.Struct({
  meta: UpdateMeta,
  tensors: Schema.Array(Schema.Union(SparseHeader, DenseHeader)).pipe(Schema.maxItems(100_000)),
})
type Header = typeof Header.Type
const decodeHeader = Schema.decodeUnknownEither(Header, { onExcessProperty: "error" })

// ---------------------------------------------------------------- messages

export type WireTensor =
  | { readonly coding: IndexCoding; readonly update: TensorUpdate }
  | { readonly coding: "f32"; readonly dense: DenseTensor }

export interface UpdateMessage {
  readonly meta: UpdateMeta
  readonly tensors: readonly WireTensor[]
}

/** What the receiver expects: the model's tensors, in order. */
export interface Manifest {
  readonly tensors: ReadonlyArray<{ readonly name: string; readonly shape: readonly number[] }>
}

const err = (reason: WireErrorReason, message: string) => Either.left(new WireError({ reason, message }))

const numelOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1)

// ---------------------------------------------------------------- encode

const u32 = (x: number): Uint8Array => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, x, true)
  return b
}

const sectionsOf = (t: WireTensor): Either.Either<readonly [Uint8Array, Uint8Array], WireError> => {
  if (t.coding === "f32") {
    const v = t.dense.values
    if (v.length !== numelOf(t.dense.shape)) return err("BadLength", `${t.dense.name}: values do not match the shape`)
    return Either.right([new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)), new Uint8Array(0)])
  }
  const u = t.update
  const l = layoutOf(u.shape, u.chunk)
  if (Either.isLeft(l)) return err("BadHeader", `${u.name}: ${l.left.message}`)
  const n = l.right.nChunks * u.kEff
  if (u.indices.length !== n || u.codes.length !== n) return err("BadLength", `${u.name}: update lengths do not match the shape`)
  const idx = t.coding === "rice" ? encodeRice(u.indices, l.right.nChunks, u.kEff, l.right.totalk) : packIndices12(u.indices)
  return Either.right([idx, packCodes(u.codes)])
}

const headerOf = (t: WireTensor): Header["tensors"][number] =>
  t.coding === "f32"
    ? { name: t.dense.name, shape: [...t.dense.shape], coding: "f32" }
    : {
        name: t.update.name,
        shape: [...t.update.shape],
        coding: t.coding,
        chunk: t.update.chunk,
        kEff: t.update.kEff,
        shift: t.update.shift,
        scale: t.update.scale,
        lookup: Array.from(t.update.lookup),
      }

/** Serialises a message. */
export const encode = (msg: UpdateMessage): Either.Either<Uint8Array, WireError> =>
  Either.gen(function* () {
    const header: Header = { meta: msg.meta, tensors: msg.tensors.map(headerOf) }
    // Validate what we send with the same schema the receiver applies.
    const checked = decodeHeader(header)
    if (Either.isLeft(checked)) {
      return yield* err("BadHeader", ParseResult.TreeFormatter.formatErrorSync(checked.left))
    }
    const headerBytes = new TextEncoder().encode(JSON.stringify(header))
    const parts: Uint8Array[] = []
    for (const t of msg.tensors) {
      const [idx, codes] = yield* sectionsOf(t)
      parts.push(u32(idx.length), idx, u32(codes.length), codes)
    }
    const payload = parts.reduce((a, p) => a + p.length, 0)
    const total = PREFIX + headerBytes.length + payload + 4
    const out = new Uint8Array(total)
    const dv = new DataView(out.buffer)
    out.set(MAGIC, 0)
    out[4] = WIRE_VERSION
    dv.setUint32(8, headerBytes.length, true)
    out.set(headerBytes, PREFIX)
    let o = PREFIX + headerBytes.length
    for (const p of parts) {
      out.set(p, o)
      o += p.length
    }
    dv.setUint32(o, crc32(out, 0, o), true)
    return out
  })

// ---------------------------------------------------------------- decode

class Cursor {
  readonly dv: DataView
  constructor(
    bytes: Uint8Array,
    public at: number,
    readonly end: number,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }
  /** A length-prefixed section: [start, start + len), checked against the remaining input. */
  section(what: string): Either.Either<{ start: number; len: number }, WireError> {
    if (this.end - this.at < 4) return err("Truncated", `${what}: missing length`)
    const len = this.dv.getUint32(this.at, true)
    this.at += 4
    if (len > this.end - this.at) return err("Truncated", `${what}: section of ${len} bytes exceeds the input`)
    const start = this.at
    this.at += len
    return Either.right({ start, len })
  }
}

/**
 * layoutOf per (shape, chunk), remembered: every peer's message repeats the model's shapes, and
 * building a layout's offset table per tensor and peer was ~3% of decoding. Cleared when full, so
 * headers with many distinct shapes cannot grow it without bound. Only read here.
 */
const layouts = new Map<string, Either.Either<TensorLayout, CodecError>>()
const MAX_LAYOUTS = 1024
const cachedLayout = (shape: readonly number[], chunk: number): Either.Either<TensorLayout, CodecError> => {
  const key = `${chunk}:${shape.join(",")}`
  let l = layouts.get(key)
  if (l === undefined) {
    if (layouts.size >= MAX_LAYOUTS) layouts.clear()
    l = layoutOf(shape, chunk)
    layouts.set(key, l)
  }
  return l
}

/** Options of decode. */
export interface DecodeOptions {
  /**
   * Allocate each sparse tensor's indices and codes in a SharedArrayBuffer, so that the decoded
   * update can be posted to a worker thread without a copy (parallel.ts).
   */
  readonly shared?: boolean
}

const bufferOf = (bytes: number, shared: boolean): ArrayBuffer | SharedArrayBuffer => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes))

const decodeSparse = (
  h: typeof SparseHeader.Type,
  bytes: Uint8Array,
  idx: { start: number; len: number },
  cod: { start: number; len: number },
  shared: boolean,
): Either.Either<WireTensor, WireError> => {
  const lr = cachedLayout(h.shape, h.chunk)
  if (Either.isLeft(lr)) return err("BadHeader", `${h.name}: ${lr.left.message}`)
  const l = lr.right
  if (h.kEff > l.totalk) return err("BadHeader", `${h.name}: kEff ${h.kEff} exceeds the chunk length ${l.totalk}`)
  const bins = h.lookup.length
  const n = l.nChunks * h.kEff
  // Lengths are checked before anything of size n is allocated: both sections bound n.
  if (cod.len !== codesLength(n)) return err("BadLength", `${h.name}: code section ${cod.len} bytes, expected ${codesLength(n)}`)
  if (h.coding === "packed12" && idx.len !== packed12Length(n)) {
    return err("BadLength", `${h.name}: index section ${idx.len} bytes, expected ${packed12Length(n)}`)
  }
  if (h.coding === "rice" && (idx.len < 1 || n > 8 * (idx.len - 1))) return err("BadLength", `${h.name}: index section too short for ${n} indices`)
  const indices = new Uint16Array(bufferOf(2 * n, shared))
  if (h.coding === "packed12") {
    if (!unpackIndices12(bytes, idx.start, n, indices)) return err("BadIndex", `${h.name}: non-zero padding index`)
    // int32: JavaScriptCore handles Uint32Array elements less directly
    const seen = new Int32Array(l.totalk)
    for (let c = 0; c < l.nChunks; c++) {
      const stamp = c + 1
      for (let e = c * h.kEff; e < (c + 1) * h.kEff; e++) {
        const j = indices[e]!
        if (j >= l.totalk) return err("BadIndex", `${h.name}: index ${j} >= chunk length ${l.totalk}`)
        if (seen[j] === stamp) return err("DuplicateIndex", `${h.name}: index ${j} twice in chunk ${c}`)
        seen[j] = stamp
      }
    }
  } else {
    const s = decodeRice(bytes, idx.start, idx.start + idx.len, l.nChunks, h.kEff, l.totalk, indices)
    if (s !== RICE_OK) {
      const reason: WireErrorReason = s === RICE_TRUNCATED ? "Truncated" : s === RICE_BAD_INDEX ? "BadIndex" : s === RICE_BAD_PARAM ? "UnknownCoding" : "TrailingBytes"
      return err(reason, `${h.name}: malformed rice index section`)
    }
  }
  const codes = new Uint8Array(bufferOf(n, shared))
  if (!unpackCodes(bytes, cod.start, n, bins, codes)) return err("BadCode", `${h.name}: code >= ${bins} or padding bits set`)
  return Either.right({
    coding: h.coding,
    update: {
      name: h.name,
      shape: h.shape,
      chunk: h.chunk,
      kEff: h.kEff,
      indices,
      codes,
      shift: h.shift,
      scale: h.scale,
      lookup: Float32Array.from(h.lookup),
    },
  })
}

const decodeDense = (
  h: typeof DenseHeader.Type,
  bytes: Uint8Array,
  vals: { start: number; len: number },
  codes: { start: number; len: number },
): Either.Either<WireTensor, WireError> => {
  const numel = numelOf(h.shape)
  if (vals.len !== 4 * numel || codes.len !== 0) return err("BadLength", `${h.name}: dense section ${vals.len} bytes, expected ${4 * numel}`)
  // copy: the section may sit at an offset that is not a multiple of 4
  const values = new Float32Array(bytes.slice(vals.start, vals.start + vals.len).buffer)
  for (let i = 0; i < numel; i++) {
    if (!Number.isFinite(values[i]!)) return err("BadStats", `${h.name}: non-finite value at ${i}`)
  }
  return Either.right({ coding: "f32", dense: { name: h.name, shape: h.shape, values } })
}

const CODINGS: ReadonlySet<unknown> = new Set(["packed12", "rice", "f32"])

/** The first tensor coding this decoder does not know, if any (so it gets its own reason). */
const unknownCoding = (json: unknown): unknown => {
  if (typeof json !== "object" || json === null || !("tensors" in json) || !Array.isArray(json.tensors)) return undefined
  for (const t of json.tensors as unknown[]) {
    if (typeof t === "object" && t !== null && "coding" in t && !CODINGS.has(t.coding)) return t.coding
  }
  return undefined
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i])

export const decode = (bytes: Uint8Array, expected?: Manifest, options: DecodeOptions = {}): Either.Either<UpdateMessage, WireError> =>
  Either.gen(function* () {
    const min = PREFIX + 4
    if (bytes.length < min) return yield* err("Truncated", `${bytes.length} bytes is shorter than the smallest update`)
    for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) return yield* err("BadMagic", "not a SparseLoCo update")
    if (bytes[4] !== WIRE_VERSION) return yield* err("UnknownVersion", `version ${bytes[4]}`)
    if (bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) return yield* err("UnknownVersion", "unknown flags")
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const crcAt = bytes.length - 4
    // A header longer than the input is a truncation, whatever the checksum says.
    const headerLen = dv.getUint32(8, true)
    if (headerLen > MAX_HEADER || headerLen > crcAt - PREFIX) return yield* err("Truncated", `header of ${headerLen} bytes exceeds the input`)
    if (crc32(bytes, 0, crcAt) !== dv.getUint32(crcAt, true)) return yield* err("BadChecksum", "checksum mismatch")
    let json: unknown
    try {
      json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(PREFIX, PREFIX + headerLen)))
    } catch (e) {
      return yield* err("BadHeader", `header is not UTF-8 JSON: ${String(e)}`)
    }
    const unknown = unknownCoding(json)
    if (unknown !== undefined) return yield* err("UnknownCoding", `unknown tensor coding ${JSON.stringify(unknown)}`)
    const header = decodeHeader(json)
    if (Either.isLeft(header)) return yield* err("BadHeader", ParseResult.TreeFormatter.formatErrorSync(header.left))
    const hs = header.right.tensors
    if (expected !== undefined) {
      if (hs.length !== expected.tensors.length) return yield* err("ShapeMismatch", `${hs.length} tensors, expected ${expected.tensors.length}`)
      for (let i = 0; i < hs.length; i++) {
        const e = expected.tensors[i]!
        if (hs[i]!.name !== e.name || !sameShape(hs[i]!.shape, e.shape)) {
          return yield* err("ShapeMismatch", `tensor ${i}: ${hs[i]!.name} [${hs[i]!.shape.join(",")}], expected ${e.name} [${e.shape.join(",")}]`)
        }
      }
    }
    const names = new Set<string>()
    const cur = new Cursor(bytes, PREFIX + headerLen, crcAt)
    const tensors: WireTensor[] = []
    for (const h of hs) {
      if (names.has(h.name)) return yield* err("BadHeader", `tensor ${h.name} twice`)
      names.add(h.name)
      const a = yield* cur.section(h.name)
      const b = yield* cur.section(h.name)
      tensors.push(yield* (h.coding === "f32" ? decodeDense(h, bytes, a, b) : decodeSparse(h, bytes, a, b, options.shared === true)))
    }
    if (cur.at !== crcAt) return yield* err("TrailingBytes", `${crcAt - cur.at} bytes after the last tensor`)
    return { meta: header.right.meta, tensors }
  })
