/**
 * Golomb-Rice coding of the sorted indices of each chunk. Gaps g = i - prev - 1 (prev = -1 at a
 * chunk's start) are written as q = g >> r zero bits, a one bit, then the r low bits, MSB first.
 * One parameter r per tensor (first byte of the section), chosen by exact cost. For k = 64 of
 * 4096 the gaps are close to geometric, where Rice is within a few hundredths of a bit of the
 * entropy: about 7.5 bits per index against log2(C(4096, 64)) / 64 = 7.3 and 12 for packed12.
 */

export const MAX_RICE_PARAM = 12

/** Exact coded bit count of all gaps with parameter r (gap g costs (g >> r) + 1 + r bits). */
const costBits = (indices: Uint16Array, nChunks: number, k: number, r: number): number => {
  let bits = indices.length * (1 + r)
  for (let c = 0; c < nChunks; c++) {
    let prev = -1
    for (let e = c * k; e < (c + 1) * k; e++) {
      const i = indices[e]!
      bits += (i - prev - 1) >> r
      prev = i
    }
  }
  return bits
}

/** The cheapest r near log2 of the mean gap. */
export const chooseRiceParam = (indices: Uint16Array, nChunks: number, k: number, totalk: number): number => {
  if (indices.length === 0) return 0
  const meanGap = totalk / k
  const guess = Math.max(0, Math.min(MAX_RICE_PARAM, Math.floor(Math.log2(Math.max(1, meanGap * Math.LN2)))))
  let best = guess
  let bestBits = Infinity
  for (let r = Math.max(0, guess - 1); r <= Math.min(MAX_RICE_PARAM, guess + 2); r++) {
    const b = costBits(indices, nChunks, k, r)
    if (b < bestBits) {
      bestBits = b
      best = r
    }
  }
  return best
}

/** Encodes indices that are strictly ascending within each chunk of k. */
export const encodeRice = (indices: Uint16Array, nChunks: number, k: number, totalk: number): Uint8Array => {
  const r = chooseRiceParam(indices, nChunks, k, totalk)
  const bits = costBits(indices, nChunks, k, r)
  const out = new Uint8Array(1 + Math.ceil(bits / 8))
  out[0] = r
  let o = 1
  let cur = 0
  let nb = 0
  const put = (v: number, len: number): void => {
    // len <= 16 and nb < 8 keep cur within 32 bits
    cur = (cur << len) | v
    nb += len
    while (nb >= 8) {
      nb -= 8
      out[o++] = (cur >>> nb) & 0xff
    }
    cur &= (1 << nb) - 1
  }
  const mask = (1 << r) - 1
  for (let c = 0; c < nChunks; c++) {
    let prev = -1
    for (let e = c * k; e < (c + 1) * k; e++) {
      const i = indices[e]!
      const g = i - prev - 1
      prev = i
      let q = g >> r
      while (q >= 16) {
        put(0, 16)
        q -= 16
      }
      put(1, q + 1)
      if (r > 0) put(g & mask, r)
    }
  }
  if (nb > 0) out[o++] = (cur << (8 - nb)) & 0xff
  return out
}

export const RICE_OK = 0
export const RICE_TRUNCATED = 1
export const RICE_BAD_INDEX = 2
export const RICE_BAD_PARAM = 3
export const RICE_TRAILING = 4

/** The 32 bits from bit `pos` of `bytes[base..end)` (bit 0 = MSB of bytes[base]), zero past end. */
const windowAt = (bytes: Uint8Array, base: number, end: number, pos: number): number => {
  const p = base + (pos >> 3)
  let v = 0
  for (let b = 0; b < 5; b++) v = v * 256 + (p + b < end ? bytes[p + b]! : 0)
  // v holds 40 bits: drop the (pos & 7) already-consumed ones on top and the 8 - (pos & 7) below
  return (v / 2 ** (8 - (pos & 7))) | 0
}

/**
 * Decodes n = nChunks * k indices from `bytes[at..end)` into `out`. Strict: every index < totalk
 * and strictly ascending within its chunk (so no duplicates), the section fully used, padding
 * zero. Time is bounded by the section length.
 *
 * Bits stream through one int32 register, left-aligned with zeros below the `avail` real bits
 * (no `>>> 0`: JavaScriptCore keeps int32 in registers, uint32 above 2^31 becomes a double).
 * A codeword whose one bit and r remainder bits are in the register takes the fast path, which
 * keeps the serial chain per index to clz, one shift and a predictable refill. The rest (long
 * unary runs, the section's end) go bit-position by bit-position with the same verdicts: a zero
 * run longer than (totalk - 1) >> r is BAD_INDEX even when the section ends inside it,
 * otherwise running out of bits is TRUNCATED.
 */
export const decodeRice = (
  bytes: Uint8Array,
  at: number,
  end: number,
  nChunks: number,
  k: number,
  totalk: number,
  out: Uint16Array,
): number => {
  if (end - at < 1) return RICE_TRUNCATED
  const r = bytes[at]!
  if (r > MAX_RICE_PARAM) return RICE_BAD_PARAM
  const maxQ = (totalk - 1) >> r
  const base = at + 1
  const totalBits = 8 * (end - base)
  // z + 1 + r <= 31: a shift by 32 would be a shift by 0 in JavaScript
  const fastZ = Math.min(maxQ, 30 - r)
  let p = base
  let bits = 0
  let avail = 0
  for (let c = 0; c < nChunks; c++) {
    let prev = -1
    const stop = (c + 1) * k
    for (let e = c * k; e < stop; e++) {
      if (avail <= 16) {
        if (p + 2 <= end) {
          bits |= ((bytes[p]! << 8) | bytes[p + 1]!) << (16 - avail)
          p += 2
          avail += 16
        } else if (p < end) {
          bits |= bytes[p]! << (24 - avail)
          p += 1
          avail += 8
        }
      }
      const z = Math.clz32(bits)
      let q: number
      let rem: number
      if (z <= fastZ && z + 1 + r <= avail) {
        q = z
        // (x >>> 1) >>> (31 - r) is x >>> (32 - r), and 0 for r = 0 rather than x
        rem = ((bits << (z + 1)) >>> 1) >>> (31 - r)
        bits <<= z + 1 + r
        avail -= z + 1 + r
      } else {
        let pos = 8 * (p - base) - avail
        q = 0
        for (;;) {
          const left = totalBits - pos
          // a run past maxQ has already returned below
          if (left <= 0) return RICE_TRUNCATED
          const zz = Math.min(Math.clz32(windowAt(bytes, base, end, pos)), left)
          q += zz
          pos += zz
          if (q > maxQ) return RICE_BAD_INDEX
          if (zz < left && zz < 32) break
        }
        pos += 1
        if (totalBits - pos < r) return RICE_TRUNCATED
        rem = (windowAt(bytes, base, end, pos) >>> 1) >>> (31 - r)
        pos += r
        // restart the register at pos: the rest of its byte, if any
        p = base + (pos >> 3)
        avail = 0
        bits = 0
        if ((pos & 7) !== 0) {
          bits = bytes[p]! << (24 + (pos & 7))
          avail = 8 - (pos & 7)
          p += 1
        }
      }
      const i = prev + 1 + ((q << r) | rem)
      if (i >= totalk) return RICE_BAD_INDEX
      out[e] = i
      prev = i
    }
  }
  if (p !== end || avail >= 8 || bits !== 0) return RICE_TRAILING
  return RICE_OK
}
