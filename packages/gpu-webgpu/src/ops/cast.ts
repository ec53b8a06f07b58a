/**
 * f32 -> f16 casts: the half-precision copies the f16 matmul reads (src/ops/matmul.ts). A copy
 * keeps its source's chunking (chunk c holds the same elements, at 2 bytes each), so element
 * offsets into a chunk are the same for both; only the f32 -> f16 direction is needed, since the
 * f16 kernels write f32 results.
 */
import { BackendError, defineKernel, type Binding, type BufferId } from "../backend.ts"
import { f32ToF16Bits } from "../f16.ts"
import type { Runtime, Tensor } from "../tensor.ts"
import { binding, main1d } from "./kernel.ts"

/**
 * y = f16(x), element-wise over `n` elements of a chunk. WGSL lets the conversion round to either
 * neighbouring half where x is not one; the CPU reference (and lavapipe) round to nearest even.
 */
export const castF16Kernel = defineKernel({
  name: "cast_f32_f16",
  bindings: [binding("x"), binding("y", "read_write", "f16")],
  params: [["n", "u32"]],
  enable: ["f16"],
  wgsl: `${main1d()}
  if (i >= P.n) { return; }
  y[i] = f16(x[i]);
}`,
  cpu: (views, p) => {
    const x = views.f32("x")
    const y = views.f16bits("y")
    for (let i = 0; i < p.n; i++) y[i] = f32ToF16Bits(x[i]!)
  }
})

/** An f16 copy of a tensor, laid out in the same chunks; bind it like the tensor, free it with `dispose`. */
export interface HalfCopy {
  readonly chunkElems: number
  readonly chunks: number
  binding(chunk?: number): Binding
  dispose(): void
}

/** Casts `t` (f32) to a fresh f16 copy. */
export const halfCopy = (rt: Runtime, t: Tensor): HalfCopy => {
  t.assertLive()
  if (t.dtype !== "f32") throw new BackendError({ message: `halfCopy: expected an f32 tensor, got ${t.dtype}` })
  const chunkElems = t.chunkElems
  const chunks = t.chunks
  // 2 bytes an element, each chunk padded to the 4-byte multiple storage bindings need
  const chunkBytes = Math.ceil((chunkElems * 2) / 4) * 4
  const lastBytes = Math.ceil((t.chunkSize(chunks - 1) * 2) / 4) * 4
  const buf: BufferId = rt.backend.alloc((chunks - 1) * chunkBytes + lastBytes, chunkBytes)
  for (let c = 0; c < chunks; c++) {
    rt.run1d(castF16Kernel, { x: t.binding(c), y: { buf, chunk: c } }, { n: t.chunkSize(c) }, t.chunkSize(c))
  }
  return {
    chunkElems,
    chunks,
    binding: (chunk = 0) => ({ buf, chunk }),
    dispose: () => rt.backend.free(buf)
  }
}
