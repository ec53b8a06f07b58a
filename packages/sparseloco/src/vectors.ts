/**
 * Checks golden-vector files (format "sparseloco-golden/1", see the vectors README) against this
 * codec: what the reference makes bit-exact is compared bit for bit, what depends on torch's
 * reduction order (shift, scale, norms) within a small tolerance, and end-to-end results within 1e-5.
 */
import { Either, Schema } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { aggregate, clipFactors, lowerMedian } from "./aggregate.ts"
import { compress, decompress } from "./compress.ts"
import { clampK } from "@covenant/dsl"
import { chunkBase, layoutOf } from "./layout.ts"
import type { TensorLayout } from "./layout.ts"
import { packIndices12, unpackIndices12 } from "./packed12.ts"
import { codeOf, lookupOf, meanF32, scaleOf } from "./quantize.ts"
import type { TensorUpdate } from "./update.ts"

const f32 = Math.fround

const Arr = Schema.Struct({
  dtype: Schema.Literal("float32", "int32", "uint8"),
  shape: Schema.Array(Schema.Int),
  b64: Schema.String,
})
type Arr = typeof Arr.Type

const PeerFields = {
  ef_in: Schema.optional(Arr),
  delta: Schema.optional(Arr),
  idx: Schema.optional(Arr),
  idx_packed: Schema.optional(Arr),
  codes: Schema.optional(Arr),
  vals_selected: Schema.optional(Arr),
  vals_dequant: Schema.optional(Arr),
  shift: Schema.optional(Schema.Number),
  scale: Schema.optional(Schema.Number),
  lookup: Schema.optional(Arr),
  ef_out: Schema.optional(Arr),
  decoded: Schema.optional(Arr),
}
const Peer = Schema.Struct(PeerFields)
type Peer = typeof Peer.Type

const VectorFile = Schema.Struct({
  format: Schema.Literal("sparseloco-golden/1"),
  kind: Schema.String,
  case: Schema.optional(Schema.String),
  shape: Schema.Array(Schema.Int),
  k: Schema.Int,
  k_effective: Schema.optional(Schema.Int),
  target_chunk: Schema.optional(Schema.Int),
  chunk: Schema.optional(Schema.Array(Schema.Int)),
  totalk: Schema.optional(Schema.Int),
  momentum_decay: Schema.optional(Schema.Number),
  quantization_bins: Schema.optional(Schema.Int),
  quantization_range: Schema.optional(Schema.Number),
  ef_mid: Schema.optional(Arr),
  peers: Schema.optional(Schema.Array(Peer)),
  peer_norms: Schema.optional(Arr),
  median_norm: Schema.optional(Schema.Number),
  clip_factors: Schema.optional(Arr),
  aggregated: Schema.optional(Arr),
  ...PeerFields,
})
type VectorFile = typeof VectorFile.Type

const bytesOf = (a: Arr): Uint8Array => {
  const b = Buffer.from(a.b64, "base64")
  // copy into a fresh, aligned buffer
  return new Uint8Array(b)
}
const f32Of = (a: Arr): Float32Array => {
  if (a.dtype !== "float32") throw new Check(`expected float32, got ${a.dtype}`)
  return new Float32Array(bytesOf(a).buffer)
}
const i32Of = (a: Arr): Int32Array => {
  if (a.dtype !== "int32") throw new Check(`expected int32, got ${a.dtype}`)
  return new Int32Array(bytesOf(a).buffer)
}
const u8Of = (a: Arr): Uint8Array => {
  if (a.dtype !== "uint8") throw new Check(`expected uint8, got ${a.dtype}`)
  return bytesOf(a)
}

/** A failed comparison; thrown inside the checker only and turned into a FAIL line. */
class Check extends Error {}

const need = <A>(x: A | undefined, what: string): A => {
  if (x === undefined) throw new Check(`missing field ${what}`)
  return x
}

const sameBits = (a: Float32Array, b: Float32Array, what: string): void => {
  if (a.length !== b.length) throw new Check(`${what}: length ${a.length} vs ${b.length}`)
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length)
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length)
  for (let i = 0; i < a.length; i++) {
    if (ua[i] !== ub[i] && !(a[i] !== a[i] && b[i] !== b[i])) throw new Check(`${what}: element ${i}: ${a[i]} vs ${b[i]} (expected)`)
  }
}

const sameInts = (a: ArrayLike<number>, b: ArrayLike<number>, what: string): void => {
  if (a.length !== b.length) throw new Check(`${what}: length ${a.length} vs ${b.length}`)
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) throw new Check(`${what}: element ${i}: ${a[i]} vs ${b[i]} (expected)`)
}

const relClose = (ours: number, theirs: number, tol: number, what: string): void => {
  if (!(Math.abs(ours - theirs) <= tol * Math.abs(theirs))) throw new Check(`${what}: ${ours} vs ${theirs} (expected), rel tol ${tol}`)
}

const ulp = (x: number): number => {
  const a = Math.abs(f32(x))
  const up = new Float32Array([a])
  const bits = new Uint32Array(up.buffer)
  bits[0] = bits[0]! + 1
  return up[0]! - a
}

/**
 * Element-wise relative closeness; `scale` (default: the expected values) sets each element's
 * magnitude, so a residual like ef_out = ef_mid - decoded is judged against ef_mid.
 */
const denseClose = (ours: Float32Array, theirs: Float32Array, tol: number, what: string, scale: Float32Array = theirs): void => {
  if (ours.length !== theirs.length) throw new Check(`${what}: length ${ours.length} vs ${theirs.length}`)
  let maxAbs = 0
  for (let i = 0; i < theirs.length; i++) maxAbs = Math.max(maxAbs, Math.abs(theirs[i]!))
  for (let i = 0; i < theirs.length; i++) {
    const d = Math.abs(ours[i]! - theirs[i]!)
    const mag = Math.max(Math.abs(theirs[i]!), Math.abs(scale[i]!))
    if (!(d <= tol * Math.max(mag, 1e-3 * maxAbs))) throw new Check(`${what}: element ${i}: ${ours[i]} vs ${theirs[i]} (expected)`)
  }
}

const unwrap = <A, E extends { message: string }>(e: Either.Either<A, E>, what: string): A => {
  if (Either.isLeft(e)) throw new Check(`${what}: ${e.left.message}`)
  return e.right
}

interface Settings {
  readonly shape: readonly number[]
  readonly target: number
  readonly k: number
  readonly kEff: number
  readonly decay: number
  readonly bins: number
  readonly range: number
  readonly layout: TensorLayout
}

const settingsOf = (f: VectorFile): Settings => {
  const target = f.target_chunk ?? 64
  const layout = unwrap(layoutOf(f.shape, target), "layout")
  if (f.chunk !== undefined) sameInts(layout.edges, f.chunk, "chunk edges")
  if (f.totalk !== undefined && f.totalk !== layout.totalk) throw new Check(`totalk ${layout.totalk} vs ${f.totalk}`)
  const kEff = clampK(f.k, layout.totalk)
  if (f.k_effective !== undefined && f.k_effective !== kEff) throw new Check(`k_effective ${kEff} vs ${f.k_effective}`)
  return {
    shape: f.shape,
    target,
    k: f.k,
    kEff,
    decay: f.momentum_decay ?? 0.95,
    bins: f.quantization_bins ?? 4,
    range: f.quantization_range ?? 6,
    layout,
  }
}

/** |x| of the chunk-local element j of chunk c. */
const absAt = (s: Settings, x: Float32Array, c: number, j: number): number => Math.abs(x[chunkBase(s.layout, c) + s.layout.localOffset[j]!]!)

/** Per-chunk index sets equal, or differing only among elements tied at the k-th |x|. */
const checkSelection = (s: Settings, efMid: Float32Array, theirs: Int32Array, ours: Uint16Array): boolean => {
  const { nChunks, totalk } = s.layout
  const k = s.kEff
  let tied = false
  for (let c = 0; c < nChunks; c++) {
    const a = Array.from(theirs.subarray(c * k, (c + 1) * k)).sort((x, y) => x - y)
    const b = Array.from(ours.subarray(c * k, (c + 1) * k)).sort((x, y) => x - y)
    if (a.every((v, i) => v === b[i])) continue
    // theirs must still be a valid top-k: every selected |x| >= every unselected |x|
    const sel = new Set(a)
    let minSel = Infinity
    let maxUnsel = -Infinity
    for (let j = 0; j < totalk; j++) {
      const v = absAt(s, efMid, c, j)
      if (sel.has(j)) minSel = Math.min(minSel, v)
      else maxUnsel = Math.max(maxUnsel, v)
    }
    if (sel.size !== k || minSel < maxUnsel) throw new Check(`chunk ${c}: index set differs from ours and is not a valid top-${k}`)
    tied = true
  }
  return tied
}

interface PeerResult {
  readonly efMid: Float32Array | undefined
  /** Our own end-to-end update, or undefined without ef_in/delta. */
  readonly ours: TensorUpdate | undefined
  /** The reference's update as a TensorUpdate (file order). */
  readonly theirs: TensorUpdate
}

const checkPeer = (s: Settings, p: Peer, fileEfMid: Arr | undefined, label: string): PeerResult => {
  const at = (what: string) => `${label}${what}`
  const n = s.layout.nChunks * s.kEff
  let efMid: Float32Array | undefined
  if (p.ef_in !== undefined && p.delta !== undefined) {
    const efIn = f32Of(p.ef_in)
    const delta = f32Of(p.delta)
    const beta = f32(s.decay)
    efMid = new Float32Array(efIn.length)
    for (let i = 0; i < efIn.length; i++) efMid[i] = f32(efIn[i]! * beta) + delta[i]!
    if (fileEfMid !== undefined) sameBits(efMid, f32Of(fileEfMid), at("ef_mid"))
  } else if (fileEfMid !== undefined) efMid = f32Of(fileEfMid)

  const idx = i32Of(need(p.idx, at("idx")))
  if (idx.length !== n) throw new Check(at(`idx: ${idx.length} entries, expected ${n} (k_eff ${s.kEff} x ${s.layout.nChunks} chunks)`))
  const codes = u8Of(need(p.codes, at("codes")))
  if (codes.length !== n) throw new Check(at(`codes: ${codes.length} entries, expected ${n}`))
  for (let e = 0; e < n; e++) if (idx[e]! < 0 || idx[e]! >= s.layout.totalk) throw new Check(at(`idx: ${idx[e]} out of range`))

  if (p.idx_packed !== undefined) {
    const packed = u8Of(p.idx_packed)
    sameInts(packIndices12(idx), packed, at("idx_packed (packing the given idx order)"))
    const back = new Uint16Array(n)
    if (!unpackIndices12(packed, 0, n, back)) throw new Check(at("idx_packed: bad padding"))
    sameInts(back, idx, at("unpack(idx_packed)"))
  }

  const vals = f32Of(need(p.vals_selected, at("vals_selected")))
  if (efMid !== undefined) {
    const got = new Float32Array(n)
    for (let c = 0; c < s.layout.nChunks; c++) {
      for (let e = c * s.kEff; e < (c + 1) * s.kEff; e++) got[e] = efMid[chunkBase(s.layout, c) + s.layout.localOffset[idx[e]!]!]!
    }
    sameBits(got, vals, at("vals_selected vs ef_mid at idx"))
  }
  const shift = f32(need(p.shift, at("shift")))
  const scale = f32(need(p.scale, at("scale")))
  const ourCodes = new Uint8Array(n)
  for (let e = 0; e < n; e++) ourCodes[e] = codeOf(vals[e]!, shift, scale, s.bins)
  sameInts(ourCodes, codes, at("codes given the file's shift/scale"))
  const ourShift = meanF32(vals, n)
  // torch's float32 mean differs by a few ulps of the inputs; near-cancelling means need that floor
  let maxV = 0
  for (let e = 0; e < n; e++) maxV = Math.max(maxV, Math.abs(vals[e]!))
  const shiftClose = (ours: number, what: string) => {
    if (!(Math.abs(ours - shift) <= Math.max(1e-6 * Math.abs(shift), 8 * 2 ** -24 * maxV))) throw new Check(`${what}: ${ours} vs ${shift} (expected)`)
  }
  shiftClose(ourShift, at("shift"))
  relClose(scaleOf(vals, n, ourShift, s.bins, s.range), scale, 1e-6, at("scale"))
  const lookup = f32Of(need(p.lookup, at("lookup")))
  sameBits(lookupOf(vals, codes, n, shift, s.bins), lookup, at("lookup given the codes"))
  const deq = new Float32Array(n)
  for (let e = 0; e < n; e++) deq[e] = lookup[codes[e]!]! + shift
  if (p.vals_dequant !== undefined) sameBits(deq, f32Of(p.vals_dequant), at("vals_dequant"))

  const theirs: TensorUpdate = {
    name: label,
    shape: s.shape,
    chunk: s.target,
    kEff: s.kEff,
    indices: Uint16Array.from(idx),
    codes,
    shift,
    scale,
    lookup,
  }
  const decoded = unwrap(decompress(theirs), at("decompress"))
  if (p.decoded !== undefined) sameBits(decoded, f32Of(p.decoded), at("decoded"))
  if (efMid !== undefined && p.ef_out !== undefined) {
    const efOut = new Float32Array(efMid.length)
    for (let i = 0; i < efMid.length; i++) efOut[i] = efMid[i]! - decoded[i]!
    sameBits(efOut, f32Of(p.ef_out), at("ef_out"))
  }

  let ours: TensorUpdate | undefined
  if (p.ef_in !== undefined && p.delta !== undefined && efMid !== undefined) {
    const ef = f32Of(p.ef_in)
    const r = unwrap(
      compress(ef, f32Of(p.delta), s.shape, {
        chunk: s.target,
        topk: s.k,
        efDecay: s.decay,
        quantBins: s.bins,
        quantRange: s.range,
        indexCoding: "rice",
      }),
      at("compress"),
    )
    // with ties at the k-th |x| another valid selection sends other values: compare no further
    const tied = checkSelection(s, efMid, idx, r.update.indices)
    if (!tied) {
      shiftClose(r.update.shift, at("end-to-end shift"))
      relClose(r.update.scale, scale, 1e-6, at("end-to-end scale"))
      const ourDecoded = unwrap(decompress(r.update), at("decompress ours"))
      denseClose(ourDecoded, decoded, 1e-5, at("end-to-end decoded"))
      if (p.ef_out !== undefined) denseClose(r.ef, f32Of(p.ef_out), 1e-5, at("end-to-end ef_out"), efMid)
    }
    ours = tied ? undefined : r.update
  }
  return { efMid, ours, theirs }
}

const checkAggregation = (s: Settings, f: VectorFile): void => {
  const peers = need(f.peers, "peers")
  if (peers.length === 0) throw new Check("no peers")
  const results = peers.map((p, i) => checkPeer(s, p, undefined, `peer ${i}: `))
  const fileNorms = f32Of(need(f.peer_norms, "peer_norms"))
  if (fileNorms.length !== peers.length) throw new Check("peer_norms: one per peer expected")
  results.forEach((r, i) => {
    const deq = unwrap(decompress(r.theirs), "decompress")
    let ss = 0
    for (let e = 0; e < deq.length; e++) ss += deq[e]! * deq[e]!
    const norm = f32(Math.sqrt(ss))
    if (!(Math.abs(norm - fileNorms[i]!) <= 2 * ulp(fileNorms[i]!))) throw new Check(`peer ${i}: norm ${norm} vs ${fileNorms[i]} (expected), beyond 2 ulp`)
  })
  if (f.median_norm !== undefined && lowerMedian(fileNorms) !== f32(f.median_norm)) {
    throw new Check(`median ${lowerMedian(fileNorms)} vs ${f.median_norm} (expected)`)
  }
  const fileFactors = f32Of(need(f.clip_factors, "clip_factors"))
  sameBits(clipFactors(fileNorms), fileFactors, "clip factors given the file's norms")
  const expected = f32Of(need(f.aggregated, "aggregated"))
  const exact = unwrap(aggregate(results.map((r) => r.theirs), { factors: fileFactors }), "aggregate")
  sameBits(exact.dense, expected, "aggregated given the file's clip factors")
  const ours = results.map((r) => r.ours)
  if (ours.every((u): u is TensorUpdate => u !== undefined)) {
    const e2e = unwrap(aggregate(ours), "aggregate ours")
    denseClose(e2e.dense, expected, 1e-5, "end-to-end aggregated")
  }
}

export interface CaseResult {
  readonly name: string
  readonly ok: boolean
  readonly reason?: string
}

export const checkCase = (name: string, json: unknown): CaseResult => {
  const decoded = Schema.decodeUnknownEither(VectorFile)(json)
  if (Either.isLeft(decoded)) return { name, ok: false, reason: `not a golden-vector file: ${decoded.left.message.split("\n")[0]}` }
  const f = decoded.right
  try {
    const s = settingsOf(f)
    if (f.peers !== undefined || f.kind === "aggregation") checkAggregation(s, f)
    else if (f.idx !== undefined || f.codes !== undefined) checkPeer(s, f, f.ef_mid, "")
    else throw new Check(`unknown kind ${f.kind}`)
    return { name, ok: true }
  } catch (e) {
    if (e instanceof Check) return { name, ok: false, reason: e.message }
    return { name, ok: false, reason: `unexpected: ${String(e)}` }
  }
}

export const checkFolder = (dir: string): CaseResult[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => {
      const name = f.replace(/\.json$/, "")
      let json: unknown
      try {
        json = JSON.parse(readFileSync(join(dir, f), "utf8"))
      } catch (e) {
        return { name, ok: false, reason: `unreadable JSON: ${String(e)}` }
      }
      return checkCase(name, json)
    })
