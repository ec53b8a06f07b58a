/**
 * A worker thread of the WebAssembly gemm (src/cpu/wasmGemm.ts): instantiates the kernel on the
 * shared memory, then waits for jobs on its control block and runs column strips until none are
 * left, setting its done flag after each job.
 */
import { runStrips, type GemmFn } from "./wasmGemm.ts"

declare const self: { onmessage: ((e: MessageEvent) => void) | null }

self.onmessage = (e: MessageEvent) => {
  const { module, mem, ctrl, shared } = e.data as { module: WebAssembly.Module; mem: WebAssembly.Memory; ctrl: Int32Array; shared: Int32Array }
  const fn = new WebAssembly.Instance(module, { env: { mem } }).exports["gemm"] as GemmFn
  const job = shared.subarray(1)
  Atomics.store(ctrl, 2, 1) // ready
  let seq = 0
  for (;;) {
    Atomics.wait(ctrl, 0, seq)
    const next = Atomics.load(ctrl, 0)
    if (next === -1) return
    if (next === seq) continue
    seq = next
    runStrips(fn, shared, job)
    Atomics.store(ctrl, 1, 1)
    Atomics.notify(ctrl, 1)
  }
}
