/**
 * What a node publishes about its bucket. Peers read each other's buckets with the credentials
 * committed on chain, which anyone can read: so a commitment carries a *read-only* key pair,
 * never the key the node writes with (that one never leaves the node). The S3 layer's own
 * configuration holds the write key; the commitment is built from a separate read pair, and a
 * read pair that shares its key id or secret with the write pair is refused.
 */
import { Data, Either } from "effect"
import type { CommitmentLocation } from "@covenant/chain"

export interface S3Keys {
  readonly accessKeyId: string
  readonly secretAccessKey: string
}

/** A commitment would publish (part of) the key the node writes with. */
export class WriteKeyCommitted extends Data.TaggedError("WriteKeyCommitted")<{
  readonly accessKeyId: string
  readonly reason: string
}> {}

/** The on-chain location of an S3 bucket: endpoint, bucket, region and the read-only key pair (its node adds its role when it commits). */
export const s3Commitment = (
  store: { readonly endpoint: string; readonly region: string },
  bucket: string,
  read: S3Keys,
  write: S3Keys,
): Either.Either<CommitmentLocation, WriteKeyCommitted> => {
  if (read.accessKeyId === write.accessKeyId) {
    return Either.left(new WriteKeyCommitted({ accessKeyId: read.accessKeyId, reason: "the read key id is the write key id: make a separate read-only token" }))
  }
  if (read.secretAccessKey === write.secretAccessKey) {
    return Either.left(new WriteKeyCommitted({ accessKeyId: read.accessKeyId, reason: "the read secret is the write secret" }))
  }
  return Either.right({ _tag: "S3", endpoint: store.endpoint, bucket, region: store.region, accessKeyId: read.accessKeyId, secretAccessKey: read.secretAccessKey })
}
