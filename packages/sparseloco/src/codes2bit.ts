/** Quantization codes, four per byte (code e in bits 2*(e%4)..+1 of byte e/4), padding bits zero. */
export const codesLength = (n: number): number => Math.ceil(n / 4)

export const packCodes = (codes: Uint8Array, n = codes.length): Uint8Array => {
  const out = new Uint8Array(codesLength(n))
  for (let e = 0; e < n; e++) out[e >> 2] = out[e >> 2]! | ((codes[e]! & 3) << ((e & 3) << 1))
  return out
}

/** Unpacks n codes; returns false when a code is >= bins or a padding bit is set. */
export const unpackCodes = (bytes: Uint8Array, at: number, n: number, bins: number, out: Uint8Array): boolean => {
  // with 4 bins every 2-bit value is a valid code: unpack a byte at a time
  const whole = bins === 4 ? n >> 2 : 0
  for (let b = 0; b < whole; b++) {
    const v = bytes[at + b]!
    const e = b << 2
    out[e] = v & 3
    out[e + 1] = (v >> 2) & 3
    out[e + 2] = (v >> 4) & 3
    out[e + 3] = v >> 6
  }
  for (let e = whole << 2; e < n; e++) {
    const q = (bytes[at + (e >> 2)]! >> ((e & 3) << 1)) & 3
    if (q >= bins) return false
    out[e] = q
  }
  const tail = n & 3
  if (tail !== 0 && bytes[at + (n >> 2)]! >> (tail << 1) !== 0) return false
  return true
}
