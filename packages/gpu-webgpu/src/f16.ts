/**
 * IEEE 754 half precision on the CPU: the CPU references of f16 kernels store halves as their
 * bit patterns (Uint16Array) and convert with these. Written out rather than Math.f16round /
 * Float16Array, which Node 20 (the device bundles' runtime) lacks; test/f16.test.ts checks them
 * against Bun's Math.f16round.
 */

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** The half nearest to `x` (ties to even; overflow to infinity; NaN stays NaN), as bits. */
export const f32ToF16Bits = (x: number): number => {
  f32[0] = x
  const bits = u32[0]!
  const sign = (bits >>> 16) & 0x8000
  const exp = (bits >>> 23) & 0xff
  const mant = bits & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0)
  // unbiased exponent e: a half normal has e in [-14, 15]
  const e = exp - 127
  if (e > 15) return sign | 0x7c00
  if (e >= -14) {
    // keep 10 of 23 mantissa bits, round the 13 dropped ones to nearest even
    let h = ((e + 15) << 10) | (mant >>> 13)
    const rest = mant & 0x1fff
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++ // a carry into the exponent is right (up to infinity)
    return sign | h
  }
  if (e < -25) return sign // below half the smallest subnormal: zero
  // subnormal half: the value is m * 2^-24 with m = full mantissa (implicit 1) >> shift
  const full = mant | 0x800000
  const shift = -e - 1 // e = -15 -> 14 ... e = -25 -> 24
  let m = full >>> shift
  const rest = full & ((1 << shift) - 1)
  const half = 1 << (shift - 1)
  if (rest > half || (rest === half && (m & 1) === 1)) m++
  return sign | m
}

/** The value of half bits `h` (exact in f32 and in a JS number). */
export const f16BitsToF32 = (h: number): number => {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN
  return sign * (1024 + mant) * 2 ** (exp - 25)
}

/** `x` rounded to the nearest half (what storing it as f16 keeps). */
export const f16round = (x: number): number => f16BitsToF32(f32ToF16Bits(x))
