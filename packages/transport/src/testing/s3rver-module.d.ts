// s3rver ships no types; this declares the part of its API the tests use.
declare module "s3rver/lib/models/account.js" {
  interface AWSAccount {
    createKeyPair(accessKeyId: string, secretAccessKey: string): void
  }
  /** The one account every authenticated request acts as (key pair S3RVER / S3RVER). */
  export const DUMMY_ACCOUNT: AWSAccount
}
declare module "s3rver" {
  import type { Server } from "node:http"
  import type { AddressInfo } from "node:net"
  interface S3rverOptions {
    readonly address?: string
    readonly port?: number
    readonly silent?: boolean
    readonly directory?: string
    readonly resetOnClose?: boolean
    readonly allowMismatchedSignatures?: boolean
    readonly configureBuckets?: ReadonlyArray<{ readonly name: string }>
  }
  export default class S3rver {
    constructor(options?: S3rverOptions)
    httpServer?: Server
    /** s3rver's winston logger; it closes with the server. */
    logger: { silent: boolean }
    run(): Promise<AddressInfo>
    close(): Promise<void>
  }
}
