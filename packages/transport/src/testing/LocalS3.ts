/// <reference path="./s3rver-module.d.ts" />
/** A real s3rver on 127.0.0.1 for tests and benchmarks: start on port 0, stop, restart on the same port and data dir. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import S3rver from "s3rver"
import { DUMMY_ACCOUNT } from "s3rver/lib/models/account.js"
import type { S3TransportConfig } from "../S3Transport.ts"

const READ_KEY_ID = "S3RVER-READ"
const READ_SECRET = "S3RVER-READ-SECRET"

export class LocalS3 {
  private server: S3rver | undefined
  port = 0
  /** The data directory, made on the first start (so an instance that never starts leaves nothing behind). */
  private directory: string | undefined

  /** A fixed port and a kept directory (bin/local-s3.ts); default: any free port, a temporary directory. */
  constructor(options: { readonly port?: number; readonly directory?: string } = {}) {
    this.port = options.port ?? 0
    this.directory = options.directory
  }

  async start(): Promise<void> {
    this.directory ??= mkdtempSync(path.join(tmpdir(), "covenant-s3rver-"))
    const server = new S3rver({ address: "127.0.0.1", port: this.port, silent: true, directory: this.directory })
    const address = await server.run()
    this.port = address.port
    this.server = server
  }

  /** Stops accepting and drops kept-alive connections too, like a crashed store. */
  async stop(): Promise<void> {
    const server = this.server
    this.server = undefined
    if (server === undefined) return
    // Requests still in flight log after the server closed its logger; winston would complain.
    server.logger.silent = true
    server.httpServer?.closeAllConnections()
    await server.close()
  }

  async dispose(): Promise<void> {
    await this.stop()
    if (this.directory !== undefined) rmSync(this.directory, { recursive: true, force: true })
    this.directory = undefined
  }

  /**
   * A second key pair s3rver accepts, for the read credentials nodes commit on chain. s3rver has
   * no per-key permissions (every key acts as its one dummy account, with full access), so this
   * pair can write too: it only lets the swarm keep its write key off the chain, it does not
   * prove the committed key is read-only. On R2 / S3 the read pair is a read-only token.
   */
  readKeys(): { readonly accessKeyId: string; readonly secretAccessKey: string } {
    DUMMY_ACCOUNT.createKeyPair(READ_KEY_ID, READ_SECRET)
    return { accessKeyId: READ_KEY_ID, secretAccessKey: READ_SECRET }
  }

  config(): S3TransportConfig {
    return {
      endpoint: `http://127.0.0.1:${this.port}`,
      region: "us-east-1",
      forcePathStyle: true,
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      connectionTimeoutMs: 1_000,
      requestTimeoutMs: 30_000,
    }
  }
}
