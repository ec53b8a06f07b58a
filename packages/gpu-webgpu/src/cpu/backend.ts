/**
 * CPU reference backend: plain typed arrays, chunked exactly like the WebGPU backend so the
 * chunk-slicing logic of the ops is exercised (and testable with a lowered binding limit) here too.
 */
import {
  BackendError,
  chunkCount,
  chunkPieces,
  type Backend,
  type BufferId,
  type CpuViews,
  type Dispatch
} from "../backend.ts"

interface CpuBuffer {
  readonly bytes: number
  readonly chunkBytes: number
  readonly chunks: ArrayBuffer[]
}

export class CpuBackend implements Backend {
  readonly name = "cpu"
  // The CPU backend runs each kernel's CPU reference; the variant only selects which kernel name.
  readonly kernelFamily = "blocked"
  private readonly buffers = new Map<number, CpuBuffer>()
  private nextId = 1

  constructor(readonly maxBindingBytes: number = 128 * 1024 * 1024) {}

  alloc(bytes: number, chunkBytes?: number): BufferId {
    const size = Math.max(4, bytes)
    const cb = chunkBytes ?? size
    if (cb > this.maxBindingBytes && size > this.maxBindingBytes) {
      throw new BackendError({ message: `chunk of ${cb} bytes exceeds the binding limit ${this.maxBindingBytes}` })
    }
    const n = chunkCount(size, cb)
    const chunks: ArrayBuffer[] = []
    for (let i = 0; i < n; i++) chunks.push(new ArrayBuffer(Math.min(cb, size - i * cb)))
    const id = this.nextId++
    this.buffers.set(id, { bytes: size, chunkBytes: cb, chunks })
    return id as BufferId
  }

  private get(buf: BufferId): CpuBuffer {
    const b = this.buffers.get(buf)
    if (b === undefined) throw new BackendError({ message: `buffer ${buf} is not allocated (freed already?)` })
    return b
  }

  chunkBytes(buf: BufferId): number {
    return this.get(buf).chunkBytes
  }

  byteLength(buf: BufferId): number {
    return this.get(buf).bytes
  }

  upload(buf: BufferId, data: Float32Array | Int32Array | Uint32Array, byteOffset = 0): void {
    const b = this.get(buf)
    const src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    for (const p of chunkPieces(byteOffset, data.byteLength, b.chunkBytes)) {
      new Uint8Array(b.chunks[p.chunk]!, p.offset, p.bytes).set(src.subarray(p.srcOffset, p.srcOffset + p.bytes))
    }
  }

  download(buf: BufferId, byteOffset = 0, bytes?: number): Promise<ArrayBuffer> {
    const b = this.get(buf)
    const n = bytes ?? b.bytes - byteOffset
    const out = new Uint8Array(n)
    for (const p of chunkPieces(byteOffset, n, b.chunkBytes)) {
      out.set(new Uint8Array(b.chunks[p.chunk]!, p.offset, p.bytes), p.srcOffset)
    }
    return Promise.resolve(out.buffer)
  }

  run(d: Dispatch): void {
    const chunkOf = (name: string): ArrayBuffer => {
      const binding = d.bindings[name]
      if (binding === undefined) throw new BackendError({ message: `${d.kernel.name}: binding ${name} missing` })
      const chunk = this.get(binding.buf).chunks[binding.chunk]
      if (chunk === undefined) throw new BackendError({ message: `${d.kernel.name}: chunk ${binding.chunk} of ${name} out of range` })
      return chunk
    }
    const views: CpuViews = {
      f32: (name) => new Float32Array(chunkOf(name)),
      i32: (name) => new Int32Array(chunkOf(name))
    }
    d.kernel.cpu(views, d.params)
  }

  free(buf: BufferId): void {
    this.buffers.delete(buf)
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
