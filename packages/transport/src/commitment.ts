/**
 * The bucket read credentials a participant commits on chain: one 128-character string,
 * account id (32) + access key id (32) + secret access key (64); the bucket is named after the
 * account id and lives on Cloudflare R2. Decode untrusted commitments with
 * `Schema.decodeUnknown(PeerLocationFromCommitment)`.
 */
import { Schema } from "effect"
import { PeerLocation } from "./Transport.ts"

export const Commitment = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{32}[0-9A-Fa-f]{32}[0-9A-Fa-f]{64}$/, {
    message: () => "a bucket commitment is 128 hex characters: account id (32, lower case) + access key id (32) + secret (64)",
  }),
)

export const r2Endpoint = (accountId: string): string => `https://${accountId}.r2.cloudflarestorage.com`

export const PeerLocationFromCommitment = Schema.transform(Commitment, PeerLocation, {
  strict: true,
  decode: (commitment) => {
    const accountId = commitment.slice(0, 32)
    return {
      endpoint: r2Endpoint(accountId),
      region: "auto",
      bucket: accountId,
      accessKeyId: commitment.slice(32, 64),
      secretAccessKey: commitment.slice(64, 128),
      forcePathStyle: true,
    }
  },
  encode: (location) => `${location.bucket}${location.accessKeyId}${location.secretAccessKey}`,
})
