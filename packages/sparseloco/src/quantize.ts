/**
 * Per-tensor quantization of the selected values, in float32 semantics as the reference:
 * shift = mean, scale = range * unbiased-sigma / bins (0, NaN or inf -> 1), codes by
 * round-half-to-even, and a lookup table of per-bin means of the centred values.
 */
const f32 = Math.fround

/** torch.round: halves go to the even neighbour. */
export const roundHalfEven = (t: number): number => {
  const f = Math.floor(t)
  const d = t - f
  if (d > 0.5) return f + 1
  if (d < 0.5) return f
  return f % 2 === 0 ? f : f + 1
}

export interface QuantStats {
  readonly shift: number
  readonly scale: number
  readonly lookup: Float32Array
}

/** Mean of `v[0..n)` rounded to float32 (the exact mean, not torch's reduction order). */
export const meanF32 = (v: Float32Array, n: number): number => {
  let s = 0
  for (let i = 0; i < n; i++) s += v[i]!
  return f32(s / n)
}

/** The reference's scale from the values and their float32 mean. */
export const scaleOf = (v: Float32Array, n: number, shift: number, bins: number, range: number): number => {
  let ss = 0
  for (let i = 0; i < n; i++) {
    const c = f32(v[i]! - shift)
    ss += c * c
  }
  const norm = f32(Math.sqrt(ss))
  const std = f32(norm / Math.sqrt(n - 1))
  const scale = f32(f32(range * std) / bins)
  return scale === 0 || !Number.isFinite(scale) ? 1 : scale
}

/** Code of one value given the stats (float32 divide, add offset, round half even, clamp). */
export const codeOf = (v: number, shift: number, scale: number, bins: number): number => {
  const t = f32(f32(f32(v - shift) / scale) + (bins >> 1))
  const q = roundHalfEven(t)
  // NaN compares false both ways and lands on 0, as a uint8 cast of NaN does in practice.
  return q >= bins - 1 ? bins - 1 : q > 0 ? q : 0
}

/** Per-bin float32 means of the centred values, summed sequentially in the given order. */
export const lookupOf = (v: Float32Array, codes: Uint8Array, n: number, shift: number, bins: number): Float32Array => {
  const sums = new Float32Array(bins)
  const counts = new Float64Array(bins)
  for (let i = 0; i < n; i++) {
    const q = codes[i]!
    sums[q] = sums[q]! + f32(v[i]! - shift)
    counts[q]!++
  }
  const lookup = new Float32Array(bins)
  for (let b = 0; b < bins; b++) lookup[b] = counts[b]! > 0 ? sums[b]! / counts[b]! : 0
  return lookup
}

/** Quantize `v[0..n)` into `codes`, returning the stats. */
export const quantize = (v: Float32Array, n: number, codes: Uint8Array, bins: number, range: number): QuantStats => {
  const shift = meanF32(v, n)
  const scale = scaleOf(v, n, shift, bins, range)
  for (let i = 0; i < n; i++) codes[i] = codeOf(v[i]!, shift, scale, bins)
  return { shift, scale, lookup: lookupOf(v, codes, n, shift, bins) }
}

/** The float32 value each code decodes to: lookup[q] + shift. */
export const dequantTable = (s: QuantStats): Float32Array => {
  const t = new Float32Array(s.lookup.length)
  for (let b = 0; b < t.length; b++) t[b] = s.lookup[b]! + s.shift
  return t
}
