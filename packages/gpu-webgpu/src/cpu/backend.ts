/**
 * CPU reference backend: plain typed arrays, chunked exactly like the WebGPU backend so the
 * chunk-slicing logic of the ops is exercised (and testable with a lowered binding limit) here too.
 */
import { BackendError, chunkPieces, requireFeatures, type Backend, type BackendFeatures, type BufferId, type CpuViews, type Dispatch } from "../backend.ts"
import { ChunkedBufferTable } from "../chunkedBuffers.ts"

export class CpuBackend implements Backend {
  readonly name: string = "cpu"
  // The CPU backend runs each kernel's CPU reference; the variant only selects which kernel name.
  readonly kernelFamily = "blocked"
  /** Every kernel's reference runs here: f16 kernels round through src/f16.ts, subgroup kernels reduce rows as the others do. */
  readonly features: BackendFeatures = { shaderF16: true, subgroups: true }
  private readonly buffers: ChunkedBufferTable<ArrayBuffer>

  constructor(readonly maxBindingBytes: number = 128 * 1024 * 1024) {
    this.buffers = new ChunkedBufferTable(maxBindingBytes, (bytes) => this.makeChunk(bytes), (chunk) => this.dropChunk(chunk))
  }

  /** A chunk of `bytes` (here a fresh, zeroed ArrayBuffer). */
  protected makeChunk(bytes: number): ArrayBuffer {
    return new ArrayBuffer(bytes)
  }

  /** A chunk given back (here: nothing to do, the garbage collector takes it). */
  protected dropChunk(_chunk: ArrayBuffer): void {}

  alloc(bytes: number, chunkBytes?: number): BufferId {
    return this.buffers.alloc(Math.max(4, bytes), chunkBytes)
  }

  chunkBytes(buf: BufferId): number {
    return this.buffers.get(buf).chunkBytes
  }

  byteLength(buf: BufferId): number {
    return this.buffers.get(buf).bytes
  }

  upload(buf: BufferId, data: Float32Array | Int32Array | Uint32Array, byteOffset = 0): void {
    const b = this.buffers.get(buf)
    const src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    for (const p of chunkPieces(byteOffset, data.byteLength, b.chunkBytes)) {
      new Uint8Array(b.chunks[p.chunk]!, p.offset, p.bytes).set(src.subarray(p.srcOffset, p.srcOffset + p.bytes))
    }
  }

  download(buf: BufferId, byteOffset = 0, bytes?: number): Promise<ArrayBuffer> {
    const b = this.buffers.get(buf)
    const n = bytes ?? b.bytes - byteOffset
    const out = new Uint8Array(n)
    for (const p of chunkPieces(byteOffset, n, b.chunkBytes)) {
      out.set(new Uint8Array(b.chunks[p.chunk]!, p.offset, p.bytes), p.srcOffset)
    }
    return Promise.resolve(out.buffer)
  }

  run(d: Dispatch): void {
    requireFeatures(d.kernel, this.name, this.features)
    d.kernel.cpu(this.views(d), d.params)
  }

  /** Typed views of the chunks a dispatch binds. */
  protected views(d: Dispatch): CpuViews {
    const chunkOf = (name: string): ArrayBuffer => {
      const binding = d.bindings[name]
      if (binding === undefined) throw new BackendError({ message: `${d.kernel.name}: binding ${name} missing` })
      const chunk = this.buffers.get(binding.buf).chunks[binding.chunk]
      if (chunk === undefined) throw new BackendError({ message: `${d.kernel.name}: chunk ${binding.chunk} of ${name} out of range` })
      return chunk
    }
    return {
      f32: (name) => new Float32Array(chunkOf(name)),
      i32: (name) => new Int32Array(chunkOf(name)),
      f16bits: (name) => new Uint16Array(chunkOf(name))
    }
  }

  free(buf: BufferId): void {
    this.buffers.free(buf)
  }

  liveBuffers(): number {
    return this.buffers.size
  }

  sync(): Promise<void> {
    return Promise.resolve()
  }

  destroy(): void {
    this.buffers.clear()
  }
}
