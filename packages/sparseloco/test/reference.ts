/**
 * A slow, deliberately plain re-statement of the reference (tplr compress.py + outer_step) used
 * only by the tests: explicit 4-D rearrangement, full sort per chunk, Map-based scatter. It shares
 * no code with src/ beyond Math.fround, so agreement with src/ is evidence, not tautology.
 */
const f32 = Math.fround

export const refEdge = (d: number, target = 64): number => {
  const divisors: number[] = []
  for (let e = 1; e <= d; e++) if (d % e === 0) divisors.push(e)
  return Math.max(...divisors.filter((e) => e <= target))
}

/** Chunk c, local j -> dense flat index, by explicit (y h)(x w) -> y x (h w) coordinates. */
export const refChunks = (shape: readonly number[], target = 64): number[][] => {
  const chunks: number[][] = []
  if (shape.length === 1) {
    const n = refEdge(shape[0]!, target)
    for (let x = 0; x < shape[0]! / n; x++) chunks.push(Array.from({ length: n }, (_, w) => x * n + w))
    return chunks
  }
  const [rows, cols] = [shape[0]!, shape[1]!]
  const h = refEdge(rows, target)
  const w = refEdge(cols, target)
  for (let y = 0; y < rows / h; y++) {
    for (let x = 0; x < cols / w; x++) {
      const chunk: number[] = []
      for (let hh = 0; hh < h; hh++) for (let ww = 0; ww < w; ww++) chunk.push((y * h + hh) * cols + x * w + ww)
      chunks.push(chunk)
    }
  }
  return chunks
}

export const refK = (k: number, totalk: number): number => {
  let kk = Math.max(Math.min(k, totalk), 2)
  kk -= kk % 2
  return kk
}

const roundEven = (t: number): number => {
  const r = Math.round(t)
  // Math.round sends halves up; torch.round sends them to the even neighbour
  return Math.abs(t - Math.trunc(t)) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

export interface RefStep {
  efMid: Float32Array
  /** per chunk, in the order the values are listed (`order`) */
  idx: number[][]
  vals: number[]
  codes: number[]
  shift: number
  scale: number
  lookup: number[]
  deq: number[]
  decoded: Float32Array
  efOut: Float32Array
}

/**
 * One codec step. `order`: "descending" lists each chunk's indices by descending |x| (as torch's
 * CPU partial sort does), "ascending" by index (as src/ does); ties broken by lower index.
 */
export const refStep = (
  efIn: Float32Array,
  delta: Float32Array,
  shape: readonly number[],
  k: number,
  order: "descending" | "ascending",
  opts: { decay?: number; bins?: number; range?: number; target?: number; ties?: "low" | "high" } = {},
): RefStep => {
  const decay = opts.decay ?? 0.95
  const bins = opts.bins ?? 4
  const range = opts.range ?? 6
  const efMid = new Float32Array(efIn.length)
  for (let i = 0; i < efIn.length; i++) efMid[i] = f32(f32(efIn[i]! * f32(decay)) + delta[i]!)
  const chunks = refChunks(shape, opts.target ?? 64)
  const kk = refK(k, chunks[0]!.length)
  const idx = chunks.map((chunk) => {
    const tie = opts.ties === "high" ? -1 : 1
    const byMag = chunk.map((_, j) => j).sort((a, b) => Math.abs(efMid[chunk[b]!]!) - Math.abs(efMid[chunk[a]!]!) || tie * (a - b))
    const top = byMag.slice(0, kk)
    return order === "ascending" ? top.sort((a, b) => a - b) : top
  })
  const vals = idx.flatMap((sel, c) => sel.map((j) => efMid[chunks[c]![j]!]!))
  const n = vals.length
  let sum = 0
  for (const v of vals) sum += v
  const shift = f32(sum / n)
  const centred = vals.map((v) => f32(v - shift))
  const norm = f32(Math.sqrt(centred.reduce((a, c) => a + c * c, 0)))
  let scale = f32(f32(range * f32(norm / Math.sqrt(n - 1))) / bins)
  if (scale === 0 || !Number.isFinite(scale)) scale = 1
  const codes = centred.map((c) => Math.min(bins - 1, Math.max(0, roundEven(f32(f32(c / scale) + bins / 2)))))
  const lookup: number[] = []
  for (let b = 0; b < bins; b++) {
    let s = 0
    let count = 0
    centred.forEach((c, i) => {
      if (codes[i] === b) {
        s = f32(s + c)
        count++
      }
    })
    lookup.push(count > 0 ? f32(s / count) : 0)
  }
  const deq = codes.map((q) => f32(lookup[q]! + shift))
  const decoded = new Float32Array(efIn.length)
  let e = 0
  idx.forEach((sel, c) => sel.forEach((j) => (decoded[chunks[c]![j]!] = deq[e++]!)))
  const efOut = new Float32Array(efIn.length)
  for (let i = 0; i < efIn.length; i++) efOut[i] = f32(efMid[i]! - decoded[i]!)
  return { efMid, idx, vals, codes, shift, scale, lookup, deq, decoded, efOut }
}

export interface RefAggregate {
  norms: number[]
  median: number
  factors: number[]
  aggregated: Float32Array
}

/** outer_step's aggregation over peers' (idx per chunk, deq) in peer order. */
export const refAggregate = (shape: readonly number[], peers: ReadonlyArray<Pick<RefStep, "idx" | "deq">>, target = 64): RefAggregate => {
  const chunks = refChunks(shape, target)
  const norms = peers.map((p) => f32(Math.sqrt(p.deq.reduce((a, v) => a + v * v, 0))))
  const median = [...norms].sort((a, b) => a - b)[Math.floor((norms.length - 1) / 2)]!
  const factors = norms.map((nm) => Math.min(1, f32(median / f32(nm + f32(1e-8)))))
  const sums = new Map<number, number>()
  const counts = new Map<number, number>()
  peers.forEach((p, pi) => {
    let e = 0
    p.idx.forEach((sel, c) =>
      sel.forEach((j) => {
        const at = chunks[c]![j]!
        sums.set(at, f32((sums.get(at) ?? 0) + f32(p.deq[e++]! * factors[pi]!)))
        counts.set(at, (counts.get(at) ?? 0) + 1)
      }),
    )
  })
  const aggregated = new Float32Array(chunks.length * chunks[0]!.length)
  for (const [at, s] of sums) aggregated[at] = f32(s / counts.get(at)!)
  return { norms, median, factors, aggregated }
}

// ------------------------------------------------------------ golden-vector files in the reference's format

const arr = (dtype: "float32" | "int32" | "uint8", shape: number[], data: ArrayLike<number>) => {
  const typed = dtype === "float32" ? Float32Array.from(data) : dtype === "int32" ? Int32Array.from(data) : Uint8Array.from(data)
  return { dtype, shape, b64: Buffer.from(typed.buffer).toString("base64") }
}

const pack12 = (flat: number[]): number[] => {
  const out: number[] = []
  for (let i = 0; i < flat.length; i += 2) {
    const [a, b] = [flat[i]!, flat[i + 1]!]
    out.push(a & 0xff, ((a >> 8) & 0xf) | ((b & 0xf) << 4), (b >> 4) & 0xff)
  }
  return out
}

const valsShape = (shape: readonly number[], kk: number, target: number): number[] =>
  shape.length === 1 ? [shape[0]! / refEdge(shape[0]!, target), kk] : [shape[0]! / refEdge(shape[0]!, target), shape[1]! / refEdge(shape[1]!, target), kk]

const peerFields = (shape: readonly number[], efIn: Float32Array, delta: Float32Array, s: RefStep, target: number) => {
  const kk = s.idx[0]!.length
  const vs = valsShape(shape, kk, target)
  const flat = s.idx.flat()
  return {
    ef_in: arr("float32", [...shape], efIn),
    delta: arr("float32", [...shape], delta),
    idx: arr("int32", vs, flat),
    idx_packed: arr("uint8", [(flat.length * 3) / 2], pack12(flat)),
    codes: arr("uint8", vs, s.codes),
    vals_selected: arr("float32", vs, s.vals),
    vals_dequant: arr("float32", vs, s.deq),
    shift: s.shift,
    scale: s.scale,
    offset: 2,
    lookup: arr("float32", [s.lookup.length], s.lookup),
    lookup_list: s.lookup,
    vals_shape: vs,
    ef_out: arr("float32", [...shape], s.efOut),
    decoded: arr("float32", [...shape], s.decoded),
  }
}

const common = (name: string, kind: string, shape: readonly number[], k: number, target: number) => {
  const edges = shape.map((d) => refEdge(d, target))
  const totalk = edges.reduce((a, b) => a * b, 1)
  return {
    format: "sparseloco-golden/1",
    kind,
    case: name,
    shape: [...shape],
    k,
    k_effective: refK(k, totalk),
    target_chunk: target,
    chunk: edges,
    totalk,
    momentum_decay: 0.95,
    quantization_bins: 4,
    quantization_range: 6,
    use_dct: false,
  }
}

export const codecFile = (
  name: string,
  shape: readonly number[],
  k: number,
  efIn: Float32Array,
  delta: Float32Array,
  target = 64,
  ties: "low" | "high" = "low",
) => {
  const s = refStep(efIn, delta, shape, k, "descending", { target, ties })
  return { ...common(name, "codec", shape, k, target), ef_mid: arr("float32", [...shape], s.efMid), ...peerFields(shape, efIn, delta, s, target) }
}

export const aggregationFile = (
  name: string,
  shape: readonly number[],
  k: number,
  inputs: ReadonlyArray<{ efIn: Float32Array; delta: Float32Array }>,
  target = 64,
) => {
  const steps = inputs.map((p) => refStep(p.efIn, p.delta, shape, k, "descending", { target }))
  const agg = refAggregate(shape, steps, target)
  return {
    ...common(name, "aggregation", shape, k, target),
    n_peers: inputs.length,
    peers: steps.map((s, i) => peerFields(shape, inputs[i]!.efIn, inputs[i]!.delta, s, target)),
    per_peer_dense_omitted: false,
    peer_norms: arr("float32", [inputs.length], agg.norms),
    median_norm: agg.median,
    clip_factors: arr("float32", [inputs.length], agg.factors),
    aggregated: arr("float32", [...shape], agg.aggregated),
  }
}

/** Deterministic normal-ish floats (sum of uniforms) from a small LCG. */
export const randn = (n: number, seed: number, scale = 1): Float32Array => {
  let s = seed >>> 0 || 1
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s / 2 ** 32
  }
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = (u() + u() + u() + u() - 2) * 1.7320508 * scale
  return out
}

/**
 * Golomb-Rice decoding one bit at a time, as the format defines it, with the decoder's verdicts:
 * 1 truncated, 2 bad index (also a zero run longer than (totalk - 1) >> r, even one cut off by the
 * end), 3 bad parameter, 4 trailing bytes or non-zero padding; 0 and `out` filled when valid.
 */
export const refDecodeRice = (bytes: Uint8Array, at: number, end: number, nChunks: number, k: number, totalk: number, out: Uint16Array): number => {
  if (end - at < 1) return 1
  const r = bytes[at]!
  if (r > 12) return 3
  const maxQ = (totalk - 1) >> r
  const totalBits = 8 * (end - at - 1)
  let pos = 0
  const bit = () => (bytes[at + 1 + (pos >> 3)]! >> (7 - (pos++ & 7))) & 1
  for (let c = 0; c < nChunks; c++) {
    let prev = -1
    for (let e = c * k; e < (c + 1) * k; e++) {
      let q = 0
      for (;;) {
        if (pos === totalBits) return q > maxQ ? 2 : 1
        if (bit() === 1) break
        q++
      }
      if (q > maxQ) return 2
      if (totalBits - pos < r) return 1
      let rem = 0
      for (let b = 0; b < r; b++) rem = (rem << 1) | bit()
      const i = prev + 1 + ((q << r) | rem)
      if (i >= totalk) return 2
      out[e] = i
      prev = i
    }
  }
  if (totalBits - pos >= 8) return 4
  while (pos < totalBits) if (bit() !== 0) return 4
  return 0
}
