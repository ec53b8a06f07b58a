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

/**
 * Decodes n = nChunks * k indices from `bytes[at..end)` into `out`. Strict: every index < totalk
 * and strictly ascending within its chunk (so no duplicates), the section fully used, padding
 * zero. Time is bounded by the section length.
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
  let p = at + 1
  let word = 0
  let avail = 0
  for (let c = 0; c < nChunks; c++) {
    let prev = -1
    for (let e = c * k; e < (c + 1) * k; e++) {
      while (avail <= 24 && p < end) {
        word = (word | (bytes[p++]! << (24 - avail))) >>> 0
        avail += 8
      }
      if (word !== 0) {
        // fast path: the whole codeword (q zeros, a one, r bits) is in the window
        const z = Math.clz32(word)
        const len = z + 1 + r
        if (len <= avail && z < 31) {
          if (z > maxQ) return RICE_BAD_INDEX
          const t = (word << (z + 1)) >>> 0
          const i = prev + 1 + ((z << r) | (r > 0 ? t >>> (32 - r) : 0))
          word = r > 0 ? (t << r) >>> 0 : t
          avail -= len
          if (i >= totalk) return RICE_BAD_INDEX
          out[e] = i
          prev = i
          continue
        }
      }
      let q = 0
      for (;;) {
        while (avail <= 24 && p < end) {
          word = (word | (bytes[p++]! << (24 - avail))) >>> 0
          avail += 8
        }
        if (avail === 0) return RICE_TRUNCATED
        if (word === 0) {
          q += avail
          avail = 0
          if (q > maxQ) return RICE_BAD_INDEX
          continue
        }
        const z = Math.clz32(word)
        q += z
        word = ((word << z) << 1) >>> 0
        avail -= z + 1
        break
      }
      if (q > maxQ) return RICE_BAD_INDEX
      let rem = 0
      if (r > 0) {
        while (avail <= 24 && p < end) {
          word = (word | (bytes[p++]! << (24 - avail))) >>> 0
          avail += 8
        }
        if (avail < r) return RICE_TRUNCATED
        rem = word >>> (32 - r)
        word = (word << r) >>> 0
        avail -= r
      }
      const i = prev + 1 + ((q << r) | rem)
      if (i >= totalk) return RICE_BAD_INDEX
      out[e] = i
      prev = i
    }
  }
  if (p !== end || avail >= 8 || word !== 0) return RICE_TRAILING
  return RICE_OK
}
