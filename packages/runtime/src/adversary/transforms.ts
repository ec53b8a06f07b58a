/**
 * Pure rewrites of a decoded update that the adversary catalogue is built from. Each keeps the
 * message encodable unless its name says otherwise (`forgeHeader` writes bytes the decoder must
 * refuse). Values of a sparse tensor are `lookup[code] + shift` at the selected indices.
 */
import { Either } from "effect"
import { compress, crc32, decompress, layoutOf } from "@covenant/sparseloco"
import type { TensorUpdate, UpdateMessage, UpdateMeta, WireTensor } from "@covenant/sparseloco"
import type { CompressionSpec } from "@covenant/dsl"
import { mulberry32 } from "@covenant/gpu-webgpu"
import { RuntimeError, type RuntimeFailure } from "../errors.ts"

const f32 = Math.fround

const mapTensors = (msg: UpdateMessage, f: (t: WireTensor, i: number) => WireTensor): UpdateMessage => ({ meta: msg.meta, tensors: msg.tensors.map(f) })

const mapValues = (t: WireTensor, sparse: (u: TensorUpdate) => TensorUpdate, dense: (v: Float32Array) => Float32Array): WireTensor =>
  t.coding === "f32" ? { coding: "f32", dense: { ...t.dense, values: dense(t.dense.values) } } : { coding: t.coding, update: sparse(t.update) }

/** -update: every value negated (lookup and shift negated; the scale stays positive). */
export const signFlipped = (msg: UpdateMessage): UpdateMessage =>
  mapTensors(msg, (t) => mapValues(t, (u) => ({ ...u, shift: f32(-u.shift), lookup: u.lookup.map((x) => -x) }), (v) => v.map((x) => -x)))

/** factor x update (the wire's statistics bound, 1e6, caps what a sparse update can claim). */
export const scaled = (msg: UpdateMessage, factor: number): UpdateMessage =>
  mapTensors(msg, (t) =>
    mapValues(t, (u) => ({ ...u, shift: f32(u.shift * factor), scale: f32(u.scale * factor), lookup: u.lookup.map((x) => x * factor) }), (v) => v.map((x) => x * factor)))

/** An all-zero update with the honest one's indices (what a free-rider sends). */
export const zeroed = (msg: UpdateMessage): UpdateMessage =>
  mapTensors(msg, (t) => mapValues(t, (u) => ({ ...u, shift: 0, lookup: new Float32Array(u.lookup.length) }), (v) => new Float32Array(v.length)))

/**
 * Noise of the honest norm: per chunk, random distinct indices, and the honest codes shuffled
 * (so the multiset of values, hence the L2 norm, is exactly the honest one's); dense values are
 * shuffled the same way.
 */
export const noiseOfSameNorm = (msg: UpdateMessage, seed: number): UpdateMessage => {
  const next = mulberry32(seed)
  const shuffle = <T extends Uint8Array | Float32Array>(a: T): T => {
    const out = a.slice() as T
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1))
      const x = out[i]!
      out[i] = out[j]!
      out[j] = x
    }
    return out
  }
  return mapTensors(msg, (t) =>
    mapValues(t, (u) => {
      const l = layoutOf(u.shape, u.chunk)
      if (Either.isLeft(l)) return u
      const indices = new Uint16Array(u.indices.length)
      for (let c = 0; c < l.right.nChunks; c++) {
        const picked = new Set<number>()
        while (picked.size < u.kEff) picked.add(Math.floor(next() * l.right.totalk))
        let e = c * u.kEff
        for (const j of picked) indices[e++] = j
      }
      return { ...u, indices, codes: shuffle(u.codes) }
    }, shuffle))
}

/** The message as a dense value per tensor (sparse tensors decompressed), for re-encoding. */
const denseOf = (t: WireTensor): Either.Either<Float32Array, RuntimeFailure> =>
  t.coding === "f32"
    ? Either.right(t.dense.values)
    : Either.mapLeft(decompress(t.update), (e) => new RuntimeError({ phase: "behaviour", reason: `${t.update.name}: ${e.message}` }))

const compressTo = (values: Float32Array, name: string, shape: readonly number[], c: Extract<CompressionSpec, { kind: "sparseloco" }>): Either.Either<WireTensor, RuntimeFailure> =>
  Either.map(
    Either.mapLeft(compress(new Float32Array(values.length), values, shape, c, name), (e) => new RuntimeError({ phase: "behaviour", reason: `${name}: ${e.message}` })),
    (r) => ({ coding: c.indexCoding, update: r.update }),
  )

/** The spec's SparseLoCo parameters, or reference-like ones for a dense (DiLoCo) run. */
const sparseParams = (c: CompressionSpec): Extract<CompressionSpec, { kind: "sparseloco" }> =>
  c.kind === "sparseloco" ? c : { kind: "sparseloco", chunk: 64, topk: 16, efDecay: 0.95, quantBins: 4, quantRange: 6, indexCoding: "packed12" }

/**
 * The same values, re-compressed with another chunk edge than the spec's (32, or 16 when the
 * spec's is 32): a well-formed update of the right shapes with the wrong codec parameters.
 */
export const withChunk = (msg: UpdateMessage, compression: CompressionSpec, chunk?: number): Either.Either<UpdateMessage, RuntimeFailure> =>
  Either.gen(function* () {
    const base = sparseParams(compression)
    const edge = chunk ?? (base.chunk === 32 ? 16 : 32)
    const c = { ...base, chunk: edge, topk: Math.min(base.topk, edge * edge - ((edge * edge) % 2)) }
    const tensors: WireTensor[] = []
    for (const t of msg.tensors) {
      const name = t.coding === "f32" ? t.dense.name : t.update.name
      const shape = t.coding === "f32" ? t.dense.shape : t.update.shape
      tensors.push(yield* compressTo(yield* denseOf(t), name, shape, c))
    }
    return { meta: msg.meta, tensors }
  })

/** The first tensor's leading dimension doubled (values tiled): a well-formed update of the wrong shape. */
export const wrongShape = (msg: UpdateMessage, compression: CompressionSpec): Either.Either<UpdateMessage, RuntimeFailure> =>
  Either.gen(function* () {
    const [first, ...rest] = msg.tensors
    if (first === undefined) return msg
    const values = yield* denseOf(first)
    const tiled = new Float32Array(values.length * 2)
    tiled.set(values, 0)
    tiled.set(values, values.length)
    const name = first.coding === "f32" ? first.dense.name : first.update.name
    const shape0 = first.coding === "f32" ? first.dense.shape : first.update.shape
    const shape = [shape0[0]! * 2, ...shape0.slice(1)]
    const t: WireTensor = compression.kind === "none"
      ? { coding: "f32", dense: { name, shape, values: tiled } }
      : yield* compressTo(tiled, name, shape, compression)
    return { meta: msg.meta, tensors: [t, ...rest] }
  })

/** The message under another peer's identity (uid, hotkey) and window: tensors untouched. */
export const relabelled = (msg: UpdateMessage, meta: Partial<UpdateMeta>): UpdateMessage => ({ meta: { ...msg.meta, ...meta }, tensors: msg.tensors })

/**
 * Rewrites the header JSON of encoded bytes (`edit` gets and returns its text) and recomputes
 * the checksum, so the bytes reach the header check. Used for values JSON cannot carry or the
 * encoder refuses (NaN, Infinity).
 */
export const forgeHeader = (encoded: Uint8Array, edit: (header: string) => string): Uint8Array => {
  const dv = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength)
  const headerLen = dv.getUint32(8, true)
  const header = new TextDecoder().decode(encoded.subarray(12, 12 + headerLen))
  const forged = new TextEncoder().encode(edit(header))
  const body = encoded.subarray(12 + headerLen, encoded.length - 4)
  const out = new Uint8Array(12 + forged.length + body.length + 4)
  out.set(encoded.subarray(0, 12), 0)
  new DataView(out.buffer).setUint32(8, forged.length, true)
  out.set(forged, 12)
  out.set(body, 12 + forged.length)
  const crcAt = 12 + forged.length + body.length
  new DataView(out.buffer).setUint32(crcAt, crc32(out, 0, crcAt), true)
  return out
}

/** Every `"shift":<number>` of the header replaced by `value` (e.g. `NaN`, `1e999` = Infinity in JSON). */
export const withShiftText = (value: string) => (header: string): string => header.replace(/"shift":[^,}]+/g, `"shift":${value}`)
