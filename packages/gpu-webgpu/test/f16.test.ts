/** The CPU's f32 <-> f16 conversion (src/f16.ts) against Bun's own Math.f16round. */
import { expect, test } from "bun:test"
import { f16BitsToF32, f16round, f32ToF16Bits } from "../src/f16.ts"

// Bun has Math.f16round; TypeScript's lib (and Node 20, where the engine also runs) does not declare it.
const bunF16round = (Math as unknown as { f16round: (x: number) => number }).f16round

test("f32 -> f16 -> f32 rounds to nearest even like Math.f16round, for every f32 bit pattern class", () => {
  const special = [0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e9, -1e9, Infinity, -Infinity, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -26, 1e-30]
  // ties: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 (rounds to even 1); 1 + 3 * 2^-11 rounds up
  special.push(1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24 * 1.5, 2 ** -24 * 2.5)
  const bits = new Uint32Array(200_000)
  for (let i = 0; i < bits.length; i++) bits[i] = (Math.random() * 2 ** 32) >>> 0
  const values = [...special, ...new Float32Array(bits.buffer)]
  let checked = 0
  for (const v of values) {
    const x = Math.fround(v)
    const want = bunF16round(x)
    const got = f16round(x)
    if (Number.isNaN(want)) expect(Number.isNaN(got)).toBe(true)
    else expect(got).toBe(want) // Object.is: -0 and 0 differ
    checked++
  }
  expect(checked).toBe(values.length)
})

test("every half bit pattern survives f16 -> f32 -> f16", () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = f16BitsToF32(h)
    if (Number.isNaN(v)) expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true)
    else expect(f32ToF16Bits(v)).toBe(h)
  }
})
