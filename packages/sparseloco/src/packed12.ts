/**
 * The reference's 12-bit index packing: consecutive indices (i1, i2) of the flattened list go into
 * three bytes `i1 & 0xFF, ((i1 >> 8) & 0xF) | ((i2 & 0xF) << 4), i2 >> 4`. With an odd count
 * (only possible for chunks of length 1) the missing i2 is 0.
 */
export const packed12Length = (n: number): number => 3 * Math.ceil(n / 2)

export const packIndices12 = (idx: ArrayLike<number>, n = idx.length): Uint8Array => {
  const out = new Uint8Array(packed12Length(n))
  let o = 0
  for (let e = 0; e < n; e += 2) {
    const i1 = idx[e]!
    const i2 = e + 1 < n ? idx[e + 1]! : 0
    out[o++] = i1 & 0xff
    out[o++] = ((i1 >> 8) & 0x0f) | ((i2 & 0x0f) << 4)
    out[o++] = (i2 >> 4) & 0xff
  }
  return out
}

/** Unpacks n indices from `bytes[at..]`; returns false when an odd count's padding is not zero. */
export const unpackIndices12 = (bytes: Uint8Array, at: number, n: number, out: Uint16Array): boolean => {
  let p = at
  for (let e = 0; e < n; e += 2) {
    const b0 = bytes[p]!
    const b1 = bytes[p + 1]!
    const b2 = bytes[p + 2]!
    p += 3
    out[e] = b0 | ((b1 & 0x0f) << 8)
    const i2 = (b1 >> 4) | (b2 << 4)
    if (e + 1 < n) out[e + 1] = i2
    else if (i2 !== 0) return false
  }
  return true
}
