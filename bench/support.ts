/** What the benchmarks share: their command-line flags and cheap deterministic random data. */

/** The value after `--name` on the command line, or the fallback. */
export const stringArg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}

/** A positive integer flag (`--name 8`); anything else is refused, not silently benchmarked. */
export const intArg = (name: string, fallback: number): number => {
  const v = Number(stringArg(name, String(fallback)))
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`--${name} must be a positive integer`)
  return v
}

/** Gaussian-ish floats (sum of two uniforms from xorshift32), fast enough for 134M values. */
export const fillRandom = (out: Float32Array, seed: number, scale: number): Float32Array => {
  let s = seed >>> 0 || 1
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    const a = (s >>> 0) / 4294967296
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    out[i] = (a + (s >>> 0) / 4294967296 - 1) * scale
  }
  return out
}
